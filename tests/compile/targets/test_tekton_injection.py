"""No spec value can inject into the Tekton output.

A corpus of hostile values goes into every free-text spec field that reaches the Tekton output.
For each, against the same spec with a benign value:

* the documents have the same structure (the same keys, the same list lengths);
* every leaf that changed is the benign leaf with the value swapped in (the value is data,
  exactly), except the derived ones checked on their own: the spec file (parsed back and compared
  with the resolved spec), the ConfigMap name (a content hash) and the CEL filter (evaluated);
* the Tekton substitutions (``$(...)``) in the text are exactly the template's: a spec value's
  ``$`` is always written escaped, and after parsing, a ``$(`` from the spec only appears where
  Tekton never substitutes (annotations, ConfigMap data);
* every executed command (``command`` + ``args`` of every container) is unchanged.

Fields with a syntax of their own (labels, node selectors, image, schedule) reject hostile values
with a clear error; fields whose schema pattern forbids them (names, namespace, model name) never
reach the renderer.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from mlspec.compile.graph import build_graph, resolved_spec
from mlspec.compile.targets import kfp, tekton
from mlspec.errors import SpecError
from mlspec.lint import check_file
from mlspec.spec.models import Project
from tests.compile.targets.test_tekton import cel_eval, iris_data, render, run, tekton_lint, write
from tests.conftest import oracle

LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
HOSTILE = [
    "$(params.x)", "$(context.pipelineRun.name)", "$(tt.params.trigger)", "$(body.after)",
    "$(workspaces.artifacts.path)", "$(results.passed.path)", "$(tasks.gate.results.passed)",
    "`id`", "$(id)", "a; rm -rf /", "a | cat /etc/passwd", "a && curl evil.example", "x || true",
    "'single'", '"double"', "it's \"mixed\"", "line1\nline2: injected\n- item",
    "{{ 7*7 }}", "{% if true %}x{% endif %}", "{# c #}", "${HOME}", "$HOME", "# comment",
    "key: value", "- item", "&anchor value", "*anchor", "<<: *anchor",
    "!!python/object/apply:os.system",
    "---\nkind: Secret", "...", "? complex", "[a, b]", "{a: b}", "back\\slash", "tab\there",
    "cr\rlf", "nul\x00byte", "ünïcødé ✓ 😀", "\u2028line-sep", "\ufeffbom", " lead and trail ",
    "@at %pct", "\\u0024(params.x)",
]
BENIGN = "benign-value"


def _set(data: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = data
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value


def _rename_feature(data: dict[str, Any], value: str) -> None:
    features = data["data"]["features"]
    features[value] = features.pop("sepal_length")


# Free-text fields that reach the Tekton output (annotations, the spec file, the CEL filter).
ACCEPTED = {
    "metadata.description": lambda d, v: _set(d, ("metadata", "description"), v),
    "metadata.owner": lambda d, v: _set(d, ("metadata", "owner"), v),
    "metadata.version": lambda d, v: _set(d, ("metadata", "version"), v),
    "data.source.uri": lambda d, v: _set(d, ("data", "source", "uri"), v),
    "data.target": lambda d, v: _set(d, ("data", "target"), v),
    "data.features.<name>": _rename_feature,
    "model.params.criterion": lambda d, v: _set(d, ("model", "params", "criterion"), v),
    "registry.tracking_uri": lambda d, v: _set(d, ("registry", "tracking_uri"), v),
    "model.estimator": lambda d, v: _set(d, ("model", "estimator"), v),
    "monitoring.drift.features": lambda d, v: _set(d, ("monitoring", "drift", "features"), [v]),
    "triggers.git.repo": lambda d, v: _set(d, ("triggers", "git", "repo"), v),
    "triggers.git.branch": lambda d, v: _set(d, ("triggers", "git", "branch"), v),
}
# Fields with a syntax of their own: the renderer rejects what does not fit it.
REJECTED = {
    "metadata.labels.team": (lambda d, v: _set(d, ("metadata", "labels", "team"), v),
                             tekton.BAD_LABEL),
    "metadata.labels.<key>": (lambda d, v: _set(d, ("metadata", "labels"), {v: "x"}),
                              tekton.BAD_LABEL),
    "model.resources.tolerations": (
        lambda d, v: _set(d, ("model", "resources", "tolerations"),
                          [{"key": "pool", "operator": "Equal", "value": v}]),
        tekton.BAD_LABEL),
    "model.resources.node_selector": (
        lambda d, v: _set(d, ("model", "resources", "node_selector"), {"pool": v}),
        tekton.BAD_LABEL),
    "serving.image": (lambda d, v: _set(d, ("serving", "image"), v), tekton.BAD_IMAGE),
    "triggers.schedule": (lambda d, v: _set(d, ("triggers", "schedule"), v), tekton.BAD_SCHEDULE),
}
# Fields whose schema pattern already refuses such values.
SCHEMA_PROTECTED = {
    "metadata.name": ("metadata", "name"),
    "namespace": ("namespace",),
    "registry.model_name": ("registry", "model_name"),
}


def _project(field: str, value: str) -> Project:
    data = iris_data()
    ACCEPTED[field](data, value)
    return Project.model_validate(data)


def _docs(files: dict[str, str]) -> dict[str, list[Any]]:
    return {path: [d for d in yaml.load_all(text, Loader=LOADER) if d]
            for path, text in files.items()}


def _leaves(node: Any, path: tuple = ()) -> dict[tuple, Any]:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            out.update(_leaves(value, (*path, key)))
        return out
    if isinstance(node, list):
        out = {}
        for i, value in enumerate(node):
            out.update(_leaves(value, (*path, i)))
        return out
    return {path: node}


def _shape(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _shape(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_shape(v) for v in node]
    return type(node).__name__


def _commands(docs: dict[str, list[Any]]) -> list[Any]:
    found = []
    for doc in (d for ds in docs.values() for d in ds):
        for path, value in _leaves(doc).items():
            if "command" in path or "args" in path:
                found.append((doc["kind"], path, value))
    return found


def _is_derived(path: tuple, doc: dict[str, Any]) -> bool:
    """Leaves that are functions of the spec rather than copies: checked separately."""
    if doc["kind"] == "ConfigMap" and path[:1] in (("data",), ("metadata",)):
        return True  # spec.json (parsed below), and the content-hashed name and annotation
    if path[-2:] == ("configMap", "name"):
        return True
    return doc["kind"] == "EventListener" and path[-1] == "value" and "interceptors" in path


TEKTON_REF = re.compile(r"\$\([^)]*\)?")


@pytest.mark.parametrize("field", sorted(ACCEPTED))
def test_hostile_values_stay_data(field: str) -> None:
    benign_project = _project(field, BENIGN)
    benign = _docs(render(benign_project))
    benign_text = render(benign_project)
    benign_commands = _commands(benign)
    for value in HOSTILE:
        project = _project(field, value)
        files = render(project)
        assert files != benign_text, (field, value)  # the value reached the output
        docs = _docs(files)
        assert list(docs) == list(benign), value
        # 1. the same structure, document for document
        for path in docs:
            assert [_shape(d) for d in docs[path]] == [_shape(d) for d in benign[path]], \
                (field, value, path)
        # 2. the value lands as data, exactly
        for path in docs:
            for doc, ref in zip(docs[path], benign[path], strict=True):
                ref_leaves = _leaves(ref)
                for leaf_path, leaf in _leaves(doc).items():
                    if _is_derived(leaf_path, doc):
                        continue
                    expected = ref_leaves[leaf_path]
                    if isinstance(expected, str):
                        expected = expected.replace(BENIGN, value)
                    assert leaf == expected, (field, value, path, leaf_path)
        (configmap,) = docs["tekton/spec-configmap.yaml"]
        assert json.loads(configmap["data"]["spec.json"]) == resolved_spec(project)
        # 3. Tekton substitutions: the template's only
        for path, text in files.items():
            assert TEKTON_REF.findall(text) == TEKTON_REF.findall(benign_text[path]), \
                (field, value, path)
        for path in docs:
            for doc, ref in zip(docs[path], benign[path], strict=True):
                ref_leaves = _leaves(ref)
                for leaf_path, leaf in _leaves(doc).items():
                    inert = "annotations" in leaf_path or doc["kind"] == "ConfigMap"
                    if isinstance(leaf, str) and "$(" in leaf and not inert:
                        assert leaf == ref_leaves[leaf_path], (field, value, path, leaf_path)
        # 4. the commands that run are unchanged
        assert _commands(docs) == benign_commands, (field, value)


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_branch_is_matched_literally_by_the_git_filter(value: str) -> None:
    docs = _docs(render(_project("triggers.git.branch", value)))
    (listener,) = [d for d in docs["tekton/triggers.yaml"] if d["kind"] == "EventListener"]
    (git,) = [t for t in listener["spec"]["triggers"] if t["name"] == "git"]
    expression = git["interceptors"][0]["params"][0]["value"]
    push = {"X-GitHub-Event": "push"}
    assert cel_eval(expression, push, {"ref": f"refs/heads/{value}"})
    assert not cel_eval(expression, push, {"ref": f"refs/heads/{value}-other"})
    assert not cel_eval(expression, push, {"ref": "refs/heads/main"})


@pytest.mark.parametrize("field", sorted(REJECTED))
def test_fields_with_a_syntax_reject_hostile_values(field: str) -> None:
    apply, code = REJECTED[field]
    for value in HOSTILE:
        data = iris_data()
        apply(data, value)
        try:
            project = Project.model_validate(data)
        except ValidationError:
            continue  # the schema refused it already
        with pytest.raises(SpecError) as err:
            render(project)
        assert [d.code for d in err.value.diagnostics] == [code], (field, value)
        assert field.split(".<")[0].split(".")[0] in err.value.diagnostics[0].path


@pytest.mark.parametrize("field", sorted(REJECTED))
def test_validate_reports_what_the_renderer_rejects(field: str, tmp_path: Path) -> None:
    """A spec that ``mlspec validate`` passes also compiles: every hostile value the Tekton
    renderer refuses is an error of validate, at the same field."""
    apply, _ = REJECTED[field]
    section = field.split(".<")[0].split(".")[0]
    for i, value in enumerate(HOSTILE):
        data = iris_data()
        apply(data, value)
        spec = tmp_path / f"spec-{i}.yaml"
        spec.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        errors = [d for d in check_file(str(spec)).diagnostics if d.is_error]
        try:
            render(Project.model_validate(data))
        except (ValidationError, SpecError):
            assert errors, (field, value)
            assert any(d.path.startswith(section) for d in errors), (field, value, errors)
            continue
        assert not [d for d in errors if d.code.startswith("MLS28")], (field, value)


def test_validate_reports_a_data_uri_kfp_refuses(tmp_path: Path) -> None:
    for i, value in enumerate(HOSTILE):
        data = iris_data()
        data["data"]["source"]["uri"] = f"s3://bucket/{value}.csv"
        spec = tmp_path / f"spec-{i}.yaml"
        spec.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        codes = {d.code for d in check_file(str(spec)).diagnostics if d.is_error}
        refused = bool(kfp.check(build_graph(Project.model_validate(data))))
        assert ("MLS282" in codes) == refused, (value, codes)


@pytest.mark.parametrize("field", sorted(SCHEMA_PROTECTED))
def test_names_refuse_hostile_values_in_the_schema(field: str) -> None:
    for value in HOSTILE:
        data = iris_data()
        _set(data, SCHEMA_PROTECTED[field], value)
        with pytest.raises(ValidationError):
            Project.model_validate(data)


def test_all_hostile_values_at_once_pass_both_oracles(tmp_path: Path) -> None:
    """Every accepted field hostile at once, one project per value: schemas and tekton-lint."""
    folders = []
    for i, value in enumerate(HOSTILE):
        data = iris_data()
        for apply in ACCEPTED.values():
            apply(data, value)
        data["metadata"]["name"] = f"hostile-{i}"  # distinct names: one tekton-lint project
        folders.append(write(render(Project.model_validate(data)), tmp_path / str(i)))
    schemas = run(oracle("validate-manifests"), *folders)
    assert schemas.returncode == 0, (schemas.stdout + schemas.stderr)[:3000]
    lint = tekton_lint("--strict", "--format", "json", *folders)
    assert lint.returncode == 0 and json.loads(lint.stdout) == [], lint.stdout[:3000]


@pytest.mark.parametrize("field", sorted(ACCEPTED))
def test_the_deploy_bundle_carries_hostile_values_as_data(field: str) -> None:
    """With serving.deploy: auto the spec ConfigMap also holds the deploy bundle: it reads back
    to exactly the compiled bundle, and Tekton finds no substitution in it."""
    from mlspec.compile.context import build_context

    for value in HOSTILE:
        project = _project(field, value)
        project.serving.deploy = "auto"
        files = render(project)
        (configmap,) = _docs(files)["tekton/spec-configmap.yaml"]
        text = configmap["data"]["deploy.json"]
        assert "$(" not in text and "$" not in text, (field, value)
        assert json.loads(text) == json.loads(build_context(project).deploy_bundle or "")
