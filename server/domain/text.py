"""Normalising user text before it is stored or shown."""

import re
import unicodedata

# Control characters (except newline), zero-width characters, bidi overrides and
# isolates, and the BOM. NFKC folds full-width forms and compatibility glyphs.
_INVISIBLE = re.compile(
    "[\x00-\x09\x0b-\x1f\x7f-\x9f\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5"
    "\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f"
    "\ufeff\uffa0\ufff0-\ufff8]"
)
_SPACES = re.compile(r"[^\S\n]+")
_NEWLINES = re.compile(r"\n{3,}")


# Chinese full-width punctuation is how Chinese is written: NFKC would turn
# "，" into ",", so these are kept as they are (full-width letters and digits
# are still folded). They ride through NFKC as private-use placeholders.
_KEEP = "，。？！：；（）【】、《》“”‘’—…～"
_TO_PUA = {ord(c): 0xE000 + i for i, c in enumerate(_KEEP)}
_FROM_PUA = {0xE000 + i: ord(c) for i, c in enumerate(_KEEP)}


def normalise(text: str) -> str:
    """NFKC (keeping Chinese punctuation), invisible and bidi-control characters
    removed, runs of spaces collapsed."""
    text = unicodedata.normalize("NFKC", text.translate(_TO_PUA)).translate(_FROM_PUA)
    text = _INVISIBLE.sub("", text)
    text = _SPACES.sub(" ", text)
    text = _NEWLINES.sub("\n\n", text)
    return "\n".join(line.strip() for line in text.split("\n")).strip()


def single_line(text: str) -> str:
    return " ".join(normalise(text).split())
