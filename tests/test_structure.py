"""The house: project imports form no cycle, sit at the top of their modules, and flow one way between
stages; only experiments.backend imports TensorFlow."""
from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("datasets", "masking", "experiments", "reports")
ORDER = {p: i for i, p in enumerate(PACKAGES)}  # data flows datasets -> masking -> experiments -> reports
# Entry points that finish their job with a later stage: the run CLIs write the report, `python -m datasets
# prepare` finds faces with masking's dlib finder. Library modules never import a later stage.
CLIS_WITH_LATER_STAGES = {"experiments.run": "reports", "experiments.evaluation.add_sets": "reports",
                          "experiments.study": "reports", "datasets.__main__": "masking"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def _imports(name: str, path: Path, modules: dict, tree: ast.AST | None = None) -> list[tuple[str, ast.AST]]:
    """Every project module `name` imports (anywhere in the file), with the import node."""
    is_pkg = path.name == "__init__.py"
    base = name.split(".") if is_pkg else name.split(".")[:-1]
    found = []
    for node in ast.walk(tree or ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            pkg = ".".join(base[:len(base) - node.level + 1]) if node.level else ""
            mod = ".".join(p for p in (pkg, node.module or "") if p)
            targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in modules else mod for a in node.names]
        else:
            continue
        found += [(t, node) for t in targets if t.split(".")[0] in PACKAGES]
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: {t for t, _ in _imports(name, path, modules) if t in modules and t != name}
            for name, path in modules.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state, stack = {}, []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for m in sorted(graph[n]):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state and (found := visit(m)):
                return found
        stack.pop()
        state[n] = 2
        return None
    for n in sorted(graph):
        if n not in state and (found := visit(n)):
            return found
    return None


def test_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_relative_imports_resolve_to_modules():
    graph = _graph()
    assert "experiments.runfolder" in graph["reports.build"]
    assert "experiments.conditions" in graph["experiments.training.transfer"]  # `from .. import conditions`
    assert "experiments.model.views" in graph["experiments.model.inference"]   # `from . import views`


def test_no_import_cycle():
    assert _cycle(_graph()) is None


def test_project_imports_sit_at_the_top():
    modules = _modules()
    late = []
    for name, path in modules.items():
        tree = ast.parse(path.read_text())
        top = {id(n) for n in tree.body}
        late += [f"{name}: line {node.lineno} imports {t}" for t, node in _imports(name, path, modules, tree)
                 if id(node) not in top]
    assert late == []


def test_stages_import_only_upstream():
    backwards = [f"{a} -> {b}" for a, deps in _graph().items() for b in deps
                 if ORDER[b.split(".")[0]] > ORDER[a.split(".")[0]]
                 and not (a in CLIS_WITH_LATER_STAGES and b.split(".")[0] == CLIS_WITH_LATER_STAGES[a])]
    assert backwards == [], "only the entry points listed may import a later stage"


def test_only_the_backend_imports_tensorflow():
    direct = []
    for name, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            direct += [f"{name}: {n}" for n in names if n.split(".")[0] in ("tensorflow", "keras")]
    assert direct == ["experiments.backend: keras", "experiments.backend: tensorflow"]


@pytest.mark.parametrize("name", ["experiments.runfolder", "experiments.config", "experiments.evaluation.metrics",
                                  "reports.build"])
def test_run_folder_format_and_report_need_no_tensorflow(name):
    import subprocess
    import sys
    code = f"import sys, {name}; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "False"


def test_every_module_imports():
    for name in _modules():
        if not name.endswith("__main__"):
            importlib.import_module(name)
