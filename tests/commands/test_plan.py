"""``mlspec plan OLD NEW``: the command's output formats, invalid input and git revisions."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from mlspec.commands.app import app
from tests.compile.test_plan import base, edit


def _write(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_cli_json_output(tmp_path: Path) -> None:
    old = _write(tmp_path / "old.yaml", base())
    new = _write(tmp_path / "new.yaml", edit(base(), "model.estimator",
                                              "sklearn.ensemble.ExtraTreesClassifier"))
    result = CliRunner().invoke(app, ["plan", str(old), str(new), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "version": 1, "risk": "high", "strategy": "shadow",
        "changes": [{"path": "model.estimator", "change": "model type", "risk": "high"}]}


def test_cli_text_output(tmp_path: Path) -> None:
    old = _write(tmp_path / "old.yaml", base())
    new = _write(tmp_path / "new.yaml", edit(base(), "data.split.seed", 3))
    result = CliRunner().invoke(app, ["plan", str(old), str(new)])
    assert result.exit_code == 0
    assert "data.split.seed" in result.stdout and "strategy: canary" in result.stdout


def test_cli_invalid_and_unreadable(tmp_path: Path) -> None:
    good = _write(tmp_path / "good.yaml", base())
    bad = _write(tmp_path / "bad.yaml", edit(base(), "model.task", "clustering"))
    result = CliRunner().invoke(app, ["plan", str(good), str(bad)])
    assert result.exit_code == 1
    result = CliRunner().invoke(app, ["plan", str(good), str(tmp_path / "missing.yaml")])
    assert result.exit_code == 2


def test_git_revisions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def git(*args: str) -> None:
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
                       cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    _write(tmp_path / "mlproject.yaml", base())
    git("add", "mlproject.yaml")
    git("commit", "-q", "-m", "one")
    _write(tmp_path / "mlproject.yaml", edit(base(), "model.params.max_depth", 5))
    git("commit", "-q", "-am", "two")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["plan", "HEAD~1:mlproject.yaml", "HEAD:mlproject.yaml",
                                      "-f", "json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert (out["risk"], out["strategy"]) == ("medium", "ab")
    assert out["changes"] == [{"path": "model.params.max_depth", "change": "hyper-parameter",
                               "risk": "medium"}]
    missing = CliRunner().invoke(app, ["plan", "HEAD:nope.yaml", "HEAD:mlproject.yaml"])
    assert missing.exit_code == 2
