"""The README lists every setting; the browser takes its rules from the server."""

import re
from dataclasses import fields
from pathlib import Path

import httpx
import orjson
from conftest import host_cookies

from server import protocol
from server.domain import DEFAULT_COLORS
from server.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def test_readme_lists_every_setting():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = [f.name.upper() for f in fields(Settings) if f"`{f.name.upper()}`" not in readme]
    assert not missing, f"settings missing from README.md: {missing}"


def test_browser_reads_the_rules_from_the_server(server):
    """Pages embed the server's rule sheet; no script keeps its own copy of a type
    list, a limit or a default colour."""
    html = httpx.get(f"{server.url}/s/demo").text
    m = re.search(r'<script id="lt-rules" type="application/json">(.*?)</script>', html, re.S)
    assert m, "the audience page embeds the rules"
    rules = orjson.loads(m.group(1))
    settings = Settings()
    assert rules == orjson.loads(orjson.dumps(protocol.rules(settings.text_limits, settings.floor_warn_share)))
    assert rules["colors"] == DEFAULT_COLORS
    for path in (ROOT / "overlay").rglob("*.js"):
        js = path.read_text(encoding="utf-8")
        assert not re.search(r"#[0-9a-fA-F]{6}\b", js), f"{path}: a colour literal (use the rules)"
        for kind in ("snapshot", "question.approve", "rate_limited"):
            assert not re.search(r"\[[^\]]*\"%s\"[^\]]*,[^\]]*\]" % re.escape(kind), js), (
                f"{path}: a hand-copied list of protocol names"
            )


def test_page_inputs_obey_the_server_limits(fresh_server):
    srv = fresh_server(QUESTION_MAX="100", NAME_MAX="12", TOPIC_MAX="30")
    html = httpx.get(f"{srv.url}/s/demo").text
    assert 'name="text" maxlength="100"' in html and 'name="name" type="text" maxlength="12"' in html
    assert "0/100" in html
    console = httpx.get(f"{srv.url}/console/demo", cookies=host_cookies(srv.url)).text
    assert 'id="round-topic" type="text" maxlength="30"' in console


def test_protocol_doc_mentions_every_type():
    doc = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
    for kind in (*protocol.SERVER_TYPES, *protocol.CLIENT_TYPES, *protocol.ERROR_CODES):
        assert f"`{kind}`" in doc or f'"{kind}"' in doc, kind


def test_stylesheet_side_colours_are_the_server_defaults():
    """CSS cannot read the rule sheet; its first-paint side colours are checked instead."""
    css = (ROOT / "overlay" / "common" / "base.css").read_text(encoding="utf-8")
    for side in ("a", "b"):
        m = re.search(rf"--{side}:\s*(#[0-9a-fA-F]{{6}})", css)
        assert m and m.group(1).lower() == DEFAULT_COLORS[side], side


def test_every_guard_is_in_the_mutation_check_and_the_reliability_doc():
    """A protection marked `guard: NAME` in the code has a mutation case (which
    removes it and expects its test to fail) and a line in docs/reliability.md."""
    import importlib.machinery
    import importlib.util

    loader = importlib.machinery.SourceFileLoader("mutation_check", str(ROOT / "scripts" / "mutation-check"))
    spec = importlib.util.spec_from_loader("mutation_check", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    found = module.markers()
    assert found, "no guard markers found"
    assert set(found) == set(module.CASES), set(found) ^ set(module.CASES)
    assert all(len(places) == 1 for places in found.values()), found
    doc = (ROOT / "docs" / "reliability.md").read_text(encoding="utf-8")
    missing = [name for name in module.CASES if f"`{name}`" not in doc]
    assert not missing, f"guards not in docs/reliability.md: {missing}"
    # every case names a test that exists (a renamed test would make its case pass silently)
    gone = []
    for name, (_, test) in module.CASES.items():
        path, _, func = test.partition("::")
        func = func.split("[", 1)[0]
        source = (ROOT / path).read_text(encoding="utf-8") if (ROOT / path).exists() else ""
        if not re.search(rf"^(async )?def {re.escape(func)}\(", source, re.M):
            gone.append((name, test))
    assert not gone, f"mutation cases naming no test: {gone}"
