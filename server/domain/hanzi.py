"""Folding Chinese text for matching: full-width to half-width, lower case,
traditional to simplified.

The traditional -> simplified table is package data (`server/data/t2s.txt`,
derived from OpenCC), read once when this module is first imported, like a
constant; nothing here does I/O after that. Used by the sensitive-word filter
(`server/wordfilter.py`) and the question clusters (`server/domain/clusters.py`).
"""

import unicodedata
from pathlib import Path

T2S_FILE = Path(__file__).resolve().parent.parent / "data" / "t2s.txt"


def _t2s_table() -> dict[int, int]:
    table: dict[int, int] = {}
    for line in T2S_FILE.read_text(encoding="utf-8").splitlines():
        if len(line) == 2 and not line.startswith("#"):
            table[ord(line[0])] = ord(line[1])
    return table


T2S: dict[int, int] = _t2s_table()


def simplify(text: str) -> str:
    """NFKC (full-width letters, digits and punctuation become half-width), lower case,
    traditional characters replaced by simplified ones, one character for one."""
    return unicodedata.normalize("NFKC", text).lower().translate(T2S)
