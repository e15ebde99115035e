"""mlspec.targets, the one target registry: what compile, submit and the schema read."""

from __future__ import annotations

import importlib
import inspect
import json

import pytest

from mlspec.errors import UsageError
from mlspec.targets import PIPELINE_ENGINES, SUBMIT_TARGETS, TARGET_NAMES, TARGETS, target
from tests.conftest import REPO


@pytest.mark.parametrize("record", TARGETS, ids=TARGET_NAMES)
def test_every_record_names_real_modules(record) -> None:
    render = importlib.import_module(record.renderer).render
    assert list(inspect.signature(render).parameters) == ["project", "graph", "ctx"]
    if record.submit:
        backend = importlib.import_module(record.submit)
        assert callable(backend.check_options) and callable(backend.submit_spec)
    assert record.engine or not record.submit, "only a pipeline engine is submitted"


def test_the_schema_enum_is_the_registry_engines() -> None:
    schema = json.loads((REPO / "schemas" / "mlproject.schema.json").read_text())
    items = schema["properties"]["targets"]["items"]
    enum = items.get("enum") or schema["$defs"][items["$ref"].split("/")[-1]]["enum"]
    assert tuple(enum) == PIPELINE_ENGINES
    assert set(SUBMIT_TARGETS) <= set(PIPELINE_ENGINES)


def test_unknown_names() -> None:
    with pytest.raises(KeyError):
        target("argo")


@pytest.mark.parametrize("name,hint", [("serving", "cannot submit to 'serving'"),
                                       ("tektn", "did you mean 'tekton'")])
def test_submit_refuses_what_has_no_backend(name: str, hint: str) -> None:
    from mlspec.commands.submit import submit_command

    with pytest.raises(UsageError, match=hint):
        submit_command(str(REPO / "examples" / "iris" / "mlproject.yaml"), name)
