import pytest

from glmimage.errors import InputError
from glmimage.models.presets import PRESETS
from glmimage.prompts.sizes import (
    ASPECT_PRESETS,
    SizeLimits,
    limits_for_model,
    parse_aspect,
    resolve_size,
    size_for_aspect,
    size_for_edit,
    validate_size,
)


@pytest.mark.parametrize("model", ["tiny", "nano", "official"])
@pytest.mark.parametrize("aspect", sorted(ASPECT_PRESETS))
def test_every_preset_gives_a_valid_size_near_its_ratio(model, aspect):
    limits = limits_for_model(model)
    w, h = size_for_aspect(aspect, limits)
    validate_size(w, h, limits)
    rw, rh = ASPECT_PRESETS[aspect]
    # Within ~20% of the asked ratio even at 64 px sides, where one 32 px step is a 50% change.
    assert abs((w / h) / (rw / rh) - 1) < 0.2


def test_sizes_centre_on_each_models_default_area():
    assert size_for_aspect("square", limits_for_model("nano")) == (256, 256)
    assert size_for_aspect("square", limits_for_model("official")) == (1024, 1024)
    w, h = size_for_aspect("slide", limits_for_model("official"))
    assert w > h and abs(w * h / 1024**2 - 1) < 0.1 and abs(w / h - 16 / 9) < 0.05
    assert size_for_aspect("vertical-social", limits_for_model("official")) == size_for_aspect(
        "slide", limits_for_model("official"))[::-1]
    w, h = size_for_aspect("banner", limits_for_model("nano"))
    assert (w, h) == (480, 160)


def test_ratios_the_model_cannot_make_are_refused_with_the_valid_range():
    with pytest.raises(InputError, match=r"\[128, 512\].*4:1"):
        size_for_aspect("8:1", limits_for_model("nano"))
    with pytest.raises(InputError, match="unknown aspect 'cinema'"):
        parse_aspect("cinema")


def test_parse_aspect_forms():
    assert parse_aspect("16:9") == parse_aspect("16x9") == parse_aspect((16, 9)) == parse_aspect("slide")
    assert parse_aspect("1.5") == 1.5 and parse_aspect(2.0) == 2.0
    with pytest.raises(InputError):
        parse_aspect("0:1")


def test_validate_size_names_the_value_and_the_valid_range():
    limits = SizeLimits(min_side=512, max_side=2048)
    assert validate_size(1024, 768, limits) == (1024, 768)
    with pytest.raises(InputError, match=r"width=1000 .*multiple of 32 in \[512, 2048\]"):
        validate_size(1000, 768, limits)
    with pytest.raises(InputError, match=r"height=4096"):
        validate_size(1024, 4096, limits)
    with pytest.raises(InputError, match="integer"):
        validate_size(1024.0, 1024, limits)


def test_edits_follow_the_reference_like_the_engine():
    from glmimage.engine.references import snap_size

    for model in ("nano", "official"):
        limits = limits_for_model(model)
        for ref in [(1000, 750), (3000, 2000), (100, 100), (720, 1280)]:
            w, h = size_for_edit(ref, limits)
            assert (w, h) == snap_size(*ref, limits)
            validate_size(w, h, limits)
            assert abs((w / h) / (ref[0] / ref[1]) - 1) < 0.1
    with pytest.raises(InputError, match="aspect ratio"):
        size_for_edit((5000, 100), limits_for_model("official"))


def test_resolve_size_precedence():
    limits = limits_for_model("nano")
    assert resolve_size(limits) == (256, 256)
    assert resolve_size(limits, reference_size=(600, 400)) == size_for_edit((600, 400), limits)
    assert resolve_size(limits, aspect="slide", reference_size=(600, 400)) == size_for_aspect("slide", limits)
    assert resolve_size(limits, width=320, height=192, reference_size=(600, 400)) == (320, 192)
    with pytest.raises(InputError, match="both width and height"):
        resolve_size(limits, width=320)
    with pytest.raises(InputError, match="not both"):
        resolve_size(limits, width=320, height=320, aspect="square")


def test_limits_for_model_reads_presets_and_model_dirs(tiny_dir):
    assert limits_for_model("official") == PRESETS["official"].limits
    assert limits_for_model(str(tiny_dir)) == PRESETS["tiny"].limits
    with pytest.raises(InputError, match="unknown preset 'huge'"):
        limits_for_model("huge")
