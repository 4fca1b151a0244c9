"""Defaults every entry point shares, in a module light enough to import anywhere (no torch)."""

# The model `make demo`, the CLI and the service use when none is named. "tiny" (random weights) until the trained
# nano weights ship; see README, "State of the default model".
DEFAULT_MODEL = "tiny"
