"""The JSON Schema of ``mlproject.yaml``, generated from the pydantic models.

It is exported for editors (yaml-language-server) and CI tools; pydantic stays the validator.
``schemas/mlproject.schema.json`` is the checked-in copy, and a test fails when it drifts.
"""

from __future__ import annotations

import json
from typing import Any

from mlspec.resources import schemas_dir

SCHEMA_ID = "https://mlspec.dev/schemas/mlproject.schema.json"
SCHEMA_FILE = "mlproject.schema.json"


def build_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) for the spec, built from the models."""
    from mlspec.spec.models import Project

    schema = Project.model_json_schema(mode="validation")
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID, **schema}
    schema["title"] = "mlspec project (mlproject.yaml)"
    _describe(schema)
    return schema


def _describe(schema: dict[str, Any]) -> None:
    """Give every property a description (editors show it on hover), from the models' own
    ``Field(description=...)`` or else from :mod:`mlspec.spec.descriptions`."""
    from mlspec.spec.descriptions import FIELD_DESCRIPTIONS

    objects = [("Project", schema), *schema.get("$defs", {}).items()]
    for name, node in objects:
        for prop, sub in node.get("properties", {}).items():
            text = FIELD_DESCRIPTIONS.get(f"{name}.{prop}")
            if text and "description" not in sub:
                sub["description"] = text


def render_schema() -> str:
    """The schema as the exact text that is checked in."""
    return json.dumps(build_schema(), indent=2, sort_keys=True) + "\n"


def shipped_schema_text() -> str:
    """The checked-in (or packaged) schema file's text."""
    return (schemas_dir() / SCHEMA_FILE).read_text(encoding="utf-8")


if __name__ == "__main__":  # `python -m mlspec.spec.schema`: what scripts/regen.sh checks in
    import sys

    sys.stdout.write(render_schema())
