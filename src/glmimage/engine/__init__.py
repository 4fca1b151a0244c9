"""The engine: plan (AR planner), decode (DiT + VAE), generate and edit."""

from glmimage.engine.engine import DEFAULT_MODEL, Engine
from glmimage.engine.plan import Plan
from glmimage.engine.results import GenerationResult

__all__ = ["DEFAULT_MODEL", "Engine", "GenerationResult", "Plan"]
