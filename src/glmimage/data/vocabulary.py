"""The words designs are written with, and which split may use each of them.

Short common English words, so a small model can learn their glyphs at 256x256. Every word belongs to exactly one
split by a stable hash: the test split's words never appear in training, so text accuracy on test measures
spelling of unseen words rather than memory.
"""

from __future__ import annotations

import hashlib
from functools import cache


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# Nouns for titles, headings and product names (upper-cased when drawn as titles).
NOUNS = _words(
    """
    sale coffee music summer winter spring autumn garden book pizza burger pasta salad soup bread cake cookie
    donut fruit apple lemon mango peach cherry berry grape melon banana orange tea juice milk water honey
    cheese butter pepper salt sugar rice noodle taco sushi steak chicken fish market cafe bakery diner kitchen
    studio gallery museum library school college campus office meeting project report budget sprint launch
    update release product service support travel flight hotel beach island river forest mountain desert
    city park street bridge tower castle garden festival concert party dance movie cinema theater game sport
    soccer tennis golf yoga fitness running cycling swim hiking camping team club family friend kids baby pet
    puppy kitten bird horse ocean planet rocket star moon cloud rain snow storm wind sunset sunrise night
    morning weekend holiday gift card ticket pass offer deal price shop store brand style fashion shoes shirt
    jacket dress watch phone laptop camera radio robot pixel data cloud code design paint color photo poster
    news story poem song album piano guitar drum jazz rock vinyl craft wood stone glass metal paper plant
    flower rose tulip daisy lotus leaf tree seed farm harvest picnic lunch dinner brunch snack dessert
    """
)

# Adjectives and openers for titles and phrases.
ADJECTIVES = _words(
    """
    big new hot cool fresh super mega mini happy bright bold smart quick easy simple pure clean green
    golden silver royal urban wild sweet spicy crispy tasty healthy daily weekly grand open free best
    top prime final first great tiny little modern classic retro vintage cozy sunny frozen local organic
    lucky magic epic calm quiet loud fast slow early late
    """
)

# Verbs for recipe / how-to steps.
VERBS = _words(
    """
    mix bake chop stir pour boil fry grill slice whisk knead roll fold blend serve heat cool wash peel
    dice toast roast melt shake press plant water trim paint sand glue build test learn read write draw
    plan start finish check pack ship sort clean rest wait
    """
)

# Short labels for dashboard cards and charts.
LABELS = _words(
    """
    users sales orders visits clicks views likes signups revenue profit growth traffic uptime errors tasks
    tickets leads trials churn cost stock income spend reach shares posts calls emails steps sleep heart
    """
)

# Joining words for phrases; too common to hold out.
FUNCTION_WORDS = ("and", "the", "for", "with", "your", "our", "now", "today", "all", "day", "every", "at")

# Words of the fixed strings layouts write (calls to action, "STEP 1", "... REPORT", "per week", months): every
# split uses them, so they are never held out.
FIXED_WORDS = frozenset(
    _words(
        """
        shop now join us buy book learn more sign up order try it step report per day week month
        jan feb mar apr may jun jul aug sep oct nov dec
        """
    )
    + FUNCTION_WORDS
)

SPLITS = ("train", "validation", "test")

# Fractions of the vocabulary reserved for each held-out split (the rest is train).
HELD_OUT_PERCENT = {"test": 12, "validation": 8}


def stable_bucket(key: str, buckets: int = 100) -> int:
    """A bucket in [0, buckets) that never changes between runs or machines (unlike hash())."""
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % buckets


def split_of(key: str) -> str:
    """The split that owns a word ("word:sale") or a combination key; fixed words belong to every split."""
    if key.startswith("word:") and key[5:] in FIXED_WORDS:
        return "train"
    bucket = stable_bucket(key)
    if bucket < HELD_OUT_PERCENT["test"]:
        return "test"
    if bucket < HELD_OUT_PERCENT["test"] + HELD_OUT_PERCENT["validation"]:
        return "validation"
    return "train"


@cache
def words_for(category: str, split: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(own, shared) words of a category for a split: own = held-out words of that split (train: its words),
    shared = train words a held-out split may mix in."""
    pools = {"nouns": NOUNS, "adjectives": ADJECTIVES, "verbs": VERBS, "labels": LABELS}
    if category not in pools:
        raise KeyError(f"unknown word category {category!r}; known: {sorted(pools)}")
    if split not in SPLITS:
        raise KeyError(f"unknown split {split!r}; known: {SPLITS}")
    words = tuple(w for w in dict.fromkeys(pools[category]) if w not in FIXED_WORDS)  # de-duplicate, keep order
    own = tuple(w for w in words if split_of("word:" + w) == split)
    shared = tuple(w for w in words if split_of("word:" + w) == "train")
    return own, shared


def all_words() -> tuple[str, ...]:
    return tuple(dict.fromkeys(NOUNS + ADJECTIVES + VERBS + LABELS))
