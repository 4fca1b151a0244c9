"""The synthetic design world: posters, banners, social posts, slides, recipe cards, price tags and dashboards,
with prompts, complete ground truth, edit samples and held-out splits."""

from glmimage.data.config import EDIT_KINDS, WorldConfig
from glmimage.data.layouts import KINDS
from glmimage.data.sample import EditSample, ObjectItem, Sample, SubjectItem, TextItem
from glmimage.data.world import World

__all__ = [
    "EDIT_KINDS", "KINDS", "EditSample", "ObjectItem", "Sample", "SubjectItem", "TextItem", "World", "WorldConfig",
]
