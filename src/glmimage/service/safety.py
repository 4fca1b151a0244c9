"""The prompt policy: categories of terms (whole words or phrases) and regular expressions, each with an action.

`block` rejects the request (400, code `content_policy_violation`, the reason names the category and what matched);
`review` lets it run but sends every output to human review. The same policy screens the text OCR reads back from
an output image, so a prompt that slips past the words still cannot put them on the picture unseen.
Policies are YAML files (`GLMIMAGE_SAFETY_POLICY`); `policies/safety.yaml` is the shipped default.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml

ACTIONS = ("block", "review")
LEVEL_ACTIONS = ("allow", *ACTIONS)  # what a moderation level may set a category to
DEFAULT_LEVEL = "auto"
# Levels a policy without a `moderation` section has: OpenAI's two, both the policy as written.
DEFAULT_LEVELS: dict[str, dict[str, str]] = {"auto": {}, "low": {}}
DEFAULT_POLICY_PATH = Path(__file__).with_name("policies") / "safety.yaml"


def normalize(text: str) -> str:
    """NFKC + casefold + single spaces: full-width letters, ligatures and case do not slip past a term."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


@dataclass(frozen=True)
class PolicyCategory:
    name: str
    action: str = "block"
    terms: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()
    description: str = ""

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z0-9_]+", self.name):
            raise ValueError(f"category name {self.name!r} must be lower-case letters, digits and _")
        if self.action not in ACTIONS:
            raise ValueError(f"category {self.name!r}: action {self.action!r} is not one of {ACTIONS}")
        if not self.terms and not self.patterns:
            raise ValueError(f"category {self.name!r} has neither terms nor patterns")
        for pattern in self.patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"category {self.name!r}: bad pattern {pattern!r}: {exc}") from None

    def first_match(self, normalized: str) -> str | None:
        for term in self.terms:
            # Whole words only: "class" must not trip on "ass".
            if re.search(rf"(?<!\w){re.escape(normalize(term))}(?!\w)", normalized):
                return term
        for pattern in self.patterns:
            if m := re.search(pattern, normalized, flags=re.IGNORECASE):
                return m.group(0)
        return None


@dataclass(frozen=True)
class PolicyVerdict:
    action: str  # "allow" | "block" | "review"
    category: str | None = None
    matched: str | None = None

    @property
    def reason(self) -> str:
        if self.action == "allow":
            return "allowed"
        verb = "is not allowed" if self.action == "block" else "needs human review"
        return f"{self.category}: {self.matched!r} {verb} by the content policy"


@dataclass(frozen=True)
class SafetyPolicy:
    categories: tuple[PolicyCategory, ...]
    # OpenAI's `moderation` parameter names a level; a level sets the action of the categories it names (allow,
    # review or block) and leaves the others as written. "auto" (the default) must be there.
    levels: Mapping[str, Mapping[str, str]] = field(default_factory=lambda: dict(DEFAULT_LEVELS))

    def __post_init__(self) -> None:
        names = [c.name for c in self.categories]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate category names in {names}")
        if DEFAULT_LEVEL not in self.levels:
            raise ValueError(f"moderation levels {sorted(self.levels)} lack {DEFAULT_LEVEL!r}")
        for level, actions in self.levels.items():
            if not isinstance(actions, Mapping):
                raise ValueError(f"moderation level {level!r} must map category names to actions")
            for category, action in actions.items():
                if category not in names:
                    raise ValueError(f"moderation level {level!r} names unknown category {category!r}")
                if action not in LEVEL_ACTIONS:
                    raise ValueError(f"moderation level {level!r}: {category}: {action!r} is not one of "
                                     f"{LEVEL_ACTIONS}")

    def at_level(self, level: str | None) -> SafetyPolicy:
        """The policy as moderation level `level` applies it (None: "auto"); ValueError for an unknown level."""
        level = DEFAULT_LEVEL if level is None else level
        if level not in self.levels:
            raise ValueError(f"moderation {level!r} is not one of {sorted(self.levels)}")
        actions = self.levels[level]
        if not actions:
            return self
        categories = tuple(replace(c, action=actions.get(c.name, c.action)) for c in self.categories
                           if actions.get(c.name) != "allow")
        return SafetyPolicy(categories, {DEFAULT_LEVEL: {}})

    def check(self, text: str) -> PolicyVerdict:
        """The strictest verdict over all categories: any block wins over review, review over allow."""
        normalized = normalize(text)
        review: PolicyVerdict | None = None
        for category in self.categories:
            matched = category.first_match(normalized)
            if matched is None:
                continue
            if category.action == "block":
                return PolicyVerdict("block", category.name, matched)
            review = review or PolicyVerdict("review", category.name, matched)
        return review or PolicyVerdict("allow")

    @classmethod
    def from_dict(cls, data: dict) -> SafetyPolicy:
        """`categories: [{name, action, terms, patterns, description}]`; top-level `blocked_terms` and
        `blocked_patterns` are a shorthand for one `blocklist` category."""
        if not isinstance(data, dict):
            raise TypeError("a safety policy is a mapping with a `categories` list")
        unknown = set(data) - {"categories", "blocked_terms", "blocked_patterns", "moderation"}
        if unknown:
            raise ValueError(f"unknown safety policy keys {sorted(unknown)}")
        categories = []
        for item in data.get("categories") or []:
            extra = set(item) - {"name", "action", "terms", "patterns", "description"}
            if extra:
                raise ValueError(f"category {item.get('name')!r}: unknown keys {sorted(extra)}")
            categories.append(PolicyCategory(
                name=item["name"], action=item.get("action", "block"), terms=tuple(item.get("terms") or ()),
                patterns=tuple(item.get("patterns") or ()), description=item.get("description", ""),
            ))
        if data.get("blocked_terms") or data.get("blocked_patterns"):
            categories.append(PolicyCategory("blocklist", "block", tuple(data.get("blocked_terms") or ()),
                                             tuple(data.get("blocked_patterns") or ())))
        levels = data.get("moderation")
        if levels is None:
            return cls(tuple(categories))
        if not isinstance(levels, dict):
            raise ValueError("moderation must map level names to {category: action} mappings")
        return cls(tuple(categories), {str(k): dict(v or {}) for k, v in levels.items()})

    @classmethod
    def from_yaml(cls, path: str | Path) -> SafetyPolicy:
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"safety policy file {path} does not exist")
        return cls.from_dict(yaml.safe_load(path.read_text()) or {})

    @classmethod
    def load(cls, path: str | Path | None) -> SafetyPolicy:
        return cls.from_yaml(path or DEFAULT_POLICY_PATH)
