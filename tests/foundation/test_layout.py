"""The package's shape, as issue 15 states it: no import cycles between modules, and only
``receive/gss.py`` touches the GSS library (the protocol cores stay testable with bytes alone)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "auditrecv"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, ast.Module]:
    return {_module_name(p): ast.parse(p.read_text(), str(p)) for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _load_time_imports(module: str, tree: ast.Module, known: set[str]) -> set[str]:
    """Modules of the package imported when ``module`` is loaded (not inside functions, not for
    type checking only); ``from a import b`` counts ``a.b`` when that is a module."""
    found: set[str] = set()
    body = list(tree.body)
    while body:
        node = body.pop()
        if isinstance(node, ast.If) and not _is_type_checking(node):
            body.extend(node.body + node.orelse)
        elif isinstance(node, ast.Try):
            body.extend(node.body + node.orelse + node.finalbody)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            base = node.module
            if node.level:  # relative
                base = ".".join([*module.split(".")[: -node.level], node.module])
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {m for m in found if m in known and m != module}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Import cycles (depth-first); a module importing its own package does not count."""
    cycles: list[list[str]] = []
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if node.startswith(nxt + "."):
                continue
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    return cycles


def test_no_import_cycles() -> None:
    modules = _modules()
    known = set(modules)
    assert find_cycles({name: _load_time_imports(name, tree, known) for name, tree in modules.items()}) == []


def test_only_gss_module_imports_gssapi() -> None:
    importers = set()
    for name, tree in _modules().items():
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(n == "gssapi" or n.startswith("gssapi.") for n in names):
                importers.add(name)
    assert importers == {"auditrecv.receive.gss"}


def test_the_layout_test_sees_cycles() -> None:
    """The checker itself: imports are read from the source and a cycle is found."""
    tree = ast.parse("from auditrecv.x import b\nif TYPE_CHECKING:\n    import auditrecv.z\n")
    known = {"auditrecv.x", "auditrecv.x.b", "auditrecv.y", "auditrecv.z"}
    assert _load_time_imports("auditrecv.y", tree, known) == {"auditrecv.x", "auditrecv.x.b"}
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "a.d": {"a"}}
    assert find_cycles(graph) == [["a", "b", "c", "a"]]
