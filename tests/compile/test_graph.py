"""mlspec.compile.graph: the target-neutral pipeline graph every pipeline engine renders."""

from __future__ import annotations

import pytest

from mlspec import __version__
from mlspec.compile.graph import DEFAULT_IMAGE_REPO, VALUE, build_graph, resolved_spec
from mlspec.spec.loader import load_spec
from tests.conftest import EXAMPLES

EXAMPLES_BY_NAME = {path.parent.name: path for path in EXAMPLES}

STEPS = ("ingest", "validate-data", "split", "train", "evaluate", "gate", "register")


def _project(spec=EXAMPLES[0]):
    loaded = load_spec(str(spec))
    assert loaded.project is not None
    return loaded.project


@pytest.mark.parametrize("spec", EXAMPLES, ids=[s.parent.name for s in EXAMPLES])
def test_steps_are_in_a_topological_order_of_their_artifacts(spec) -> None:
    graph = build_graph(_project(spec))
    assert tuple(s.name for s in graph.steps) == STEPS
    produced: dict[str, set[str]] = {}
    for step in graph.steps:
        for i in step.inputs:
            assert i.output in produced.get(i.step, set()), (step.name, i)
        if step.run_if:
            assert step.run_if[0] in produced
            assert step.run_if[1] in produced[step.run_if[0]]
        produced[step.name] = {a.name for a in step.outputs}


def test_register_runs_only_when_the_gate_passed() -> None:
    graph = build_graph(_project())
    register = graph.step("register")
    assert register.run_if == ("gate", "passed")
    assert graph.step("gate").output("passed").kind == VALUE
    assert [s.name for s in graph.steps if s.run_if] == ["register"]
    assert graph.upstream(register) == ("ingest", "train", "evaluate", "gate")


def test_only_train_gets_the_spec_resources() -> None:
    project = _project()
    project.model.resources.gpu = 1
    project.model.resources.node_selector = {"pool": "gpu"}
    graph = build_graph(project)
    assert graph.step("train").resources.gpu == 1
    assert graph.step("train").resources.node_selector == (("pool", "gpu"),)
    assert all(s.resources.gpu == 0 and not s.resources.node_selector
               for s in graph.steps if s.name != "train")


def test_evaluate_is_not_cached_when_it_reads_the_champion() -> None:
    project = _project()
    with_baseline = project.validation.baseline is not None
    assert build_graph(project).step("evaluate").cacheable is not with_baseline
    project.validation.baseline = None
    assert build_graph(project).step("evaluate").cacheable
    assert not build_graph(project).step("gate").cacheable  # the registry may have moved


def test_image_defaults_to_this_version_of_the_runtime() -> None:
    project = _project()
    project.serving.image = None
    assert build_graph(project).image == f"{DEFAULT_IMAGE_REPO}:{__version__}"
    project.model.framework = "torch"  # the image's torch variant (docs/image.md)
    assert build_graph(project).image == f"{DEFAULT_IMAGE_REPO}:{__version__}-torch"
    project.serving.image = "registry.example.com/rt@sha256:" + "a" * 64
    assert build_graph(project).image == project.serving.image


def test_lookups_name_what_is_missing() -> None:
    graph = build_graph(_project())
    with pytest.raises(KeyError):
        graph.step("deploy")
    with pytest.raises(KeyError, match="no output 'model'"):
        graph.step("ingest").output("model")


def test_resolved_spec_is_what_the_runtime_receives() -> None:
    project = _project()
    resolved = resolved_spec(project)
    assert "profiles" not in resolved
    assert resolved["metadata"]["name"] == project.metadata.name
    assert resolved["model"]["task"] == project.model.task


def test_a_distributed_train_step_submits_its_trainjob_as_the_trainer_account() -> None:
    wine = next(s for s in EXAMPLES if s.parent.name == "wine-torch")
    project = load_spec(str(wine)).project
    project.registry.credentials_secret = "mlflow-credentials"
    train = build_graph(project).step("train")
    assert train.bundle == "train" and train.service_account == "wine-torch-trainer"
    # It only submits and waits (the TrainJob's nodes get the spec's resources); the data and
    # the model travel through the registry, so it gets the registry's credentials.
    assert train.resources.gpu == 0 and train.resources.cpu == "500m"
    assert [s.name for s in train.secrets] == ["mlflow-credentials"]
    project.model.distributed = None
    alone = build_graph(project).step("train")
    assert alone.bundle is None and alone.service_account is None and alone.secrets == ()


def test_the_batch_graph_fans_score_out_over_the_partitions() -> None:
    from mlspec.compile.graph import VALUES, build_batch_graph

    project = _project(EXAMPLES_BY_NAME["iris"])
    graph = build_batch_graph(project)
    assert graph is not None and graph.name == "iris-classifier-batch"
    assert [s.name for s in graph.steps] == ["partitions", "score", "report"]
    partitions, score, report = graph.steps
    assert partitions.output("partitions").kind == VALUES
    assert score.fan_out == ("partitions", "partitions")
    assert graph.upstream(report) == ("partitions", "score")
    assert score.resources.gpu == 0 and not any(s.cacheable for s in graph.steps)
    project.batch = None
    assert build_batch_graph(project) is None
