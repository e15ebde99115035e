"""Distributed torch training under torchrun: 2 gloo processes on the CPU against 1.

Tolerance: the two-process model's test accuracy is within 0.05 of the one-process model's
(45 test rows: about two rows) and both pass 0.85 (the example's threshold is 0.8). The
processes are real (``python -m torch.distributed.run``), as ``mlspec run`` starts them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlspec.runtime.errors import StepError
from tests.conftest import REPO

pytest.importorskip("torch")

WINE = REPO / "examples" / "wine-torch" / "mlproject.yaml"


@pytest.fixture(scope="module")
def wine(tmp_path_factory) -> dict:
    from mlspec.runtime.steps.ingest import run_ingest
    from mlspec.runtime.steps.split import run_split
    from mlspec.spec.loader import load_spec

    work = tmp_path_factory.mktemp("ddp")
    project = load_spec(str(WINE), None).project
    spec = project.model_dump(mode="json", exclude={"profiles"})
    spec["model"]["distributed"] = None  # the example's is set; each test says its own
    run_ingest(spec, str(work / "data.parquet"))
    run_split(spec, str(work / "data.parquet"), str(work / "train.parquet"),
              str(work / "test.parquet"), None)
    return {"spec": spec, "work": work}


def _accuracy(spec: dict, model: Path, test: Path, out: Path) -> float:
    from mlspec.runtime.steps.evaluate import run_evaluate

    run_evaluate(spec, str(model), str(test), str(out))
    return json.loads(out.read_text())["metrics"]["accuracy"]


def test_two_gloo_processes_train_as_well_as_one_and_write_one_model(wine) -> None:
    from mlspec.runtime.steps.train import run_train

    work, single = wine["work"], wine["spec"]
    spread = json.loads(json.dumps(single))
    spread["model"]["distributed"] = {"processes_per_node": 2, "backend": "gloo"}
    one = run_train(single, str(work / "train.parquet"), str(work / "one"))
    two = run_train(spread, str(work / "train.parquet"), str(work / "two"))
    assert "distributed" not in one
    assert two["distributed"] == {"processes": 2, "backend": "gloo"}
    acc_one = _accuracy(single, work / "one", work / "test.parquet", work / "one.json")
    acc_two = _accuracy(spread, work / "two", work / "test.parquet", work / "two.json")
    assert acc_one >= 0.85 and acc_two >= 0.85
    assert abs(acc_one - acc_two) <= 0.05, (acc_one, acc_two)
    # Exactly one model: rank 0's folder, complete; nothing half-written beside it.
    assert sorted(p.name for p in work.iterdir() if "two" in p.name) == ["two", "two.json"]
    assert (work / "two" / "MLmodel").is_file() and (work / "two" / "reference_profile.json") \
        .is_file()


def test_a_failing_rank_fails_the_step_with_its_message(wine, tmp_path: Path) -> None:
    import pandas as pd

    from mlspec.runtime.steps.train import run_train

    spec = json.loads(json.dumps(wine["spec"]))
    spec["model"]["distributed"] = {"processes_per_node": 2, "backend": "gloo"}
    broken = tmp_path / "train.parquet"
    pd.read_parquet(wine["work"] / "train.parquet").drop(columns=[spec["data"]["target"]]) \
        .to_parquet(broken)
    with pytest.raises(StepError, match=r"distributed training failed: .*target"):
        run_train(spec, str(broken), str(tmp_path / "model"))
    assert not (tmp_path / "model").exists()


def test_the_failing_rank_is_named() -> None:
    from mlspec.runtime.distributed import _rank_failure

    stderr = ("error: the training data has no column 'quality'\n"
              "[ERROR] failures:\n  time : 2026-12-07\n  rank      : 1 (local_rank: 1)\n")
    assert _rank_failure(stderr) == "rank 1: the training data has no column 'quality'"
    assert _rank_failure("Traceback\nRuntimeError: boom\n") == "a rank: RuntimeError: boom"
