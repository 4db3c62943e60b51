"""UI strings of the server-rendered pages: one catalog per language.

``server/i18n/<lang>.json`` holds the strings of one language as flat
``"namespace.name": "text"`` pairs; ``{name}`` marks a placeholder for ``str.format``.
The browser keeps its own strings for what scripts render (``overlay/common/i18n.js``).
"""

import json
from collections.abc import Callable
from pathlib import Path

DEFAULT_LANG = "zh-CN"
LANGS = ("zh-CN", "en")

HERE = Path(__file__).resolve().parent


def _load(lang: str) -> dict[str, str]:
    with open(HERE / f"{lang}.json", encoding="utf-8") as f:
        return json.load(f)


STRINGS: dict[str, dict[str, str]] = {lang: _load(lang) for lang in LANGS}


def translator(lang: str) -> Callable[[str], str]:
    """Return ``t(key)`` for *lang*; unknown languages use zh-CN, unknown keys return the key."""
    table = STRINGS.get(lang) or STRINGS[DEFAULT_LANG]

    def t(key: str) -> str:
        return table.get(key, key)

    return t
