"""Governance: per use case, whether an output is approved automatically or waits for a reviewer.

Each use case names a review mode: `never` (approve everything that passed the content policy), `on_qa_fail`
(approve only outputs that passed every QA check) or `always` (a person signs off every output). It may also
raise the OCR threshold. A prompt the content policy flagged for review, or an output whose rendered text the
policy flags, always goes to review whatever the use case says. Policies are YAML (`GLMIMAGE_GOVERNANCE_POLICY`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from glmimage.service.qa import CheckResult
from glmimage.service.tables import APPROVED, NEEDS_REVIEW

REVIEW_MODES = ("never", "on_qa_fail", "always")
DEFAULT_POLICY_PATH = Path(__file__).with_name("policies") / "governance.yaml"


@dataclass(frozen=True)
class UseCase:
    name: str
    review: str = "on_qa_fail"
    min_text_score: float | None = None  # None = QAConfig's threshold
    description: str = ""

    def __post_init__(self) -> None:
        if self.review not in REVIEW_MODES:
            raise ValueError(f"use case {self.name!r}: review {self.review!r} is not one of {REVIEW_MODES}")
        if self.min_text_score is not None and not 0.0 <= self.min_text_score <= 1.0:
            raise ValueError(f"use case {self.name!r}: min_text_score must be in [0, 1]")


@dataclass(frozen=True)
class Decision:
    status: str  # approved | needs_review
    reasons: list[str]


@dataclass(frozen=True)
class GovernancePolicy:
    use_cases: dict[str, UseCase]

    def __post_init__(self) -> None:
        if "default" not in self.use_cases:
            raise ValueError("a governance policy needs a `default` use case")

    def use_case(self, name: str) -> UseCase:
        if name not in self.use_cases:
            raise KeyError(f"unknown use_case {name!r}; known: {sorted(self.use_cases)}")
        return self.use_cases[name]

    def decide(self, use_case: str, checks: list[CheckResult], prompt_flag: str | None = None) -> Decision:
        """`prompt_flag`: the content policy's reason when it asked for review of the prompt."""
        case = self.use_case(use_case)
        reasons = [f"prompt flagged: {prompt_flag}"] if prompt_flag else []
        reasons += [f"{c.check}: {c.detail}" for c in checks if c.check == "content_policy"]
        if case.review != "never":  # with "always" the failed checks are still worth showing the reviewer
            reasons += [f"{c.check}: {c.detail}" for c in checks
                        if c.check != "content_policy" and self._fails(c, case)]
        if case.review == "always":
            reasons.append(f"use case {case.name!r} reviews every output")
        return Decision(NEEDS_REVIEW if reasons else APPROVED, reasons)

    @staticmethod
    def _fails(check: CheckResult, case: UseCase) -> bool:
        if check.check == "text" and case.min_text_score is not None and check.score is not None:
            return check.score < case.min_text_score
        return not check.passed

    @classmethod
    def from_dict(cls, data: dict) -> GovernancePolicy:
        if not isinstance(data, dict) or not isinstance(data.get("use_cases"), dict):
            raise TypeError("a governance policy is a mapping with a `use_cases` mapping")
        cases = {}
        for name, spec in data["use_cases"].items():
            spec = spec or {}
            extra = set(spec) - {"review", "min_text_score", "description"}
            if extra:
                raise ValueError(f"use case {name!r}: unknown keys {sorted(extra)}")
            cases[name] = UseCase(name=name, **spec)
        return cls(cases)

    @classmethod
    def load(cls, path: str | Path | None) -> GovernancePolicy:
        path = Path(path or DEFAULT_POLICY_PATH)
        if not path.is_file():
            raise ValueError(f"governance policy file {path} does not exist")
        return cls.from_dict(yaml.safe_load(path.read_text()) or {})
