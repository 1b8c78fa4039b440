"""The code's layout rules: no module imports from a module that imports it (directly or
through others), in the Rust core and in the Python package; no Redis scripts in Python."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORE = ROOT / "crates" / "mvptree" / "src"
PACKAGE = ROOT / "python" / "imgscout"


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import cycle, as the path that closes it."""
    found: list[list[str]] = []
    state: dict[str, str] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for child in sorted(graph.get(node, ())):
            if state.get(child) == "open":
                found.append([*path[path.index(child) :], child])
            elif child not in state:
                visit(child, [*path, child])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return found


def core_graph() -> dict[str, set[str]]:
    """Which core module uses which: ``crate::name`` paths outside comments."""
    graph: dict[str, set[str]] = {}
    for path in CORE.rglob("*.rs"):
        name = path.parent.name if path.name == "mod.rs" else path.stem
        if path.parent != CORE and path.name != "mod.rs":
            name = path.parent.name  # a submodule belongs to its parent module here
        if name == "lib":
            continue
        code = "\n".join(
            line.split("//")[0] for line in path.read_text(encoding="utf-8").splitlines()
        )
        used = set(re.findall(r"crate::([a-z_]+)\b", code))
        used |= {
            word
            for group in re.findall(r"crate::\{([^}]*)\}", code)
            for word in re.findall(r"\b([a-z_]+)\b", group)
        }
        modules = {p.stem for p in CORE.glob("*.rs")} | {
            p.name for p in CORE.iterdir() if p.is_dir()
        }
        graph.setdefault(name, set()).update(u for u in used if u in modules and u != name)
    return graph


def _run_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node that can run: all but the bodies of ``if TYPE_CHECKING:``."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.If)
            and isinstance(node.test, ast.Name)
            and node.test.id == "TYPE_CHECKING"
        ):
            skipped.update(id(inner) for part in node.body for inner in ast.walk(part))
    return [node for node in ast.walk(tree) if id(node) not in skipped]


def package_graph() -> dict[str, set[str]]:
    """Which module of the package imports which, at import time or inside functions."""
    graph: dict[str, set[str]] = {}
    modules = {path.stem for path in PACKAGE.glob("*.py")}
    for path in PACKAGE.glob("*.py"):
        name = path.stem
        edges = graph.setdefault(name, set())
        for node in _run_nodes(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                if node.level == 1 and node.module:
                    edges.add(node.module.split(".")[0])
                elif node.level == 1:
                    edges.update(alias.name for alias in node.names if alias.name in modules)
                elif node.module and node.module.startswith("imgscout."):
                    edges.add(node.module.split(".")[1])
                elif node.module == "imgscout":
                    edges.update(
                        alias.name if alias.name in modules else "__init__" for alias in node.names
                    )
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("imgscout."):
                        edges.add(alias.name.split(".")[1])
                    elif alias.name == "imgscout":
                        edges.add("__init__")
        edges.discard(name)
        edges.discard("_core")  # the extension imports nothing of the package
    return graph


def test_the_core_has_no_import_cycle() -> None:
    graph = core_graph()
    assert {"index", "store", "search", "answer", "idmap", "plan", "exec"} <= graph.keys()
    assert cycles(graph) == []


def test_the_python_package_has_no_import_cycle() -> None:
    graph = package_graph()
    assert "sharded" in graph and "redis_index" in graph["sharded"]
    # Importing the package runs __init__, so a module that imports ``imgscout`` itself
    # depends on everything __init__ imports.
    assert cycles(graph) == []


def test_the_cycle_finder_finds_cycles() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_python_sends_no_scripts_to_redis() -> None:
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"\bEVAL(SHA)?\b|redis\.call|\blua\b", text, re.IGNORECASE), path
