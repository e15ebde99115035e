"""A non-editable install ships templates, the schema and the estimator catalog."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, REPO


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``pip install --no-deps --target`` of a copy of the source tree (never the checkout)."""
    root = tmp_path_factory.mktemp("pkg")
    src = root / "src"
    ignore = shutil.ignore_patterns(".venv*", ".git", "build", "dist", "tests", "bench", "*.pyc",
                                    "__pycache__", "mlruns*", "*.db", ".pytest_cache",
                                    ".hypothesis", ".ruff_cache", ".mlspec", "node_modules")
    shutil.copytree(REPO, src, ignore=ignore)
    target = root / "site"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-input",
         "--disable-pip-version-check", "--target", str(target), str(src)],
        capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        pytest.fail(f"pip install failed:\n{result.stdout}\n{result.stderr}")
    return target


def _run(site: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(site)}
    code = ("import sys; from mlspec.commands.app import main; "
            "sys.argv = ['mlspec', *sys.argv[1:]]; main()")
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=120)


@pytest.mark.slow
def test_installed_package_is_self_contained(installed: Path, tmp_path: Path) -> None:
    where = subprocess.run([sys.executable, "-c", "import mlspec; print(mlspec.__file__)"],
                           capture_output=True, text=True, cwd=tmp_path,
                           env={**os.environ, "PYTHONPATH": str(installed)})
    assert where.stdout.strip().startswith(str(installed)), where.stdout
    assert (installed / "mlspec" / "_templates" / "init" / "torch.yaml.j2").is_file()
    assert (installed / "mlspec" / "_schemas" / "mlproject.schema.json").is_file()
    assert "mlspec._entry" in (installed / "bin" / "mlspec").read_text()  # the console script

    schema = _run(installed, "schema", cwd=tmp_path)
    assert schema.returncode == 0, schema.stderr
    assert schema.stdout == (REPO / "schemas" / "mlproject.schema.json").read_text()

    init = _run(installed, "init", "-t", "torch", "-o", "spec/mlproject.yaml", cwd=tmp_path)
    assert init.returncode == 0, init.stderr
    shutil.copy(EXAMPLES[0], tmp_path / "example.yaml")
    # --profile prod: a strict check is the cluster's check, and on a cluster the local sqlite
    # registry is MLS232; every template and example carries a prod profile that passes it.
    check = _run(installed, "validate", "--strict", "--profile", "prod", "spec/mlproject.yaml",
                 "example.yaml", cwd=tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr


def test_pre_commit_hook() -> None:
    import re

    import yaml

    (hook,) = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "mlspec-validate" and hook["entry"] == "mlspec validate"
    assert hook["language"] == "python"
    pattern = re.compile(hook["files"])
    for name in ("mlproject.yaml", "examples/iris/mlproject.yml"):
        assert pattern.search(name)
    for name in ("mlproject.yaml.bak", "pipeline.yaml", "mlproject.json"):
        assert not pattern.search(name)
