"""The architecture stays visible: import contracts hold (and can fail), no import circle, no
module over the size limit. docs/architecture.md draws what these check."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO, VENV_BIN

MAX_MODULE_LINES = 600
LINT_IMPORTS = VENV_BIN / "lint-imports"


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    # PYTHONPATH first, so the copy under ``root`` is the mlspec that is analysed.
    env = {"PATH": f"{VENV_BIN}:/usr/bin:/bin", "PYTHONPATH": str(root)}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)


def test_import_contracts_hold() -> None:
    done = _lint_imports(REPO)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


@pytest.fixture(scope="module")
def package_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("layers")
    shutil.copytree(REPO / "mlspec", root / "mlspec",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    return root


# (module that gains the import, the import, the contract it breaks)
VIOLATIONS = [
    ("mlspec/runtime/io.py", "import mlspec.commands.run", "never imports the compiler"),
    ("mlspec/runtime/steps/gate.py", "from mlspec.compile import graph", "never imports"),
    ("mlspec/lint/data.py", "import pandas", "validate path imports no heavy library"),
    ("mlspec/spec/models.py", "import mlspec.compile.graph", "Layers follow the data flow"),
    ("mlspec/compile/targets/serving.py", "import mlspec.compile.targets.monitoring",
     "no target imports another"),
]


@pytest.mark.parametrize("module,statement,contract", VIOLATIONS,
                         ids=[v[0].split("/", 1)[1] for v in VIOLATIONS])
def test_a_forbidden_import_breaks_a_contract(package_copy: Path, module: str, statement: str,
                                              contract: str) -> None:
    path = package_copy / module
    original = path.read_text(encoding="utf-8")
    # Inside a function, as the code's lazy imports are: import-linter sees those too.
    path.write_text(original + f"\n\ndef _added():\n    {statement}\n", encoding="utf-8")
    try:
        done = _lint_imports(package_copy)
    finally:
        path.write_text(original, encoding="utf-8")
    assert done.returncode == 1, done.stdout[-2000:]
    broken = done.stdout.split("Broken contracts", 1)[-1]
    assert contract in broken.replace("\n", " "), done.stdout[-3000:]


def test_no_import_circle() -> None:
    import grimp

    graph = grimp.build_graph("mlspec")
    modules = set(graph.modules)
    circles = [
        (a, b) for a in sorted(modules) for b in graph.find_modules_directly_imported_by(a)
        if b in modules and a != b and graph.chain_exists(importer=b, imported=a)
    ]
    assert not circles, f"import circles (each imports the other, maybe indirectly): {circles}"


def test_no_module_is_over_the_size_limit() -> None:
    sizes = {p.relative_to(REPO).as_posix(): len(p.read_text(encoding="utf-8").splitlines())
             for p in (REPO / "mlspec").rglob("*.py")}
    too_big = {path: n for path, n in sizes.items() if n > MAX_MODULE_LINES}
    assert not too_big, f"split these modules (limit {MAX_MODULE_LINES} lines): {too_big}"


def test_top_of_the_package_holds_only_entry_points_and_shared_leaves() -> None:
    top = sorted(p.name for p in (REPO / "mlspec").glob("*.py"))
    assert top == ["__init__.py", "__main__.py", "_entry.py", "contract.py", "errors.py",
                   "k8s.py", "resources.py", "targets.py"], top
