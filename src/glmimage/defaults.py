"""Defaults every entry point shares, in a module light enough to import anywhere (no torch)."""

# The model `make demo`, the CLI and the service use when none is named: the trained nano weights shipped in
# src/glmimage/weights/nano (see README, "State of the default model"). Tests name "tiny" (random, built in memory).
DEFAULT_MODEL = "nano"

# The largest bias (nats) an edit plan may give the reference's own codes (engine.plan's `copy_bias`); at ~8 the nano
# planner already copies its reference whole.
MAX_COPY_BIAS = 50.0
