"""Benchmarks: our engine against diffusers' GlmImagePipeline on the same weights, in one process."""
