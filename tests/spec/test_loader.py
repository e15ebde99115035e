"""load_spec: schema errors become positioned diagnostics with the MLS1xx codes."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlspec.errors import UsageError
from mlspec.spec.loader import deep_merge, load_spec
from tests.lint.casefile import load_base, render

BASE = render(load_base())


def _load(tmp_path: Path, text: str, profile: str | None = None):
    path = tmp_path / "mlproject.yaml"
    path.write_text(text, encoding="utf-8")
    return load_spec(str(path), profile)


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_valid_base(tmp_path: Path) -> None:
    loaded = _load(tmp_path, BASE)
    assert loaded.valid and loaded.project is not None
    assert loaded.project.metadata.name == "lint-base"
    assert len(loaded.sha256) == 64


@pytest.mark.parametrize(("old", "new", "code", "path", "needle"), [
    ("  estimator: ", "  estimater: ", "MLS101", "model.estimater", "estimater"),
    ("  task: classification\n", "", "MLS102", "model.task", "model:"),
    ("n_estimators: 10", "n_estimators: 10\n    x: [1", "MLS004", "", "validation:"),
    ("test: 0.2", "test: '0.2'", "MLS103", "data.split.test", "test:"),
    ("task: classification", "task: clasification", "MLS104", "model.task", "task:"),
    ("test: 0.2", "test: 1.5", "MLS105", "data.split.test", "test:"),
    ("name: lint-base", "name: Lint_Base", "MLS100", "metadata.name", "name:"),
    ("on_alert: true", "on_alert: yes", "MLS103", "triggers.on_alert", "on_alert"),
])
def test_schema_errors(tmp_path: Path, old: str, new: str, code: str, path: str,
                       needle: str) -> None:
    text = BASE.replace(old, new, 1)
    assert text != BASE
    loaded = _load(tmp_path, text)
    assert not loaded.valid
    hits = [d for d in loaded.diagnostics if d.code == code]
    assert hits, loaded.diagnostics
    assert hits[0].path == path
    assert hits[0].line == _line_of(text, needle)


def test_did_you_mean_hints(tmp_path: Path) -> None:
    loaded = _load(tmp_path, BASE.replace("  estimator: ", "  estimater: "))
    assert loaded.diagnostics[0].hint == "did you mean 'estimator'?"
    loaded = _load(tmp_path, BASE.replace("task: classification", "task: clasification"))
    assert loaded.diagnostics[0].hint == "did you mean 'classification'?"


def test_missing_file(tmp_path: Path) -> None:
    loaded = load_spec(str(tmp_path / "nope.yaml"))
    assert loaded.unreadable and loaded.diagnostics[0].code == "MLS001"


def test_profile_merge(tmp_path: Path) -> None:
    text = BASE + "profiles:\n  dev:\n    serving: {replicas: {max: 1}}\n    namespace: dev\n"
    loaded = _load(tmp_path, text, "dev")
    assert loaded.valid
    assert loaded.project.namespace == "dev"
    assert loaded.project.serving.replicas.max == 1
    assert loaded.project.serving.replicas.min == 1  # from the defaults, not replaced
    with pytest.raises(UsageError):
        _load(tmp_path, text, "prod")


def test_deep_merge_replaces_lists() -> None:
    assert deep_merge({"a": {"b": [1, 2], "c": 1}}, {"a": {"b": [3]}}) == {"a": {"b": [3], "c": 1}}
