"""Parameter governance: which generation parameters end users may set, within which bounds, and the central
defaults for the rest. One `ParameterPolicy.apply` is called by the API, the CLI and the service alike, so a value
refused in one is refused in all, with the same message."""

from __future__ import annotations

import math
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from glmimage.errors import InputError
from glmimage.models.sizes import parse_size
from glmimage.policy.request import PARAMETERS, GenerationRequest

DEFAULT_POLICY_PATH = Path(__file__).with_name("default_policy.yaml")
POLICY_ENV = "GLMIMAGE_POLICY"  # a path to a policy file that replaces the shipped default
_KINDS: dict[str, type] = {"width": int, "height": int, "steps": int, "guidance": float, "seed": int,
                           "num_images": int}
SEED_MAX = 2**32 - 1
# Sizes the OpenAI SDKs offer (gpt-image's three, DALL-E's four more). `openai_sizes` says what happens when the
# model cannot make one: "map" to its nearest valid size of the same aspect, or "reject".
OPENAI_SIZES = ("1024x1024", "1536x1024", "1024x1536", "256x256", "512x512", "1792x1024", "1024x1792")
SIZE_MAPPINGS = ("map", "reject")
# OpenAI's `quality` as a factor of the model's default steps (None: the model's default), unless a policy says
# otherwise. DALL-E 3's "standard" and "hd" read as medium and high.
DEFAULT_QUALITY_STEPS: dict[str, float | None] = {"auto": None, "low": 0.5, "medium": 1.0, "high": 1.5,
                                                  "standard": 1.0, "hd": 1.5}


@dataclass(frozen=True)
class ParameterRule:
    name: str
    settable: bool = True
    minimum: float | None = None
    maximum: float | None = None
    default: float | None = None  # None: the model's default (seed: drawn at random and recorded)

    def __post_init__(self) -> None:
        if self.name not in _KINDS:
            raise InputError(f"policy names unknown parameter {self.name!r}; known: {list(_KINDS)}")
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise InputError(f"policy rule {self.name}: min {self.minimum} > max {self.maximum}")
        if self.default is not None and not self.within(self.default):
            raise InputError(f"policy rule {self.name}: default {self.default} outside {self.bounds()}")

    def within(self, value: float) -> bool:
        return (self.minimum is None or value >= self.minimum) and (self.maximum is None or value <= self.maximum)

    def bounds(self) -> str:
        lo = "-inf" if self.minimum is None else _fmt(self.minimum)
        hi = "inf" if self.maximum is None else _fmt(self.maximum)
        return f"[{lo}, {hi}]"

    def coerce(self, value: Any) -> int | float:
        """A user's value as the parameter's type; strings are accepted because CSV and query strings send them."""
        kind = _KINDS[self.name]
        if isinstance(value, str):
            try:
                value = float(value.strip())
            except ValueError:
                raise InputError(f"{self.name}={value!r} is not a number") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise InputError(f"{self.name}={value!r} is not a number")
        if kind is int:
            if value != int(value):
                raise InputError(f"{self.name}={value!r} must be a whole number")
            return int(value)
        return float(value)


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


@dataclass(frozen=True)
class ParameterPolicy:
    name: str
    rules: dict[str, ParameterRule]
    openai_sizes: str = "map"  # an SDK size (OPENAI_SIZES) the model cannot make: "map" or "reject"
    quality_steps: Mapping[str, float | None] = field(default_factory=lambda: dict(DEFAULT_QUALITY_STEPS))

    def __post_init__(self) -> None:
        missing = [p for p in PARAMETERS if p not in self.rules]
        if missing:
            raise InputError(f"policy {self.name!r} has no rule for {missing}")
        if self.openai_sizes not in SIZE_MAPPINGS:
            raise InputError(f"policy {self.name!r}: openai_sizes={self.openai_sizes!r} is not one of {SIZE_MAPPINGS}")
        for quality, factor in self.quality_steps.items():
            if factor is not None and (isinstance(factor, bool) or not isinstance(factor, (int, float))
                                       or not 0 < factor <= 10):
                raise InputError(f"policy {self.name!r}: quality {quality!r} must map to a factor in (0, 10] of "
                                 f"the model's default steps, or null, got {factor!r}")

    def steps_for_quality(self, quality: str, default_steps: int) -> int | None:
        """The decoder steps OpenAI's `quality` stands for: the policy's factor times the model's default steps,
        rounded and kept within the steps rule; None where it maps to the model's default or where the policy
        fixes steps (then quality changes nothing). An unknown quality is an InputError naming the known ones."""
        if quality not in self.quality_steps:
            raise InputError(f"quality={quality!r} is not one of {sorted(self.quality_steps)} (policy {self.name!r})")
        factor, rule = self.quality_steps[quality], self.rules["steps"]
        if factor is None or not rule.settable:
            return None
        steps = max(1, round(factor * default_steps))
        if rule.minimum is not None:
            steps = max(steps, math.ceil(rule.minimum))
        if rule.maximum is not None:
            steps = min(steps, math.floor(rule.maximum))
        return steps

    @property
    def settable(self) -> list[str]:
        return [p for p in PARAMETERS if self.rules[p].settable]

    def apply(self, request: GenerationRequest, user_params: Mapping[str, Any] | None = None) -> GenerationRequest:
        """`request` with the user's parameters checked and set, and the central defaults filled in.

        Parameters the user leaves out (or passes as None) keep the request's value, else the policy's default.
        `size` ("768x512" or (768, 512)) is accepted as a shorthand for width and height.
        """
        params = {k: v for k, v in (user_params or {}).items() if v is not None}
        if "size" in params:
            if "width" in params or "height" in params:
                raise InputError("give either size or width/height, not both")
            params["width"], params["height"] = parse_size(params.pop("size"))
        if ("width" in params) != ("height" in params) and request.width is None:
            raise InputError("give both width and height (or size), not only one of them")
        unknown = sorted(set(params) - set(PARAMETERS))
        if unknown:
            raise InputError(f"unknown parameter {unknown[0]!r}; users may set {self.settable} (policy {self.name!r})")
        values: dict[str, Any] = {}
        for name, raw in params.items():
            rule = self.rules[name]
            if not rule.settable:
                fixed = "the model's default" if rule.default is None else _fmt(rule.default)
                raise InputError(f"{name} may not be set under policy {self.name!r} (fixed at {fixed}); "
                                 f"users may set {self.settable}")
            value = rule.coerce(raw)
            if not rule.within(value):
                raise InputError(f"{name}={_fmt(value)} is out of bounds: policy {self.name!r} allows {rule.bounds()}")
            values[name] = value
        for name in PARAMETERS:
            if name not in values and getattr(request, name) is None and self.rules[name].default is not None:
                values[name] = _KINDS[name](self.rules[name].default)
        if "seed" not in values and request.seed is None:
            values["seed"] = secrets.randbelow(SEED_MAX + 1)  # recorded, so any image can be made again
        return request.with_params(**values)

    def describe(self) -> dict:
        """The policy as plain data (for `--help` texts, the service's policy endpoint, logs)."""
        return {"name": self.name, "parameters": {
            name: {"settable": r.settable, "min": r.minimum, "max": r.maximum, "default": r.default}
            for name, r in self.rules.items()}, "openai_sizes": self.openai_sizes,
            "quality": dict(self.quality_steps)}


def policy_from_dict(data: Mapping[str, Any], name: str = "policy") -> ParameterPolicy:
    if not isinstance(data, Mapping) or not isinstance(data.get("parameters"), Mapping):
        raise InputError(f"policy {name!r} must be a mapping with a 'parameters' mapping")
    rules: dict[str, ParameterRule] = {}
    for key, spec in data["parameters"].items():
        spec = spec or {}
        extra = set(spec) - {"settable", "min", "max", "default"}
        if extra:
            raise InputError(f"policy {name!r} parameter {key!r}: unknown keys {sorted(extra)}; "
                             f"use settable, min, max, default")
        # "size" is one rule for both sides.
        targets = ("width", "height") if key == "size" else (key,)
        for target in targets:
            if target in rules:
                raise InputError(f"policy {name!r} sets {target!r} twice")
            rules[target] = ParameterRule(name=target, settable=bool(spec.get("settable", True)),
                                          minimum=spec.get("min"), maximum=spec.get("max"),
                                          default=spec.get("default"))
    quality = data.get("quality", DEFAULT_QUALITY_STEPS)
    if not isinstance(quality, Mapping) or not quality:
        raise InputError(f"policy {name!r}: quality must be a mapping of quality names to step factors")
    return ParameterPolicy(name=str(data.get("name", name)), rules=rules,
                           openai_sizes=str(data.get("openai_sizes", "map")),
                           quality_steps={str(k): v for k, v in quality.items()})


def load_policy(path: str | Path | None = None) -> ParameterPolicy:
    """The policy at `path`, else at $GLMIMAGE_POLICY, else the shipped default."""
    path = Path(path or os.environ.get(POLICY_ENV) or DEFAULT_POLICY_PATH)
    if not path.is_file():
        raise InputError(f"policy file {str(path)!r} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise InputError(f"policy file {path}: not valid YAML: {exc}") from None
    return policy_from_dict(data, name=path.stem)
