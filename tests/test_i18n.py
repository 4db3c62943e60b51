"""One string catalog per language (server/i18n/<lang>.json), shared by templates and scripts.

Every key is in every language, with text and the same placeholders; every key the
templates, the Python code and the scripts ask for exists (and the scripts' keys reach
the browser); every key is used; the pages embed the scripts' strings as valid JSON
and the scripts render them.
"""

import json
import re
from pathlib import Path

import httpx
import pytest
from conftest import create_show, host_cookies, wait_until

from server import protocol
from server.domain.questions import STATUSES as QUESTION_STATUSES
from server.domain.rounds import FINISHED, IDLE, PAUSED, RUNNING
from server.domain.show import SHOW_STATUSES
from server.i18n import (
    BROWSER_NAMESPACES,
    CONSOLE_NAMESPACES,
    DEFAULT_LANG,
    LANGS,
    PAGE_NAMESPACES,
    STRINGS,
    browser_json,
    namespace,
    translator,
)

SCRIPT_NAMESPACES = BROWSER_NAMESPACES | PAGE_NAMESPACES  # every page's, and those a page asks for

ROOT = Path(__file__).resolve().parent.parent
CATALOG_DIR = ROOT / "server" / "i18n"
TEMPLATES = sorted((ROOT / "server" / "templates").glob("*.html"))
SCRIPTS = sorted((ROOT / "overlay").rglob("*.js"))
PYTHON = sorted(p for p in (ROOT / "server").rglob("*.py") if p.parent != CATALOG_DIR)

KEY = re.compile(r"[a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+")
# the argument text of each call of a function named exactly `t`
CALL = re.compile(r"(?<![\w.$])t\(")
QUOTED = re.compile(r"""(?:\bf)?"([^"\n]*)"|(?:\bf)?'([^'\n]*)'|`([^`\n]*)`""")
EMBED = re.compile(r'<script id="lt-i18n" type="application/json">(.*?)</script>', re.S)
ZH, EN = STRINGS["zh-CN"], STRINGS["en"]


def call_args(source: str):
    for m in CALL.finditer(source):
        depth, i = 1, m.end()
        while depth and i < len(source):
            depth += {"(": 1, ")": -1}.get(source[i], 0)
            i += 1
        yield source[m.end() : i - 1]


def keys_asked(paths) -> tuple[set[str], set[str]]:
    """Literal keys and dynamic key prefixes ("q." ~ f, `err.${code}`, f"q.{s}") in t(...) calls."""
    keys, prefixes = set(), set()
    for path in paths:
        for arg in call_args(path.read_text(encoding="utf-8")):
            for m in QUOTED.finditer(arg):
                text = next(g for g in m.groups() if g is not None)
                cut = min((i for i in (text.find("${"), text.find("{")) if i >= 0), default=-1)
                joined = arg[m.end() :].lstrip()[:1] in ("~", "+")  # "form.side_" ~ key
                if cut >= 0 or joined:
                    prefixes.add(text[:cut] if cut >= 0 else text)
                elif KEY.fullmatch(text):
                    keys.add(text)
    return keys, prefixes


def script_key_literals() -> set[str]:
    """Key-shaped strings in the scripts held in variables before they reach t() (labels maps,
    close-code messages): those in a browser namespace, less the protocol's message types."""
    types = {*protocol.CLIENT_TYPES, *protocol.SERVER_TYPES}
    found = set()
    for path in SCRIPTS:
        for m in re.finditer(r'"([^"\n]*)"', path.read_text(encoding="utf-8")):
            text = m.group(1)
            if KEY.fullmatch(text) and namespace(text) in SCRIPT_NAMESPACES and text not in types:
                found.add(text)
    return found


def placeholders(text: str) -> set[str]:
    return set(re.findall(r"\{(\w+)\}", text))


# -- the catalogs --------------------------------------------------------------------


def test_one_catalog_file_per_language():
    assert sorted(p.stem for p in CATALOG_DIR.glob("*.json")) == sorted(LANGS)
    assert DEFAULT_LANG in LANGS
    for lang in LANGS:
        raw = json.loads((CATALOG_DIR / f"{lang}.json").read_text(encoding="utf-8"))
        assert raw == STRINGS[lang] and all(isinstance(v, str) for v in raw.values())


def test_every_key_is_in_every_language():
    for lang in LANGS:
        assert set(STRINGS[lang]) == set(STRINGS[DEFAULT_LANG]), (
            lang,
            sorted(set(STRINGS[lang]) ^ set(STRINGS[DEFAULT_LANG])),
        )
    # and in the same order, so the files read side by side
    assert all(list(STRINGS[lang]) == list(STRINGS[DEFAULT_LANG]) for lang in LANGS)


def test_keys_are_dotted_names_and_values_are_not_empty():
    for lang, table in STRINGS.items():
        for key, value in table.items():
            assert KEY.fullmatch(key), key
            assert value.strip(), (lang, key)
            assert value == value.strip(), (lang, key)


def test_same_placeholders_in_every_language():
    for key, value in STRINGS[DEFAULT_LANG].items():
        for lang in LANGS:
            assert placeholders(STRINGS[lang][key]) == placeholders(value), (lang, key)


def test_placeholders_work_the_same_in_python_and_in_the_browser():
    # i18n.js fills {name}; Python's str.format would also read {0}, {n:,}, {{ and }}: none of those.
    for lang, table in STRINGS.items():
        for key, value in table.items():
            rest = re.sub(r"\{[A-Za-z_]\w*\}", "", value)
            assert "{" not in rest and "}" not in rest, (lang, key, value)
            assert value.format(**{name: "" for name in placeholders(value)}) == re.sub(r"\{\w+\}", "", value)


def test_translator_falls_back_to_chinese_then_to_the_key():
    assert translator("en")("q.pending") == EN["q.pending"]
    assert translator("fr")("q.pending") == ZH["q.pending"]
    assert translator("en")("no.such.key") == "no.such.key"


# -- who asks for which key ------------------------------------------------------------


def test_every_key_the_templates_and_python_ask_for_exists():
    keys, prefixes = keys_asked([*TEMPLATES, *PYTHON])
    assert keys, "no t(...) calls found: is the pattern out of date?"
    assert not sorted(keys - set(ZH)), "keys missing from the catalog"
    for prefix in prefixes:
        assert "." in prefix and any(k.startswith(prefix) for k in ZH), prefix


def test_every_key_the_scripts_ask_for_exists_and_reaches_the_browser():
    keys, prefixes = keys_asked(SCRIPTS)
    keys |= script_key_literals()
    assert keys, "no t(...) calls found: is the pattern out of date?"
    assert not sorted(keys - set(ZH)), "keys missing from the catalog"
    assert not sorted(k for k in keys if namespace(k) not in SCRIPT_NAMESPACES), "not sent to the browser"
    for prefix in prefixes:
        assert "." in prefix and namespace(prefix) in SCRIPT_NAMESPACES, prefix
        assert any(k.startswith(prefix) for k in ZH), prefix


def test_keys_built_from_states_exist_for_every_state():
    # t(`q.${status}`), t("q." ~ f), t(f"q.{s}"), t(`show.${status}`), t(`round.${status}`), t(`err.${code}`) ...
    for status in QUESTION_STATUSES:
        assert f"q.{status}" in ZH
    for status in SHOW_STATUSES:
        assert f"show.{status}" in ZH and f"producer.status.{status}" in ZH
    for status in (IDLE, RUNNING, PAUSED, FINISHED, "timeup"):
        assert f"round.{status}" in ZH
    for state in ("connecting", "open", "reconnecting", "stopped"):  # overlay/common/ws.js
        assert f"status.{state}" in ZH
    for code in ("invalid", "forbidden", "not_found", "conflict", "unavailable", "rate_limited", "too_large"):
        assert code in protocol.ERROR_CODES and f"err.{code}" in ZH
    console = (ROOT / "overlay" / "console" / "console.js").read_text(encoding="utf-8")
    actions = set(re.findall(r'"(\w+)"', re.search(r"ACTIONS_BY_STATUS = \{(.*?)\};", console, re.S).group(1)))
    for action in actions | {"ban", "unban"}:
        assert f"action.{action}" in ZH, action


def test_every_key_is_used():
    asked, prefixes = keys_asked([*TEMPLATES, *PYTHON, *SCRIPTS])
    asked |= script_key_literals()
    unused = [k for k in ZH if k not in asked and not any(k.startswith(p) for p in prefixes)]
    assert not unused, "keys nobody asks for (remove them, or the caller is not found)"


# -- the strings in the page -------------------------------------------------------------


def test_browser_json_is_safe_inside_a_script_element():
    table = {"q.evil": "</script><script>alert('x')</script> & <!--", "report.x": "not sent"}
    out = str(browser_json(table))
    assert "<" not in out and ">" not in out and "&" not in out and "'" not in out
    assert json.loads(out) == {"q.evil": table["q.evil"]}


def embedded(html: str) -> dict[str, str]:
    blocks = EMBED.findall(html)
    assert len(blocks) == 1, "one lt-i18n block per page"
    return json.loads(blocks[0])


@pytest.mark.parametrize("lang", LANGS)
def test_pages_embed_the_scripts_strings_as_valid_json(server, lang):
    browser_keys = {k for k in ZH if namespace(k) in BROWSER_NAMESPACES}
    with httpx.Client(base_url=server.url, params={"lang": lang}) as http:
        pages = {"/s/demo": http.get("/s/demo"), "/overlay/demo": http.get("/overlay/demo")}
    with httpx.Client(base_url=server.url, params={"lang": lang}, cookies=host_cookies(server.url)) as http:
        pages["/console/demo"] = http.get("/console/demo")
        producer = [http.get(path).text for path in ("/shows", "/season", "/shows/demo/report")]
        login = httpx.get(f"{server.url}/login").text
    for path, r in pages.items():
        assert r.status_code == 200, path
        strings = embedded(r.text)
        keys = {k for k in browser_keys if path.startswith("/console") or namespace(k) not in CONSOLE_NAMESPACES}
        assert strings == {k: STRINGS[lang][k] for k in keys}, path
        assert f'<html lang="{lang}">' in r.text
    assert len(pages["/s/demo"].content) < 16_000  # the phone page stays small
    # Pages whose scripts render no strings carry none.
    for html in (*producer, login):
        assert not EMBED.search(html)


def test_the_phone_page_is_not_much_bigger_for_the_strings(server):
    html = httpx.get(f"{server.url}/s/demo").text
    block = EMBED.search(html).group(1)
    assert len(block.encode()) < 4_000


# -- the scripts render the strings -------------------------------------------------------


def visible_keys(text: str) -> list[str]:
    return [k for k in ZH if re.search(rf"(?<![\w.]){re.escape(k)}(?![\w.])", text)]


PAGE_TEXT = """() => [document.title, document.body.textContent,
  ...[...document.querySelectorAll("[placeholder],[aria-label],[title]")].flatMap(
    (n) => [n.getAttribute("placeholder"), n.getAttribute("aria-label"), n.getAttribute("title")])
].filter(Boolean).join("\\n")"""


@pytest.mark.browser
@pytest.mark.parametrize("lang", LANGS)
async def test_scripts_render_catalog_strings_not_keys(browser, server, clients, lang):
    t = translator(lang)
    slug = create_show(server.url)
    console_ws = await clients.console(slug)
    phone_ws = await clients.audience(slug)
    await console_ws.request({"type": "round.start", "topic": "辩题", "duration_s": 300})
    ack = await phone_ws.request({"type": "ask", "text": "一个问题？", "name": ""})
    await console_ws.request({"type": "question.approve", "question": ack["question"]})
    await console_ws.request({"type": "question.feature", "question": ack["question"]})

    phone_ctx = await browser.new_context(viewport={"width": 390, "height": 844}, locale=lang)
    studio_ctx = await browser.new_context(viewport={"width": 1920, "height": 1080}, locale=lang)
    host_ctx = await browser.new_context(viewport={"width": 1366, "height": 900}, locale=lang)
    await host_ctx.add_cookies(
        [{"name": "lt_session", "value": host_cookies(server.url)["lt_session"], "url": server.url}]
    )
    phone, overlay, console = await phone_ctx.new_page(), await studio_ctx.new_page(), await host_ctx.new_page()
    await phone.goto(f"{server.url}/s/{slug}?lang={lang}")
    await overlay.goto(f"{server.url}/overlay/{slug}?lang={lang}")
    await console.goto(f"{server.url}/console/{slug}?lang={lang}")

    round_1 = t("round.n").format(n=1)
    for page in (phone, overlay, console):
        await wait_until(lambda page=page: _text(page, ".round-no", round_1), timeout=10)
    await wait_until(lambda: _text(phone, "#questions .q-name", t("q.anonymous")), timeout=10)
    await wait_until(lambda: _text(phone, "#questions .tag", t("q.featured")), timeout=10)
    await wait_until(lambda: _text(overlay, "#question .q-name", t("q.anonymous")), timeout=10)
    await wait_until(lambda: _text(console, "#queue .chip", t("q.featured")), timeout=10)
    await wait_until(lambda: _text(console, "#conn-status", t("status.open")), timeout=10)
    assert (await console.text_content("#queue .act-unfeature")).strip() == t("action.unfeature")
    assert (await console.text_content("#filters [data-filter=pending] .label")).strip() == t("q.pending")
    assert (await overlay.text_content("#pk .metric")).strip() == t("pk.likes_show")  # the bar says what it counts
    for name, page in (("phone", phone), ("overlay", overlay), ("console", console)):
        text = await page.evaluate(PAGE_TEXT)
        assert not visible_keys(text), (name, visible_keys(text))
    for ctx in (phone_ctx, studio_ctx, host_ctx):
        await ctx.close()


async def _text(page, selector: str, expected: str) -> bool:
    node = page.locator(selector).first
    return await node.count() > 0 and (await node.text_content() or "").strip() == expected
