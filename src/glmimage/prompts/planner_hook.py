"""Planner hooks: expand a one-line request ("a vertical poster for our summer sale saying "50% OFF"") into a
visual specification (a `Brief`) before the prompt is compiled.

`RuleBasedPlanner` is the deterministic default: keywords pick the role, aspect, colours and style; quoted texts
are laid out in the role's usual regions. `OpenAIChatPlanner` asks any OpenAI-compatible chat endpoint for the
same JSON. Either way, every text the user quoted must reach the spec unchanged.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import httpx

from glmimage.engine.glyph_text import glyph_spans
from glmimage.errors import GlmImageError, InputError
from glmimage.models.sizes import ASPECT_PRESETS
from glmimage.prompts.brief import ROLES, Brief, Region, brief_from_dict
from glmimage.prompts.colors import NAMED_COLORS
from glmimage.prompts.glyph_text import protect_apostrophes

VisualSpec = Brief  # what a planner hook produces is a brief


class PlannerError(GlmImageError):
    """The planner backend failed or answered something that is not a valid visual specification."""


@runtime_checkable
class PlannerHook(Protocol):
    def expand(self, request_text: str) -> VisualSpec: ...


def _check_request(request_text: str) -> str:
    if not isinstance(request_text, str) or not request_text.strip():
        raise InputError("the request to expand is empty")
    return request_text.strip()


# --- Rule-based default -----------------------------------------------------------------------------------------
# Most specific first: "product photo" must win over "photo", "greeting card" over "card".
_ROLE_KEYWORDS: list[tuple[str, tuple[str, ...]]] = [
    ("infographic", ("infographic", "chart", "diagram", "timeline", "statistics")),
    ("product photo", ("product photo", "product shot", "packshot", "product photograph")),
    ("slide", ("slide", "presentation", "keynote")),
    ("menu", ("menu",)),
    ("banner", ("banner", "header image")),
    ("social post", ("instagram", "social media", "social post", "tiktok", "story", "reel")),
    ("card", ("greeting card", "birthday card", "invitation", "card")),
    ("illustration", ("illustration", "drawing", "cartoon", "sketch")),
    ("poster", ("poster", "flyer", "billboard")),
]
_ASPECT_KEYWORDS: list[tuple[str, tuple[str, ...]]] = [
    ("story", ("story", "reel", "tiktok")),
    ("vertical-social", ("vertical", "phone wallpaper")),
    ("slide", ("slide", "presentation", "widescreen", "16:9")),
    ("banner", ("banner",)),
    ("portrait", ("portrait",)),
    ("landscape", ("landscape", "horizontal")),
    ("square", ("square",)),
]
_ROLE_ASPECT = {"slide": "slide", "banner": "banner", "social post": "square", "poster": "poster"}
_STYLE_WORDS = ("minimal", "minimalist", "vintage", "retro", "watercolor", "watercolour", "flat", "3d", "neon",
                "photorealistic", "hand-drawn", "playful", "elegant", "luxury", "corporate", "futuristic",
                "bold", "pastel", "monochrome", "isometric")
# Region slots for quoted texts, per role: (position, content). Texts beyond the slots share the last one.
_SLOTS: dict[str, list[tuple[str, str]]] = {
    "poster": [("top", "a large bold headline"), ("center", "a subtitle"), ("bottom", "a small footer line")],
    "product photo": [("on the product label", "the product name"), ("top", "a short tagline"),
                      ("bottom right", "a price tag")],
    "infographic": [("top", "the title"), ("left column", "a labelled panel"), ("center column", "a labelled panel"),
                    ("right column", "a labelled panel")],
    "slide": [("top left", "the slide title"), ("center", "a key message"), ("bottom", "a caption")],
    "banner": [("on the left half", "a bold headline"), ("on the right half", "a call-to-action button")],
    "social post": [("top", "a catchy headline"), ("center", "the main message"), ("bottom", "a handle or date")],
    "menu": [("top", "the restaurant name"), ("center", "a menu item with its price"), ("bottom", "a footer note")],
    "card": [("center", "a handwritten greeting"), ("bottom", "a signature line")],
    "illustration": [("top", "a title"), ("bottom", "a caption")],
}
_VERB = re.compile(r"^(?:please\s+)?(?:(?:make|create|design|generate|draw|render|produce|give)\s+(?:me\s+|us\s+)?)?",
                   re.IGNORECASE)
_ARTICLE = re.compile(r"^(?:an?|the|some)\s+", re.IGNORECASE)
# Words that only introduce a quoted text ("titled", "with the label"); dropped with the quote they lead to.
_INTRO = r"(?:and|or|with|titled|entitled|saying|says|reading|reads|labelled|labeled|called|named|of|for|" \
         r"the|a|an|text|words?|label|title|caption|slogan|headline|tagline|steps|that|which)"
_TRAILING = re.compile(rf"(?:[\s,;:]+{_INTRO})*[\s,;:.-]*$", re.IGNORECASE)


def _find_keyword(text: str, table: list[tuple[str, tuple[str, ...]]]) -> tuple[str, re.Match] | None:
    for name, words in table:
        for word in words:
            m = re.search(rf"(?<![\w-]){re.escape(word)}s?(?![\w-])", text, flags=re.IGNORECASE)
            if m:
                return name, m
    return None


@dataclass(frozen=True)
class RuleBasedPlanner:
    """Deterministic keyword rules; the same request always gives the same spec."""

    default_role: str = "illustration"  # a plain description ("a cat on a sofa")

    def expand(self, request_text: str) -> VisualSpec:
        text = protect_apostrophes(_check_request(request_text))
        spans = glyph_spans(text)
        texts = [t for _, _, t in spans if t.strip()]
        # Keywords are looked for outside the quotes: "SLIDE INTO SUMMER" is text, not a role.
        unquoted = text
        for start, end, _ in reversed(spans):
            unquoted = unquoted[:start] + " " * (end - start) + unquoted[end:]

        found = _find_keyword(unquoted, _ROLE_KEYWORDS)
        role = found[0] if found else self.default_role
        ratio = re.search(r"(?<!\d)(\d{1,2})\s*:\s*(\d{1,2})(?!\d)", unquoted)
        aspect_found = _find_keyword(unquoted, _ASPECT_KEYWORDS)
        aspect = (f"{ratio.group(1)}:{ratio.group(2)}" if ratio
                  else aspect_found[0] if aspect_found else _ROLE_ASPECT.get(role))
        palette = []
        for name in sorted(NAMED_COLORS, key=len, reverse=True):  # "navy blue" before "blue"
            if re.search(rf"(?<!\w){re.escape(name)}(?!\w)", unquoted, flags=re.IGNORECASE):
                palette.append(NAMED_COLORS[name])
                unquoted = re.sub(rf"(?<!\w){re.escape(name)}(?!\w)", " " * len(name), unquoted, flags=re.IGNORECASE)
        style = ", ".join(w for w in _STYLE_WORDS
                          if re.search(rf"(?<![\w-]){re.escape(w)}(?![\w-])", unquoted, re.IGNORECASE))

        slots = _SLOTS[role]
        layout = tuple(Region(position=slots[min(i, len(slots) - 1)][0], content=slots[min(i, len(slots) - 1)][1],
                              text=t) for i, t in enumerate(texts))
        return Brief(subject=self._subject(text, spans, found), role=role, layout=layout, style=style,
                     palette=tuple(dict.fromkeys(palette)), aspect=aspect)

    @staticmethod
    def _subject(text: str, spans: list, role_match) -> str:
        """The request without its quoted texts (and the words introducing them), its opening verb, and the
        role noun it starts with: 'Make a vertical poster for our sale titled "SALE"' -> 'our sale'."""
        pieces, last = [], 0
        for start, end, _ in spans:
            pieces.append(_TRAILING.sub("", " " + text[last:start]))
            last = end
        pieces.append(text[last:])
        subject = " ".join(" ".join(pieces).split())
        subject = re.sub(r"\s+([,;:.])", r"\1", subject).strip(" ,;:.")
        subject = _VERB.sub("", subject)
        if role_match is not None:
            lead = re.match(r"^(?:\S+\s+){0,4}?" + re.escape(role_match[1].group(0)) +
                            r"\s+(?:for|of|about|announcing|showing|advertising|promoting|on|with)\s+",
                            _ARTICLE.sub("", subject), flags=re.IGNORECASE)
            if lead:
                subject = _ARTICLE.sub("", subject)[lead.end():]
            elif len(subject.split()) <= 4 and subject.lower().endswith(role_match[1].group(0).lower()):
                subject = ""  # "A poster saying ..." names only the role: nothing is left to describe
        if not subject:
            return "a typographic design" if spans else text
        if _ARTICLE.match(subject):
            subject = subject[0].lower() + subject[1:]  # it follows the role's opening mid-sentence
        return subject


# --- OpenAI-compatible chat backend -----------------------------------------------------------------------------
_SPEC_KEYS = ("subject", "role", "layout", "style", "palette", "texts", "aspect")
SYSTEM_PROMPT = (
    "You turn a short image request into a visual specification for a text-to-image model that renders text "
    "well. Answer with one JSON object and nothing else, with these keys: "
    '"subject" (string: what the image is of), '
    f'"role" (one of {sorted(ROLES)}), '
    '"layout" (list of {"position": where, "content": what is there, "text": exact text to render or omit}), '
    '"style" (string), "palette" (list of hex colours like "#1B2A49"), '
    '"texts" (list of other exact texts to render), '
    f'"aspect" (one of {sorted(ASPECT_PRESETS)} or a ratio like "16:9", or null). '
    "Every text the request puts in quotes must appear exactly, unchanged, in layout[].text or texts; "
    "add no other text to render unless the request asks for it."
)


def _json_from_content(content: str) -> dict:
    text = content.strip()
    fence = re.fullmatch(r"```(?:json)?\s*(.*?)\s*```", text, flags=re.DOTALL)
    if fence:
        text = fence.group(1)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PlannerError(f"planner answer is not JSON ({exc.msg} at char {exc.pos}): {content[:200]!r}") from None
    if not isinstance(data, dict):
        raise PlannerError(f"planner answer must be a JSON object, got {type(data).__name__}")
    return data


@dataclass(frozen=True)
class OpenAIChatPlanner:
    """Any server speaking OpenAI's chat completions (vLLM, llama.cpp, Ollama, OpenAI...).

    base_url includes the API version, as in the openai client: "http://127.0.0.1:8000/v1".
    """

    base_url: str
    model: str
    api_key: str | None = None
    timeout_s: float = 60.0
    temperature: float = 0.0
    json_mode: bool = True  # send response_format={"type": "json_object"}; turn off for servers that reject it

    def __post_init__(self) -> None:
        if not re.match(r"https?://", self.base_url):
            raise InputError(f"planner base_url must start with http:// or https://, got {self.base_url!r}")
        if not self.model:
            raise InputError("planner model name is empty")

    @property
    def endpoint(self) -> str:
        return self.base_url.rstrip("/") + "/chat/completions"

    def expand(self, request_text: str) -> VisualSpec:
        text = _check_request(request_text)
        payload = {
            "model": self.model,
            "messages": [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": text}],
            "temperature": self.temperature,
        }
        if self.json_mode:
            payload["response_format"] = {"type": "json_object"}
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        try:
            response = httpx.post(self.endpoint, json=payload, headers=headers, timeout=self.timeout_s)
        except httpx.HTTPError as exc:
            raise PlannerError(f"planner endpoint {self.endpoint} unreachable: {exc}") from None
        if response.status_code != 200:
            raise PlannerError(f"planner endpoint {self.endpoint} answered HTTP {response.status_code}: "
                               f"{response.text[:200]}")
        try:
            content = response.json()["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise PlannerError(f"planner endpoint {self.endpoint} did not answer a chat completion: "
                               f"{response.text[:200]}") from None
        data = _json_from_content(content or "")
        unknown = sorted(set(data) - set(_SPEC_KEYS))
        if unknown:
            raise PlannerError(f"planner answered unknown keys {unknown}; expected {list(_SPEC_KEYS)}")
        try:
            spec = brief_from_dict(data)
        except InputError as exc:
            raise PlannerError(f"planner answered an invalid spec: {exc}") from None
        # The user's quoted texts are the contract: a rewording model must not change what gets rendered.
        asked = [t for _, _, t in glyph_spans(text) if t.strip()]
        missing = [t for t in asked if t not in spec.glyph_texts]
        if missing:
            raise PlannerError(f"planner dropped or changed the quoted texts {missing}; it returned {spec.glyph_texts}")
        return spec


def make_planner(kind: str = "rule", *, base_url: str | None = None, model: str | None = None,
                 api_key: str | None = None) -> PlannerHook:
    """The planner a configuration names: "rule" (default) or "openai" (needs base_url and model)."""
    if kind == "rule":
        return RuleBasedPlanner()
    if kind == "openai":
        if not base_url or not model:
            raise InputError("the openai planner needs a base URL and a model name")
        return OpenAIChatPlanner(base_url=base_url, model=model, api_key=api_key)
    raise InputError(f"unknown planner {kind!r}; choose 'rule' or 'openai'")
