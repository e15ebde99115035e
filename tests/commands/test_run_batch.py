"""``mlspec run --pipeline batch``: the compiled KFP batch pipeline (dsl.ParallelFor over the
partitions) run by kfp.local against a model the training run registered."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.commands.test_run import EXAMPLES, _run
from tests.runtime.batch.conftest import BROKEN_ROWS, make_inputs


def _spec(tmp_path: Path, **batch: object) -> Path:
    data = yaml.safe_load((EXAMPLES / "iris" / "mlproject.yaml").read_text())
    data["model"]["params"] = {"n_estimators": 20, "max_depth": 6, "random_state": 0}
    # Relative paths, resolved against the current directory as data.source.uri is.
    data["batch"] = {"input": "scoring/", "output": "predictions/", "model": "staging",
                     "chunk_rows": 40, **batch}
    spec = tmp_path / "mlproject.yaml"
    spec.write_text(yaml.safe_dump(data))
    return spec


@pytest.mark.slow
def test_batch_run_scores_every_partition_with_the_registered_model(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    trained = _run(spec, tmp_path)
    assert trained.returncode == 0, trained.stdout + trained.stderr
    make_inputs(tmp_path)
    done = _run(spec, tmp_path, "--pipeline", "batch")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"scored     {150 - BROKEN_ROWS} of 150 rows in 2 partition(s)" in done.stdout
    assert "sepal_length: 3 range" in done.stdout
    summary = json.loads((tmp_path / ".mlspec" / "runs" / "iris-classifier" /
                          "batch-summary.json").read_text())
    assert summary["ok"] and summary["report"]["model"]["uri"] == "models:/iris-classifier/1"
    (batch,) = (tmp_path / "predictions").iterdir()
    assert (batch / "_SUCCESS").exists()
    frame = pd.concat(pd.read_parquet(p) for p in sorted(batch.glob("part-*.parquet")))
    assert len(frame) == 150 - BROKEN_ROWS and frame["id"].is_unique
    # The training run's summary is left alone.
    assert json.loads((tmp_path / ".mlspec" / "runs" / "iris-classifier" /
                       "summary.json").read_text())["ok"]


@pytest.mark.slow
def test_batch_run_without_the_model_fails_at_partitions(tmp_path: Path) -> None:
    make_inputs(tmp_path)
    done = _run(_spec(tmp_path), tmp_path, "--pipeline", "batch")
    assert done.returncode == 1
    assert "step partitions failed" in done.stdout
    assert "no version of model iris-classifier has the alias 'staging'" in done.stdout
    assert not (tmp_path / "predictions").exists()


def test_batch_pipeline_needs_a_batch_section(tmp_path: Path) -> None:
    data = yaml.safe_load((EXAMPLES / "iris" / "mlproject.yaml").read_text())
    data.pop("batch")
    spec = tmp_path / "mlproject.yaml"
    spec.write_text(yaml.safe_dump(data))
    done = _run(spec, tmp_path, "--pipeline", "batch")
    assert done.returncode == 2 and "has no batch section" in done.stderr
    done = _run(_spec(tmp_path), tmp_path, "--pipeline", "nightly")
    assert done.returncode == 2 and "expected train or batch" in done.stderr


@pytest.mark.slow
def test_the_tekton_rehearsal_fans_score_out_over_the_matrix(tmp_path: Path) -> None:
    """The compiled Tekton batch pipeline, rehearsed: the matrix over the partitions step's
    array result runs one score TaskRun per partition."""
    spec = _spec(tmp_path)
    trained = _run(spec, tmp_path)
    assert trained.returncode == 0, trained.stdout + trained.stderr
    make_inputs(tmp_path)
    done = _run(spec, tmp_path, "--pipeline", "batch", "--engine", "tekton")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "score            succeeded" in done.stdout and "(2 TaskRuns" in done.stdout
    summary = json.loads((tmp_path / ".mlspec" / "runs" / "iris-classifier" / "batch" /
                          "summary.json").read_text())
    assert summary["ok"] and summary["tekton"]["tasks"]["score"]["tries"] == 2
    (batch,) = (tmp_path / "predictions").iterdir()
    assert (batch / "_SUCCESS").exists()
    assert sorted(p.name for p in batch.glob("part-*.parquet")) == [
        "part-00000.parquet", "part-00001.parquet"]
