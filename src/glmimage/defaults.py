"""Defaults every entry point shares, in a module light enough to import anywhere (no torch)."""

# The model `make demo`, the CLI and the service use when none is named: the trained nano weights shipped in
# src/glmimage/weights/nano (see README, "State of the default model"). Tests name "tiny" (random, built in memory).
DEFAULT_MODEL = "nano"
