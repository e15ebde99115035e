"""The repository's own .pre-commit-config.yaml stays runnable: every local hook's program exists
(in the venv or the repo), and the validate hook, a local copy of the hook this repository ships
in .pre-commit-hooks.yaml, covers every example spec."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import EXAMPLES, REPO

CONFIG = REPO / ".pre-commit-config.yaml"
SHIPPED = REPO / ".pre-commit-hooks.yaml"


def _local_hooks() -> list[dict[str, Any]]:
    config = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    return [hook for repo in config["repos"] if repo["repo"] == "local"
            for hook in repo["hooks"]]


LOCAL_HOOKS = _local_hooks()


def _hook(hook_id: str) -> dict[str, Any]:
    found = [h for h in LOCAL_HOOKS if h["id"] == hook_id]
    assert len(found) == 1, f"one local hook {hook_id!r} expected, found {len(found)}"
    return found[0]


def _matches(hook: dict[str, Any], path: str) -> bool:
    """pre-commit's file selection: ``files`` and ``exclude`` are searched (re.search)."""
    return (re.search(hook.get("files", ""), path) is not None
            and not (hook.get("exclude") and re.search(hook["exclude"], path)))


def test_the_config_has_the_projects_checks() -> None:
    assert {h["id"] for h in LOCAL_HOOKS} >= {"ruff", "mypy", "lint-imports", "mlspec-validate"}
    assert len({h["id"] for h in LOCAL_HOOKS}) == len(LOCAL_HOOKS), "duplicate hook ids"


@pytest.mark.parametrize("hook", LOCAL_HOOKS, ids=[h["id"] for h in LOCAL_HOOKS])
def test_a_local_hooks_program_exists(hook: dict[str, Any]) -> None:
    # Offline and reproducible: a system hook runs a program of the project's venv or repo.
    assert hook["language"] == "system", hook["id"]
    program = shlex.split(hook["entry"])[0]
    assert not Path(program).is_absolute(), f"{hook['id']}: {program} is not in the repo"
    path = REPO / program
    assert path.is_file(), f"{hook['id']}: {program} does not exist (bash scripts/bootstrap.sh)"
    assert path.stat().st_mode & 0o111, f"{hook['id']}: {program} is not executable"


@pytest.mark.parametrize("hook_id", ["mypy", "lint-imports"])
def test_whole_package_checks_take_no_file_names(hook_id: str) -> None:
    # mypy and lint-imports check the package as pyproject.toml configures it.
    assert _hook(hook_id)["pass_filenames"] is False


def test_ruff_runs_ruff_check_on_the_linted_folders() -> None:
    hook = _hook("ruff")
    assert shlex.split(hook["entry"])[1] == "check"  # the project does not use `ruff format`
    for path in ("mlspec/errors.py", "tests/conftest.py", "bench/drift_bench.py",
                 "scripts/gen_estimator_catalog.py"):
        assert _matches(hook, path), path


def test_validate_hook_covers_every_example() -> None:
    hook = _hook("mlspec-validate")
    assert EXAMPLES, "no examples/*/mlproject.yaml"
    for spec in EXAMPLES:
        path = spec.relative_to(REPO).as_posix()
        assert _matches(hook, path), f"{path} is not validated by the hook"
    for other in ("schemas/mlproject.schema.json", "tests/lint/base.yaml", "mlproject.yaml.j2"):
        assert not _matches(hook, other), other


def test_validate_hook_mirrors_the_shipped_hook() -> None:
    shipped = {h["id"]: h for h in yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))}
    hook = _hook("mlspec-validate")
    original = shipped[hook["id"]]
    assert hook["name"] == original["name"]
    # The same command (run from the venv), on files the shipped hook would select too.
    assert shlex.split(hook["entry"])[1:2] == shlex.split(original["entry"])[1:2] == ["validate"]
    assert Path(shlex.split(hook["entry"])[0]).name == shlex.split(original["entry"])[0]
    assert hook.get("types") == original.get("types")
    for spec in EXAMPLES:
        assert re.search(original["files"], spec.relative_to(REPO).as_posix())
