"""The house: project imports form no cycle, sit at the top of their modules, and flow one way between the
stage packages, along exactly the arrows the README names; only experiments.backend imports TensorFlow."""
from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("datasets", "masking", "experiments", "reports")
ORDER = {p: i for i, p in enumerate(PACKAGES)}  # data flows datasets -> masking -> experiments -> reports


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


def _package_edges() -> set[tuple[str, str]]:
    return {(a.split(".")[0], b.split(".")[0]) for a, deps in _graph().items() for b in deps
            if a.split(".")[0] != b.split(".")[0]}


def _readme_arrows() -> set[tuple[str, str]]:
    """The package imports the README allows: its line "Package imports ...: `a` -> `b`, ..."."""
    line = next(l for l in (ROOT / "README.md").read_text().splitlines() if l.startswith("Package imports"))
    return set(re.findall(r"`(\w+)` -> `(\w+)`", line))


def test_packages_import_one_way_along_the_readmes_arrows():
    edges, allowed = _package_edges(), _readme_arrows()
    assert allowed and all(ORDER[a] > ORDER[b] for a, b in allowed), "a stage imports only earlier stages"
    assert edges == allowed, f"imports not in the README: {sorted(edges - allowed)}; in it, unused: {sorted(allowed - edges)}"


def test_package_edges_are_found():
    edges = _package_edges()
    assert {("reports", "experiments"), ("masking", "datasets"), ("experiments", "masking")} <= edges
    assert ("experiments", "reports") not in edges and ("datasets", "masking") not in edges


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


CLIS = {"datasets.__main__": "datasets", "masking.__main__": "masking", "reports.__main__": "reports",
        "experiments.run": "experiments.run", "experiments.study": "experiments.study",
        "experiments.evaluate": "experiments.evaluate", "experiments.score": "experiments.score",
        "experiments.predict": "experiments.predict",
        "experiments.export": "experiments.export"}


def test_every_module_imports_says_what_it_is_and_exports_what_it_lists():
    for name in _modules():
        if name.endswith("__main__"):
            continue
        mod = importlib.import_module(name)
        assert (mod.__doc__ or "").strip(), f"{name} has no docstring"
        assert [n for n in getattr(mod, "__all__", ()) if not hasattr(mod, n)] == [], name


@pytest.mark.parametrize("module", sorted(CLIS))
def test_every_cli_answers_help(module, capsys):
    mod = importlib.import_module(module)
    with pytest.raises(SystemExit) as e:
        mod.main(["--help"])
    assert e.value.code == 0 and f"python -m {CLIS[module]}" in capsys.readouterr().out


def test_another_package_named_datasets_is_named_in_one_line(tmp_path):
    """Hugging Face's `datasets` first on sys.path: maskfer's commands stop with one line that says so."""
    import os
    import subprocess
    import sys
    fake = tmp_path / "site" / "datasets"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("load_dataset = None  # not maskfer's\n")
    env = {**os.environ, "PYTHONPATH": f"{fake.parent}{os.pathsep}{ROOT}"}
    for module in ("masking", "experiments.run", "reports"):
        out = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, env=env,
                             cwd=tmp_path)
        assert out.returncode != 0 and out.stdout == ""
        assert len(out.stderr.strip().splitlines()) == 1 and str(fake) in out.stderr, out.stderr
