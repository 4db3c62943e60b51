"""Sensitive-word flagging for audience text (Chinese and English).

A question is matched after folding: NFKC, lower case, traditional to
simplified, and with every character that is not a letter or digit removed,
so separators, full-width forms and traditional characters do not hide a word.
One Aho-Corasick automaton holds the whole list; a scan is linear in the text.
"""

from functools import lru_cache
from pathlib import Path

import ahocorasick

from .domain.hanzi import simplify

DATA = Path(__file__).resolve().parent / "data"


def fold(text: str) -> str:
    """The form both the list and the text are compared in."""
    return fold_with_gaps(text)[0]


def fold_with_gaps(text: str) -> tuple[str, list[bool]]:
    """The folded text, and for each of its characters whether a separator preceded it."""
    text = simplify(text)
    out: list[str] = []
    gaps: list[bool] = []
    gap = False
    for ch in text:
        if ch.isalnum():
            out.append(ch)
            gaps.append(gap)
            gap = False
        else:
            gap = True
    return "".join(out), gaps


def _latin(ch: str) -> bool:
    return "a" <= ch <= "z"


class WordFilter:
    def __init__(self, words: list[str]) -> None:
        self.automaton = ahocorasick.Automaton()
        for word in words:
            key = fold(word)
            if key:
                self.automaton.add_word(key, key)
        self.empty = len(self.automaton) == 0
        if not self.empty:
            self.automaton.make_automaton()

    @classmethod
    @lru_cache(maxsize=1)
    def default(cls) -> "WordFilter":
        path = DATA / "sensitive-words.txt"
        words = [line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf-8").splitlines()]
        return cls([w for w in words if w])

    def matches(self, text: str) -> list[str]:
        if self.empty:
            return []
        folded, gaps = fold_with_gaps(text)
        found = []
        for end, word in self.automaton.iter(folded):
            start = end - len(word) + 1
            # a Latin word glued to more letters is part of another word: "class" is not "ass"
            if _latin(word[0]) and start > 0 and _latin(folded[start - 1]) and not gaps[start]:
                continue
            after = end + 1
            if _latin(word[-1]) and after < len(folded) and _latin(folded[after]) and not gaps[after]:
                continue
            found.append(word)
        return found

    def flagged(self, text: str) -> bool:
        return bool(self.matches(text))
