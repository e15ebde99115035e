"""Reading the compiled Tekton YAML back: durations, the PipelineRun, what is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlspec.commands.rehearsal.tekton import (
    DEFAULT_PIPELINE_TIMEOUT,
    ManifestError,
    load_folder,
    parse_duration,
    pipeline_run,
)
from tests.commands.rehearsal.helpers import pipeline, ptask, step, task, write
from tests.commands.rehearsal.helpers import pipeline_run as run_doc


@pytest.mark.parametrize("text,seconds", [("1h0m0s", 3600), ("90s", 90), ("1.5h", 5400),
                                          ("300ms", 0.3), ("0", 0), ("2m30s", 150)])
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_duration(text, "t") == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "1d", "h", "10", "1h 2m"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ManifestError, match="not a duration|empty"):
        parse_duration(text, "t")


def test_the_compiled_iris_pipeline_reads_back(tmp_path: Path) -> None:
    from mlspec.commands.checked import compile_loaded, load_checked, write_or_report

    spec = str(Path(__file__).resolve().parents[3] / "examples" / "iris" / "mlproject.yaml")
    loaded, refused = load_checked(spec, None)
    assert refused is None
    compiled = compile_loaded(loaded, spec, ["tekton"], None)
    assert compiled is not None and write_or_report(tmp_path / "out", compiled.files)
    manifests = load_folder(tmp_path / "out" / "tekton")
    with pytest.raises(ManifestError, match="expected one PipelineRun, found 2"):
        pipeline_run(manifests)  # the training and the batch pipeline's
    pr = pipeline_run(manifests, "iris-classifier-")
    assert pr.generate_name == "iris-classifier-" and pr.timeouts.pipeline == 12 * 3600
    batch = pipeline_run(manifests, "iris-classifier-batch-")
    score = next(t for t in batch.pipeline.tasks if t.name == "score")
    assert score.matrix == (("partition", "$(tasks.partitions.results.partitions[*])"),)
    assert [t.name for t in pr.pipeline.tasks] == [
        "ingest", "validate-data", "split", "train", "evaluate", "gate", "register"]
    register = pr.pipeline.tasks[-1]
    assert register.when[0].input == "$(tasks.gate.results.passed)" and register.retries == 2
    assert {w.name: w.kind for w in pr.workspaces} == {"artifacts": "volumeClaimTemplate",
                                                       "spec": "configMap"}
    assert "spec.json" in manifests.config_maps[pr.workspaces[1].source["name"]]


def test_the_pipeline_run_is_chosen_and_defaults_apply(tmp_path: Path) -> None:
    docs = [task("t", step("true")), pipeline(ptask("t")), run_doc()]
    pr = pipeline_run(load_folder(write(tmp_path / "one", *docs)))
    assert pr.timeouts.pipeline == DEFAULT_PIPELINE_TIMEOUT and pr.namespace == "default"
    two = write(tmp_path / "two", *docs, dict(run_doc(), metadata={"name": "other"}))
    with pytest.raises(ManifestError, match=r"expected one PipelineRun, found 2 \(other, p-run-\)"):
        pipeline_run(load_folder(two))
    assert pipeline_run(load_folder(two), "other").name == "other"
    with pytest.raises(ManifestError, match="no Pipeline named 'nope'"):
        pipeline_run(load_folder(write(tmp_path / "three", run_doc("nope"))))
