"""Normalising user text before it is stored or shown."""

import re
import unicodedata

# Control characters (except newline), zero-width characters, bidi overrides and
# isolates, and the BOM. NFKC folds full-width forms and compatibility glyphs.
# The zero-width joiner (U+200D) and the emoji variation selectors (U+FE0E, U+FE0F)
# are not here: `_joiners` keeps them inside emoji sequences and drops them elsewhere.
_INVISIBLE = re.compile(
    "[\x00-\x09\x0b-\x1f\x7f-\x9f\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5"
    "\u180b-\u180f\u200b\u200c\u200e\u200f\u202a-\u202e\u2060-\u206f\u3164\ufe00-\ufe0d"
    "\ufeff\uffa0\ufff0-\ufff8]"
)
_SPACES = re.compile(r"[^\S\n]+")
_NEWLINES = re.compile(r"\n{3,}")

ZWJ = "\u200d"
VS15, VS16 = "\ufe0e", "\ufe0f"
KEYCAP = "\u20e3"
_KEYCAP_BASES = frozenset("#*0123456789")
_SKIN_TONES = range(0x1F3FB, 0x1F400)

# Characters that can be (or start) an emoji: Unicode's Extended_Pictographic, by
# ranges a little wider than the property (never a letter, digit or CJK ideograph).
_PICTOGRAPHIC = (
    (0x00A9, 0x00A9), (0x00AE, 0x00AE), (0x203C, 0x203C), (0x2049, 0x2049), (0x2122, 0x2122),
    (0x2139, 0x2139), (0x2194, 0x21AA), (0x231A, 0x23FF), (0x24C2, 0x24C2), (0x25AA, 0x25FE),
    (0x2600, 0x27BF), (0x2934, 0x2935), (0x2B05, 0x2B55), (0x3030, 0x3030), (0x303D, 0x303D),
    (0x3297, 0x3297), (0x3299, 0x3299), (0x1F000, 0x1FAFF), (0x1FC00, 0x1FFFD),
)  # fmt: skip


def pictographic(ch: str) -> bool:
    code = ord(ch)
    return any(lo <= code <= hi for lo, hi in _PICTOGRAPHIC)


def _joiners(text: str) -> str:
    """Keep U+200D between two emoji (🧑‍💻), U+FE0F/U+FE0E after an emoji (❤️) or a
    keycap's base (1️⃣); drop them everywhere else, where they only hide text (a joiner
    between letters makes a word that a filter does not see)."""
    if ZWJ not in text and VS16 not in text and VS15 not in text:
        return text
    out: list[str] = []
    for i, ch in enumerate(text):
        nxt = text[i + 1] if i + 1 < len(text) else ""
        if ch in (VS15, VS16):
            prev = out[-1] if out else ""
            keep = bool(prev) and (pictographic(prev) or (prev in _KEYCAP_BASES and nxt == KEYCAP))
        elif ch == ZWJ:
            # the emoji before the joiner, past its presentation selector or skin tone
            j = len(out) - 1
            while j >= 0 and (out[j] in (VS15, VS16) or ord(out[j]) in _SKIN_TONES):
                j -= 1
            keep = j >= 0 and pictographic(out[j]) and bool(nxt) and pictographic(nxt)
        else:
            keep = True
        if keep:
            out.append(ch)
    return "".join(out)


# Chinese full-width punctuation is how Chinese is written: NFKC would turn
# "，" into ",", so these are kept as they are (full-width letters and digits
# are still folded). They ride through NFKC as private-use placeholders.
_KEEP = "，。？！：；（）【】、《》“”‘’—…～"
_TO_PUA = {ord(c): 0xE000 + i for i, c in enumerate(_KEEP)}
_FROM_PUA = {0xE000 + i: ord(c) for i, c in enumerate(_KEEP)}


def normalise(text: str) -> str:
    """NFKC (keeping Chinese punctuation), invisible and bidi-control characters
    removed (emoji sequences kept whole), runs of spaces collapsed."""
    text = unicodedata.normalize("NFKC", text.translate(_TO_PUA)).translate(_FROM_PUA)
    text = _INVISIBLE.sub("", text)
    text = _joiners(text)  # guard: joiners
    text = _SPACES.sub(" ", text)
    text = _NEWLINES.sub("\n\n", text)
    return "\n".join(line.strip() for line in text.split("\n")).strip()


def single_line(text: str) -> str:
    return " ".join(normalise(text).split())
