"""check_file: the base and every profile, deduplicated, positioned at the profile's lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlspec.errors import Severity, UsageError
from mlspec.lint import check_file, lint
from mlspec.lint.base import Context, Finding, Rule
from tests.lint.casefile import load_base, render

BASE = render(load_base())


def _write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "mlproject.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_profile_diagnostics_point_at_the_profile(tmp_path: Path) -> None:
    text = BASE + "profiles:\n  dev:\n    serving:\n      replicas: {min: 5, max: 2}\n" \
                  "  prod:\n    model:\n      estimater: x\n"
    result = check_file(_write(tmp_path, text))
    by_code = {d.code: d for d in result.diagnostics}
    assert by_code["MLS241"].line == _line_of(text, "replicas: {min: 5")
    assert by_code["MLS241"].path == "profiles.dev.serving.replicas.min"
    assert by_code["MLS241"].message.startswith("profile 'dev': ")
    assert by_code["MLS101"].line == _line_of(text, "estimater")
    assert by_code["MLS101"].hint == "did you mean 'estimator'?"
    assert not result.valid


def test_base_problems_are_reported_once(tmp_path: Path) -> None:
    text = BASE.replace("n_estimators: 10", "n_estimator: 10") + \
        "profiles:\n  dev: {namespace: dev}\n  prod: {namespace: prod}\n"
    result = check_file(_write(tmp_path, text))
    assert [d.code for d in result.diagnostics] == ["MLS203"]


def test_a_profile_can_break_what_the_base_allows(tmp_path: Path) -> None:
    # stratify is fine for classification; the profile turns the task into regression.
    text = BASE.replace("seed: 42", "seed: 42\n    stratify: true") + \
        "profiles:\n  reg:\n    model: {task: regression, estimator: sklearn.linear_model.Ridge," \
        " params: {}}\n"
    result = check_file(_write(tmp_path, text))
    codes = {d.code for d in result.diagnostics}
    assert "MLS216" in codes and all(d.message.startswith("profile 'reg'")
                                     for d in result.diagnostics)


def test_selected_profile_only(tmp_path: Path) -> None:
    text = BASE + "profiles:\n  dev:\n    serving: {replicas: {min: 5, max: 2}}\n" \
                  "  ok: {namespace: fine}\n"
    path = _write(tmp_path, text)
    assert check_file(path, "ok").valid
    assert not check_file(path, "dev").valid
    with pytest.raises(UsageError, match="did you mean 'dev'"):
        check_file(path, "dve")


def test_a_crashing_rule_becomes_a_diagnostic(tmp_path: Path, monkeypatch) -> None:
    def boom(ctx: Context) -> list[Finding]:
        """Broken.

        Anti-pattern: x. Best practice: y.
        """
        raise KeyError("x")

    from mlspec.lint import rules

    monkeypatch.setattr(rules, "RULES", (Rule("MLS298", "boom", Severity.ERROR, boom),))
    result = check_file(_write(tmp_path, BASE))
    assert [d.code for d in result.diagnostics] == ["MLS299"]


def test_lint_positions(tmp_path: Path) -> None:
    from mlspec.spec.loader import load_spec

    text = BASE.replace("n_estimators: 10", "n_estimators: 10\n    max_dept: 3")
    loaded = load_spec(_write(tmp_path, text))
    (d,) = lint(loaded.project, loaded.doc, "f")
    assert (d.code, d.path, d.line, d.column) == ("MLS203", "model.params.max_dept",
                                                  _line_of(text, "max_dept"), 5)
