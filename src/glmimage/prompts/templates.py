"""Prompt templates: Jinja2 text rendered in a sandbox, with strict variables and glyph-safe output.

Templates come from users and prompt libraries, so they run in `SandboxedEnvironment` (no attribute tricks, no
file access). Every `{{ value }}` is made literal (its quotes cannot open glyph text); only values passed through
the `glyph` filter become text to render: `{{ headline | glyph }}` -> "SUMMER SALE".
"""

from __future__ import annotations

from dataclasses import dataclass, field

import jinja2
from jinja2 import meta
from jinja2.sandbox import SandboxedEnvironment, SecurityError

from glmimage.errors import InputError
from glmimage.prompts.glyph_text import literal, quote_glyph


class _Glyph(str):
    """Output of the `glyph` filter: already quoted, so finalize must not make it literal."""


def _finalize(value: object) -> str:
    if isinstance(value, _Glyph):
        return value
    return literal(str(value))


def _environment() -> SandboxedEnvironment:
    env = SandboxedEnvironment(undefined=jinja2.StrictUndefined, finalize=_finalize, autoescape=False,
                               keep_trailing_newline=False)
    env.filters["glyph"] = lambda value: _Glyph(quote_glyph(str(value)))
    return env


_ENV = _environment()


@dataclass(frozen=True)
class PromptTemplate:
    """One version of a named template. Versions are immutable: a change is a new version."""

    name: str
    version: int
    source: str
    description: str = ""
    defaults: dict = field(default_factory=dict)  # values for variables the caller may leave out

    def __post_init__(self) -> None:
        if not self.name or not all(c.isalnum() or c in "-_." for c in self.name):
            raise InputError(f"template name {self.name!r} must be letters, digits, '-', '_' or '.'")
        if isinstance(self.version, bool) or not isinstance(self.version, int) or self.version < 1:
            raise InputError(f"template version must be a positive integer, got {self.version!r}")
        _ = self.variables  # parse now: a broken template fails when it is made, not when it is first used

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def variables(self) -> set[str]:
        """The names the template reads."""
        try:
            return meta.find_undeclared_variables(_ENV.parse(self.source))
        except jinja2.TemplateSyntaxError as exc:
            raise InputError(f"template {self.name!r} line {exc.lineno}: {exc.message}") from None

    def render(self, variables: dict | None = None) -> str:
        values = {**self.defaults, **(variables or {})}
        missing = sorted(self.variables - set(values))
        if missing:
            raise InputError(f"template {self.ref} needs variables {missing}; got {sorted(values)}")
        try:
            text = _ENV.from_string(self.source).render(values)
        except jinja2.UndefinedError as exc:
            raise InputError(f"template {self.ref}: {exc.message}") from None
        except SecurityError as exc:
            raise InputError(f"template {self.ref} tried something the sandbox forbids: {exc}") from None
        except jinja2.TemplateError as exc:
            raise InputError(f"template {self.ref}: {exc}") from None
        return " ".join(text.split())  # templates are written over lines; a prompt is one paragraph


def render_template(source: str, variables: dict | None = None) -> str:
    """Render an unnamed template string (for one-off use)."""
    return PromptTemplate(name="inline", version=1, source=source).render(variables)
