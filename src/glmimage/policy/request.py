"""The one request object the Python API, the CLI and the service all build before calling the engine."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

from glmimage.errors import InputError

# The parameters an end user may ask for (subject to the policy); the prompt and references are the content.
PARAMETERS = ("width", "height", "steps", "guidance", "seed", "num_images")


@dataclass(frozen=True)
class GenerationRequest:
    prompt: str
    width: int | None = None  # None: the model's default, or the reference's size for edits
    height: int | None = None
    steps: int | None = None  # None: the model's default
    guidance: float | None = None
    seed: int | None = None  # None until a policy draws one
    num_images: int | None = None
    references: tuple = field(default=(), repr=False)  # PIL images; any makes the request an edit

    def __post_init__(self) -> None:
        if not isinstance(self.prompt, str) or not self.prompt.strip():
            raise InputError("the prompt is empty; describe the image to make")
        if not isinstance(self.references, tuple):
            object.__setattr__(self, "references", tuple(self.references))
        for i, ref in enumerate(self.references):
            size = getattr(ref, "size", None)
            if not (isinstance(size, tuple) and len(size) == 2 and min(size) > 0 and hasattr(ref, "convert")):
                raise InputError(f"reference {i + 1} is not a non-empty image (got {type(ref).__name__})")
        for name in ("width", "height", "steps", "seed", "num_images"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise InputError(f"{name} must be an integer, got {value!r}")
        guidance = self.guidance
        if guidance is not None and (isinstance(guidance, bool) or not isinstance(guidance, (int, float))):
            raise InputError(f"guidance must be a number, got {self.guidance!r}")

    def with_params(self, **params) -> GenerationRequest:
        unknown = set(params) - {f.name for f in fields(self)}
        if unknown:
            raise InputError(f"unknown request fields {sorted(unknown)}")
        return replace(self, **params)

    def params(self) -> dict:
        """The parameter values (not the content), for logs and manifests."""
        return {name: getattr(self, name) for name in PARAMETERS}
