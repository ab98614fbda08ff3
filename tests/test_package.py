"""The shape of the helpers package: a flat library, no import cycles, modules read in a sitting."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import helpers

PACKAGE = Path(helpers.__file__).resolve().parent
MODULES = {p.stem: p for p in sorted(PACKAGE.glob("*.py"))}
MAX_LINES = 350


def _helpers_imports(path: Path) -> set[str]:
    """The helpers modules ``path`` imports, at the top or inside functions alike.

    ``__init__`` stands for ``import helpers`` / ``from helpers import NAME``.
    """
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 or node.module == "helpers" or (
                    node.module or "").startswith("helpers."):
                module = (node.module or "").removeprefix("helpers").lstrip(".")
                if module:
                    found.add(module.split(".")[0])
                else:  # from . import x / from helpers import x
                    found.update(a.name if a.name in MODULES else "__init__" for a in node.names)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "helpers":
                    found.add("__init__")
                elif alias.name.startswith("helpers."):
                    found.add(alias.name.split(".")[1])
    return found


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` as a list of modules, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt] if nxt in path else [node, nxt]
            if nxt not in state and (found := visit(nxt, [*path, nxt])):
                return found
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start, [start])):
            return found
    return None


def test_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_import_graph_has_no_cycle():
    graph = {name: _helpers_imports(path) for name, path in MODULES.items()}
    assert _cycle(graph) is None, f"import cycle: {' -> '.join(_cycle(graph))}"


def test_modules_never_import_the_package_itself():
    """Only ``__init__`` gathers the modules; a module importing ``helpers`` would loop."""
    for name, path in MODULES.items():
        if name != "__init__":
            assert "__init__" not in _helpers_imports(path), f"{name}.py imports helpers"


@pytest.mark.parametrize("name", [n for n in MODULES if n != "__init__"])
def test_every_module_declares_all_and_stays_short(name):
    path = MODULES[name]
    text = path.read_text(encoding="utf-8")
    tree = ast.parse(text)
    assert ast.get_docstring(tree), f"{name}.py has no docstring saying what it is for"
    names = [n for n in tree.body if isinstance(n, ast.Assign)
             and any(getattr(t, "id", None) == "__all__" for t in n.targets)]
    assert names, f"{name}.py has no __all__"
    exported = ast.literal_eval(names[0].value)
    defined = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    defined |= {t.id for n in tree.body if isinstance(n, (ast.Assign, ast.AnnAssign))
                for t in (n.targets if isinstance(n, ast.Assign) else [n.target])
                if isinstance(t, ast.Name)}
    assert set(exported) <= defined, f"{name}.__all__ names undefined {set(exported) - defined}"
    assert len(text.splitlines()) <= MAX_LINES, f"{name}.py is over {MAX_LINES} lines"


def test_package_exports_resolve():
    for name in helpers.__all__:
        assert hasattr(helpers, name), name


def test_names_load_their_module_only_when_asked_for():
    """``from helpers import c_stderr_silenced`` must work before any framework is imported:
    notebooks hide TensorFlow's C++ start-up notes with it while they import Keras."""
    code = ("import sys; from helpers import c_stderr_silenced, MB; "
            "print(sorted(m for m in ('keras', 'tensorflow', 'jax', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120)
    assert out.stdout.strip() == "[]"
    with pytest.raises(AttributeError, match="no attribute 'NoSuchName'"):
        helpers.NoSuchName  # noqa: B018


@pytest.mark.parametrize("name", ["columns", "endless", "resume"])
def test_standalone_modules_need_only_numpy_keras_and_the_standard_library(name):
    """Modules whose docstring tells a learner to copy them alone into a project."""
    path = MODULES[name]
    assert not _helpers_imports(path), f"{name}.py imports other helpers modules"
    imported = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            imported.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            imported.add(node.module.split(".")[0])
    assert imported <= {"numpy", "keras", *sys.stdlib_module_names}, imported
