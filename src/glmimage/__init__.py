"""glmimage: GLM-Image (AR planner + DiT decoder) for information-dense images."""

__version__ = "0.1.0"
