"""The lint-rule recipe stays true: a rule listed once in lint/rules.py's RULES is explained by
`mlspec explain`, documented in docs/spec.md and has its pass/fail cases file."""

from __future__ import annotations

import io

import pytest

from mlspec.commands.explain import explain_command
from mlspec.lint.codes import all_codes
from mlspec.lint.rules import BUILTIN_CODES, RULES
from tests.conftest import REPO

SPEC_DOC = (REPO / "docs" / "spec.md").read_text(encoding="utf-8")
CASES = REPO / "tests" / "lint" / "cases"


def _explain_list() -> str:
    out = io.StringIO()
    assert explain_command("list", out) == 0
    return out.getvalue()


def test_codes_are_unique_and_not_reserved() -> None:
    codes = [r.code for r in RULES]
    assert len(codes) == len(set(codes))
    assert not set(codes) & set(BUILTIN_CODES)
    assert [r.name for r in RULES if r.name in {n for n, _ in BUILTIN_CODES.values()}] == []


@pytest.mark.parametrize("rule", RULES, ids=[r.code for r in RULES])
def test_a_registered_rule_is_explained_documented_and_has_cases(rule) -> None:
    listing = _explain_list()
    assert any(line.startswith(f"{rule.code} ") for line in listing.splitlines()), rule.code
    assert all_codes()[rule.code][0] == rule.name
    assert f"`{rule.code}`" in SPEC_DOC, f"{rule.code}: regenerate docs: bash scripts/regen.sh"
    assert (CASES / f"{rule.code}.yaml").is_file(), f"{rule.code} has no cases file"
    assert rule.doc.strip(), f"{rule.code} has no docstring (mlspec explain prints it)"
