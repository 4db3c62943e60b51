"""The house rules of server/, checked: arrows between rooms point down, no import
cycles, and no function longer than about 60 lines unless a comment says why; and
the pages' style sheets close every rule."""

import ast
from collections import defaultdict
from pathlib import Path

SERVER = Path(__file__).resolve().parent.parent / "server"
MAX_LINES = 60

# room -> the rooms of ours it may import (besides itself)
ALLOWED = {
    "domain": set(),
    "store": {"domain", "settings"},
    "node": {"domain", "store", "hub", "protocol", "settings", "metrics", "transport"},
    "web": {"node", "protocol", "domain", "settings", "i18n", "hub", "transport", "metrics", "report", "charts"},
    "app": {"web", "node", "store", "settings", "metrics", "transport", "edge", "demo", "wordfilter"},
}


def module_name(path: Path) -> str:
    parts = path.relative_to(SERVER).with_suffix("").parts
    return ".".join(p for p in parts if p != "__init__")


def room(module: str) -> str:
    return module.split(".")[0] if module else ""


def imports(path: Path) -> set[str]:
    """The server modules a file imports (resolved from relative imports)."""
    here = module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - node.level + 1] if node.level > 1 else package
            target = ".".join([*base, *(node.module.split(".") if node.module else [])])
            if node.module is None:
                out.update(f"{target}.{a.name}".strip(".") for a in node.names)
            else:
                out.add(target)
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("server."):
            out.add(node.module[len("server.") :])
    return out


def graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in SERVER.rglob("*.py")}
    edges: dict[str, set[str]] = defaultdict(set)
    for name, path in files.items():
        for target in imports(path):
            while target and target not in files:
                target = target.rsplit(".", 1)[0] if "." in target else ""
            if target and target != name:
                edges[name].add(target)
    return edges


def test_arrows_between_rooms_point_down():
    wrong = []
    for module, targets in graph().items():
        mine = room(module)
        allowed = ALLOWED.get(mine)
        if allowed is None:
            continue
        for target in targets:
            if room(target) != mine and room(target) not in allowed:
                wrong.append(f"{module} -> {target}")
    assert not wrong, wrong


def test_no_import_cycles():
    edges = graph()
    seen: dict[str, int] = {}  # 1 on the stack, 2 done

    def visit(node: str, stack: list[str]) -> None:
        seen[node] = 1
        for nxt in edges.get(node, ()):
            # a package's __init__ re-exporting its own modules is not a cycle between rooms
            if nxt.startswith(node + ".") or node.startswith(nxt + "."):
                continue
            if seen.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*stack, node, nxt]))
            if nxt not in seen:
                visit(nxt, [*stack, node])
        seen[node] = 2

    for node in list(edges):
        if node not in seen:
            visit(node, [])


def test_functions_are_short_or_say_why():
    long = []
    for path in SERVER.rglob("*.py"):
        lines = path.read_text(encoding="utf-8").splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                head = "\n".join(lines[node.lineno - 1 : node.lineno + 3])
                if n > MAX_LINES and "long because" not in head:
                    long.append(f"{path.relative_to(SERVER)}:{node.lineno} {node.name} ({n} lines)")
    assert not long, long


def test_style_sheets_close_every_rule():
    """A rule left open swallows the rules after it: browsers that nest CSS read them as
    descendants of the open one, and they silently stop applying (the console's "older
    questions" button lost its style that way). No rule nests in another but inside an
    at-rule (@media, @supports, @keyframes, ...), and every one is closed."""
    import re

    for sheet in sorted((SERVER.parent / "overlay").rglob("*.css")):
        if "vendor" in sheet.parts:
            continue
        text = re.sub(r"/\*.*?\*/", "", sheet.read_text(), flags=re.S)
        text = re.sub(r"\"[^\"]*\"|'[^']*'", '""', text)
        stack: list[str] = []
        start = 0
        for i, ch in enumerate(text):
            if ch == "{":
                head = text[start:i].strip().split(";")[-1].strip()
                assert not stack or stack[-1].startswith("@"), f"{sheet.name}: {head!r} inside {stack[-1]!r}"
                stack.append(head)
                start = i + 1
            elif ch == "}":
                assert stack, f"{sheet.name}: a '}}' closes nothing (offset {i})"
                stack.pop()
                start = i + 1
        assert not stack, f"{sheet.name}: {stack[-1]!r} is never closed"
