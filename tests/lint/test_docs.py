"""docs/spec.md's generated blocks match the models and the rule registry."""

from __future__ import annotations

from mlspec.lint.docs import main, missing_meanings, render
from tests.conftest import REPO

DOC = REPO / "docs" / "spec.md"


def test_every_field_has_a_meaning() -> None:
    assert missing_meanings() == []


def test_docs_are_up_to_date() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert render(text) == text, "docs/spec.md is out of date; regenerate it: bash scripts/regen.sh"
    assert main(["--check", str(DOC)]) == 0
    for code in ("MLS001", "MLS101", "MLS203", "MLS242", "MLS260"):
        assert f"`{code}`" in text
