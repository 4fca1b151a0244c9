"""User-facing errors: the CLI and the service turn these into one clear line (or a 4xx), never a traceback."""


class GlmImageError(Exception):
    """Base class for errors caused by the user's input or environment, not by a bug."""


class InputError(GlmImageError, ValueError):
    """A bad argument: size, prompt, reference image, parameter out of bounds."""


class ModelLoadError(GlmImageError):
    """A model directory that is missing, incomplete or corrupt."""
