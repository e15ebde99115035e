"""Tekton's variable substitution, as the rehearsal resolves it."""

from __future__ import annotations

import pytest

from mlspec.commands.rehearsal.substitute import (
    Scope,
    SubstitutionError,
    parse_path,
    references,
    substitute,
    substitute_array,
    task_result_references,
)


@pytest.fixture
def scope() -> Scope:
    s = Scope()
    s.set("params", "name", value="iris")
    s.set("params", "dotted.name", value="d")
    s.set("params", "flags", value=["--a", "--b"])
    s.set("params", "obj", value={"url": "https://x"})
    s.set("workspaces", "artifacts", "path", value="/r/ws/artifacts")
    s.set("results", "passed", "path", value="/r/tekton/results/passed")
    s.set("tasks", "gate", "results", "passed", value="true")
    s.set("context", "pipelineRun", "name", value="p-abcde")
    s.set("context", "task", "retry-count", value="1")
    return s


@pytest.mark.parametrize("text,expected", [
    ("$(params.name)", "iris"),
    ('$(params["name"])', "iris"),
    ("$(params['name'])", "iris"),
    ('$(params["dotted.name"])', "d"),
    ("$(params.obj.url)", "https://x"),
    ("$(params.flags[1])", "--b"),
    ("dataset=$(workspaces.artifacts.path)/d.parquet", "dataset=/r/ws/artifacts/d.parquet"),
    ('passed=$(results["passed"].path)', "passed=/r/tekton/results/passed"),
    ("$(tasks.gate.results.passed)", "true"),
    ("$(context.pipelineRun.name)-$(context.task.retry-count)", "p-abcde-1"),
])
def test_references_resolve(scope: Scope, text: str, expected: str) -> None:
    assert substitute(text, scope, "here") == expected


@pytest.mark.parametrize("text", ["$(params.nope)", "$(workspaces.other.path)",
                                  "x $(tasks.train.results.model) y", "$(context.taskRun.uid)",
                                  "$(results.missing.path)"])
def test_an_unknown_reference_is_an_error(scope: Scope, text: str) -> None:
    with pytest.raises(SubstitutionError, match=r"here: unknown reference \$\("):
        substitute(text, scope, "here")


@pytest.mark.parametrize("text", ["$(date)", "$(HOME)/x", "echo $(( 1 + 2 ))", "$(params)",
                                  "cost: $5", "$(params.x"])
def test_what_is_not_tekton_is_left_alone(scope: Scope, text: str) -> None:
    # Shell command substitution and Kubernetes' $(VAR) are not Tekton's to resolve.
    assert substitute(text, scope, "here") == text


def test_arrays_expand_only_as_a_whole_element(scope: Scope) -> None:
    assert substitute_array(["run", "$(params.flags[*])", "$(params.name)"], scope, "args") == \
        ["run", "--a", "--b", "iris"]
    assert substitute_array(["$(params.flags)"], scope, "args") == ["--a", "--b"]
    with pytest.raises(SubstitutionError, match="may only stand alone"):
        substitute("x $(params.flags[*])", scope, "args[0]")
    with pytest.raises(SubstitutionError, match="is an object"):
        substitute_array(["$(params.obj[*])"], scope, "args")
    with pytest.raises(SubstitutionError, match="index out of range"):
        substitute("$(params.flags[5])", scope, "args")


def test_parsing_and_finding_result_references() -> None:
    assert parse_path('params["a.b"][*]') == (("params", "a.b"), "*")
    assert parse_path("tasks.t-1.results.r") == (("tasks", "t-1", "results", "r"), None)
    assert parse_path("a b") is None
    assert [r.key for r in references("$(params.x) $(date) $(tasks.t.results.r[0])")] == \
        ["params.x", "tasks.t.results.r[0]"]
    assert task_result_references("$(tasks.gate.results.passed)-$(params.x)") == \
        [("gate", "passed")]
