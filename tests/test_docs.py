"""The README lists every setting, and the browser's protocol lists match the server's."""

import re
from dataclasses import fields
from pathlib import Path

from server import protocol
from server.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def test_readme_lists_every_setting():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = [f.name.upper() for f in fields(Settings) if f"`{f.name.upper()}`" not in readme]
    assert not missing, f"settings missing from README.md: {missing}"


def js_list(source: str, name: str) -> list[str]:
    m = re.search(name + r"\s*=\s*(?:Object\.freeze\()?\[(.*?)\]", source, re.S)
    assert m, name
    return re.findall(r'"([^"]+)"', m.group(1))


def test_browser_protocol_matches_server():
    js = (ROOT / "overlay" / "common" / "protocol.js").read_text(encoding="utf-8")
    assert set(js_list(js, "SERVER_TYPES")) == set(protocol.SERVER_TYPES)
    assert set(js_list(js, "CLIENT_TYPES")) == set(protocol.CLIENT_TYPES)
    assert set(js_list(js, "ERROR_CODES")) == set(protocol.ERROR_CODES)


def test_protocol_doc_mentions_every_type():
    doc = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
    for kind in (*protocol.SERVER_TYPES, *protocol.CLIENT_TYPES, *protocol.ERROR_CODES):
        assert f"`{kind}`" in doc or f'"{kind}"' in doc, kind
