"""The checked-in JSON Schema is the models' schema, and every example validates against it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from mlspec.spec.schema import render_schema, shipped_schema_text
from tests.conftest import EXAMPLES, REPO

SCHEMA_FILE = REPO / "schemas" / "mlproject.schema.json"


def test_checked_in_schema_is_up_to_date() -> None:
    assert SCHEMA_FILE.read_text(encoding="utf-8") == render_schema(), (
        "schemas/mlproject.schema.json is out of date; regenerate it: bash scripts/regen.sh")
    assert shipped_schema_text() == render_schema()


def _validator():
    import jsonschema

    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.parent.name)
def test_examples_validate_against_the_schema(example: Path) -> None:
    errors = list(_validator().iter_errors(yaml.safe_load(example.read_text(encoding="utf-8"))))
    assert errors == []


def test_schema_rejects_an_unknown_key() -> None:
    data = yaml.safe_load(EXAMPLES[0].read_text(encoding="utf-8"))
    data["model"]["estimater"] = "x"
    assert list(_validator().iter_errors(data))
