"""UI strings: one catalog per language, shared by the templates and the scripts.

``server/i18n/<lang>.json`` holds every string of the UI for one language, as flat
``"namespace.name": "text"`` pairs; ``{name}`` marks a placeholder (``str.format`` in
Python, ``t(key, {name})`` in ``overlay/common/i18n.js``). Templates and Python call
``translator(lang)``; pages with scripts embed the keys of ``BROWSER_NAMESPACES``
(``Translator.browser_json``, rendered by ``templates/base.html``), which is all the
scripts may ask for. ``tests/test_i18n.py`` checks the catalogs and their callers.
"""

import json
from functools import partial
from pathlib import Path

from jinja2.utils import htmlsafe_json_dumps
from markupsafe import Markup

DEFAULT_LANG = "zh-CN"
LANGS = ("zh-CN", "en")

# Namespaces the scripts read; only these reach the browser. The others (app, common,
# overlay, audience, console, login, producer, form, reset, report, season) are for
# templates and Python only; `verdict` too, though the phone's and the overlay's scripts
# show it: templates/verdict_words.html hands its words over as data attributes
# (overlay/common/verdict.js), so the phone's embedded catalog stays small.
BROWSER_NAMESPACES = frozenset(
    {"status", "action", "round", "show", "pk", "q", "vote", "ask", "toast", "err", "host", "device"}
)

# Of those, the ones only the host console's scripts read: the other pages (the phone
# page above all) leave them out.
CONSOLE_NAMESPACES = frozenset({"host"})

# Namespaces only the pages that ask for them embed (besides BROWSER_NAMESPACES), so that
# every other page, the phone's live page first, stays small: `poll` (the season poll's
# phone page and the overlay's poll widget). A template asks with
# `{{ t.browser_json_with("poll") }}`.
PAGE_NAMESPACES = frozenset({"poll"})

HERE = Path(__file__).resolve().parent


def _load(lang: str) -> dict[str, str]:
    with open(HERE / f"{lang}.json", encoding="utf-8") as f:
        return json.load(f)


STRINGS: dict[str, dict[str, str]] = {lang: _load(lang) for lang in LANGS}


def namespace(key: str) -> str:
    return key.split(".", 1)[0]


def browser_json(table: dict[str, str], console: bool = False, extra: frozenset[str] = frozenset()) -> Markup:
    """The browser part of *table* as JSON safe inside <script> (``<``, ``>``, ``&``, ``'`` escaped):
    the console's own namespaces only for the console, and the `extra` page namespaces."""
    strings = {
        k: v
        for k, v in table.items()
        if (namespace(k) in BROWSER_NAMESPACES and (console or namespace(k) not in CONSOLE_NAMESPACES))
        or namespace(k) in extra
    }
    return htmlsafe_json_dumps(strings, dumps=partial(json.dumps, ensure_ascii=False, separators=(",", ":")))


class Translator:
    """``t(key)`` for one language; unknown keys fall back to zh-CN, then to the key itself."""

    def __init__(self, lang: str) -> None:
        self.lang = lang if lang in STRINGS else DEFAULT_LANG
        self.table = STRINGS[self.lang]
        self.browser_json = _BROWSER_JSON[self.lang]
        self.console_json = _CONSOLE_JSON[self.lang]

    def __call__(self, key: str) -> str:
        return self.table.get(key) or STRINGS[DEFAULT_LANG].get(key, key)

    def browser_json_with(self, *namespaces: str) -> Markup:
        """The scripts' strings plus those of some PAGE_NAMESPACES, for the page that needs them."""
        return browser_json(self.table, extra=frozenset(namespaces) & PAGE_NAMESPACES)


_BROWSER_JSON = {lang: browser_json(table) for lang, table in STRINGS.items()}
_CONSOLE_JSON = {lang: browser_json(table, console=True) for lang, table in STRINGS.items()}
_TRANSLATORS = {lang: Translator(lang) for lang in LANGS}


def translator(lang: str) -> Translator:
    """Return ``t(key)`` for *lang* (unknown languages get zh-CN)."""
    return _TRANSLATORS.get(lang) or _TRANSLATORS[DEFAULT_LANG]
