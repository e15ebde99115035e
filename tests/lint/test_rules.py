"""Every lint rule against its cases in ``tests/lint/cases/MLSxxx.yaml`` (data, not code)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mlspec.lint import check_file
from mlspec.lint.rules import RULES
from tests.lint.casefile import case_text, load_base, load_cases, render, write_cases

CASES = load_cases()
FAIL = [pytest.param(code, i, id=f"{code}-fail-{c.get('name', i)}")
        for code, spec in CASES.items() for i, c in enumerate(spec["fail"])]
PASS = [pytest.param(code, i, id=f"{code}-pass-{i}")
        for code, spec in CASES.items() for i, c in enumerate(spec["pass"])]


def _check(tmp_path: Path, text: str):
    spec = tmp_path / "mlproject.yaml"
    spec.write_text(text, encoding="utf-8")
    return check_file(str(spec))


@pytest.mark.parametrize("base", ["base", "base-regression"])
def test_bases_lint_cleanly(tmp_path: Path, base: str) -> None:
    result = _check(tmp_path, render(load_base(base)))
    assert result.diagnostics == []


def test_every_rule_has_pass_and_fail_cases() -> None:
    codes = {r.code for r in RULES}
    assert set(CASES) == codes, "every rule has a case file, and every case file a rule"
    for code, spec in CASES.items():
        assert spec["code"] == code
        assert spec["fail"] and spec["pass"], f"{code} needs failing and passing cases"


def test_rules_are_documented_and_unique() -> None:
    assert len(RULES) >= 16
    assert len({r.code for r in RULES}) == len(RULES)
    assert len({r.name for r in RULES}) == len(RULES)
    for r in RULES:
        assert re.fullmatch(r"MLS2\d\d", r.code)
        assert "Anti-pattern" in r.doc and "Best practice" in r.doc, r.code


@pytest.mark.parametrize(("code", "index"), FAIL)
def test_rule_fails(tmp_path: Path, code: str, index: int, update_golden: bool) -> None:
    case = CASES[code]["fail"][index]
    text = case_text(case)
    result = _check(tmp_path, text)
    found = [d.check_tuple() for d in result.diagnostics if d.code == code]
    lines = [line for c, path, line in found if path == case["path"]]
    if update_golden and lines and case["line"] not in lines:
        case["line"] = lines[0]
        write_cases(code, CASES[code])
    assert (code, case["path"], case["line"]) in found, result.diagnostics
    # The line is right independently of the loader: it holds the key (or list item) named.
    line = text.splitlines()[case["line"] - 1]
    last = case["path"].split(".")[-1]
    if last.endswith("]"):
        assert line.lstrip().startswith("- ")
    else:
        assert line.lstrip().startswith(f"{last}:")


@pytest.mark.parametrize(("code", "index"), PASS)
def test_rule_passes(tmp_path: Path, code: str, index: int) -> None:
    result = _check(tmp_path, case_text(CASES[code]["pass"][index]))
    assert [d for d in result.diagnostics if d.code == code] == []
    assert not any(d.code == "MLS299" for d in result.diagnostics)

