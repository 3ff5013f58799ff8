"""The engine's module shape: no import cycles and no reaching into another module's
private names.

Modules are parsed (never imported). Every import counts, at module level or inside a
function (an import moved into a function to dodge a cycle is still a cycle); only those
under ``if TYPE_CHECKING:`` do not, as they never run. A private reach-in is an attribute
``x._name`` where ``x`` is not ``self`` or ``cls`` and ``_name`` is not defined in the module
that reads it (a module may use its own classes' private names). The standard library's
private names the engine needs are listed in ``STDLIB_PRIVATE``, each with its reason.
"""

from __future__ import annotations

import ast
from pathlib import Path

ENGINE = Path(__file__).parents[2] / "engine"
STDLIB_PRIVATE = {
    "sys._getframe", "sys._current_frames",  # where workflow code is (deadline, ids)
    "asyncio._get_running_loop", "asyncio._set_running_loop",  # the deterministic loop
    "handle._cancelled", "handle._run",  # asyncio.Handle, run by the deterministic loop
}

KNOWN_CYCLE_EDGES: set[tuple[str, str]] = set()
"""Imports that still close a cycle, left out of the check until they go (none now: the
registry ↔ plugins cycle went with the one file importer). Delete an entry once its import
is gone: ``test_known_cycle_edges_still_exist`` fails as soon as one is."""


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ENGINE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(ENGINE.rglob("*.py"))}


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    """ids of the nodes under ``if TYPE_CHECKING:`` (imports there never run)."""
    hidden: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for stmt in node.body:
                hidden.update(id(n) for n in ast.walk(stmt))
    return hidden


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute module a ``from`` import names."""
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[:len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def import_graph() -> dict[str, set[str]]:
    """Each engine module → the engine modules it imports (at any depth of its code)."""
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        hidden = _type_checking_nodes(tree)
        is_package = path.name == "__init__.py"
        for node in ast.walk(tree):
            if id(node) in hidden:
                continue
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(name, is_package, node)
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules
                           else base for alias in node.names]
            for target in targets:
                while target and target not in modules:  # `from . import x` names a module
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle (its modules in order, the first repeated at the end), or None."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start)
            if found:
                return found
    return None


def test_find_cycle_finds_a_cycle_and_accepts_a_tree() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_engine_modules_import_each_other_without_a_cycle() -> None:
    graph = import_graph()
    assert graph["engine.client"], "the import graph was not built"
    for importer, imported in KNOWN_CYCLE_EDGES:
        graph[importer].discard(imported)
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_known_cycle_edges_still_exist() -> None:
    graph = import_graph()
    gone = [edge for edge in KNOWN_CYCLE_EDGES if edge[1] not in graph[edge[0]]]
    assert not gone, f"remove {gone} from KNOWN_CYCLE_EDGES: the import is gone"


def test_a_function_level_import_counts_in_the_graph(tmp_path: Path) -> None:
    tree = ast.parse("def f():\n    from . import worker\n")
    imports = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert _resolve("engine.client", False, imports[0]) == "engine"


def _defined_private_names(tree: ast.AST) -> set[str]:
    """Private names a module defines: functions, classes, attributes it assigns."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) and \
                isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
            names.add(node.attr)  # (an attribute set on another object is a reach-in)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return {n for n in names if n.startswith("_")}


def private_reach_ins(path: Path, root: Path = ENGINE.parent) -> list[str]:
    """``file:line x._name`` for each private name the module reads off another object."""
    tree = ast.parse(path.read_text(), str(path))
    own = _defined_private_names(tree)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        name = node.attr
        if not name.startswith("_") or name.startswith("__") or name in own:
            continue
        if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
            continue
        if ast.unparse(node) in STDLIB_PRIVATE:
            continue
        found.append(f"{path.relative_to(root)}:{node.lineno} {ast.unparse(node)}")
    return found


def test_no_engine_module_reads_another_modules_private_names() -> None:
    found = [hit for path in sorted(ENGINE.rglob("*.py")) for hit in private_reach_ins(path)]
    assert not found, "private reach-ins:\n" + "\n".join(found)


def test_a_reach_into_another_object_is_found(tmp_path: Path) -> None:
    module = tmp_path / "engine_like.py"
    module.write_text("class A:\n    def _mine(self, a):\n        return a._mine, self._x\n"
                      "def f(engine, handle):\n    handle._seen = engine._find(1)\n")
    assert sorted(private_reach_ins(module, tmp_path)) == [
        "engine_like.py:5 engine._find", "engine_like.py:5 handle._seen"]
