"""The torch MLP on CPU: classification and regression, early stopping, determinism, pyfunc."""

from __future__ import annotations

import json

import pytest

from tests.runtime.conftest import iris_spec

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install torch==2.13.0)")


def _torch_spec(tmp_path, **changes):
    base = {"model__framework": "torch", "model__estimator": None, "model__params": {},
            "model__architecture": {"type": "mlp", "hidden": [16], "dropout": 0.0},
            "model__training": {"epochs": 60, "batch_size": 16, "learning_rate": 0.02,
                                "optimizer": "adam", "device": "cpu",
                                "early_stopping_patience": 8}}
    base.update(changes)
    return iris_spec(tmp_path, **base)


def test_classification_on_cpu_is_accurate_and_deterministic(iris_run, tmp_path):
    from mlspec.runtime.steps.evaluate import run_evaluate
    from mlspec.runtime.steps.train import run_train

    spec = _torch_spec(tmp_path, validation__metrics=["accuracy", "log_loss", "roc_auc"])
    results = []
    before = torch.are_deterministic_algorithms_enabled()
    for name in ("a", "b"):
        meta = run_train(spec, iris_run["train"], str(tmp_path / name))
        results.append(run_evaluate(spec, str(tmp_path / name), iris_run["test"],
                                    str(tmp_path / f"{name}.json"))["metrics"])
    assert meta["framework"] == "torch" and meta["device"] == "cpu"
    assert 1 <= meta["best_epoch"] <= meta["epochs_trained"] <= 60
    assert results[0]["accuracy"] >= 0.9
    assert results[0] == results[1]  # same seed, same weights, same metrics
    # deterministic kernels were on for training only: the process-wide flag is restored
    assert torch.are_deterministic_algorithms_enabled() == before
    weights = [torch.load(tmp_path / n / "artifacts" / "mlp.pt", weights_only=True)
               for n in ("a", "b")]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_early_stopping_stops_before_the_last_epoch(iris_run, tmp_path):
    from mlspec.runtime.steps.train import run_train

    spec = _torch_spec(tmp_path, model__training={
        "epochs": 500, "batch_size": 16, "learning_rate": 0.05, "device": "cpu",
        "early_stopping_patience": 3})
    meta = run_train(spec, iris_run["train"], str(tmp_path / "m"))
    assert meta["epochs_trained"] < 500 and meta["epochs_trained"] - meta["best_epoch"] == 3


def test_regression_and_pyfunc_loading(tmp_path):
    import mlflow.pyfunc

    from mlspec.runtime.io import read_dataset
    from mlspec.runtime.steps.evaluate import run_evaluate
    from mlspec.runtime.steps.ingest import run_ingest
    from mlspec.runtime.steps.split import run_split
    from mlspec.runtime.steps.train import run_train

    spec = _torch_spec(tmp_path, data__source__uri="sklearn://diabetes", data__features={},
                       data__split__stratify=False, model__task="regression",
                       validation__metrics=["r2", "rmse"], validation__thresholds={},
                       validation__baseline=None)
    spec["model"]["training"]["epochs"] = 200
    d, tr, te = (str(tmp_path / n) for n in ("d.parquet", "tr.parquet", "te.parquet"))
    run_ingest(spec, d)
    run_split(spec, d, tr, te)
    run_train(spec, tr, str(tmp_path / "m"))
    metrics = run_evaluate(spec, str(tmp_path / "m"), te, str(tmp_path / "x.json"))["metrics"]
    assert metrics["r2"] > 0.3 and metrics["rmse"] < 70
    model = mlflow.pyfunc.load_model(str(tmp_path / "m"))
    rows = read_dataset(te).drop(columns=["target"]).head(3)
    assert model.predict(rows).shape == (3,)
    meta = json.loads((tmp_path / "m" / "mlspec_model.json").read_text())
    assert meta["task"] == "regression" and meta.get("classes") is None


def test_cuda_requested_without_a_gpu_is_a_clear_error(iris_run, tmp_path):
    from mlspec.runtime.errors import StepError
    from mlspec.runtime.steps.train import run_train

    if torch.cuda.is_available():
        pytest.skip("a GPU is present: device cuda is valid here")
    spec = _torch_spec(tmp_path)
    spec["model"]["training"]["device"] = "cuda"
    with pytest.raises(StepError, match="no CUDA device"):
        run_train(spec, iris_run["train"], str(tmp_path / "m"))


def test_tuning_with_torch_is_a_clear_error(iris_run, tmp_path):
    from mlspec.runtime.errors import StepError
    from mlspec.runtime.steps.train import run_train

    spec = _torch_spec(tmp_path, model__tuning={"space": {"max_depth": [1, 2]}})
    with pytest.raises(StepError, match="not supported with framework: torch"):
        run_train(spec, iris_run["train"], str(tmp_path / "m"))
    assert not (tmp_path / "m").exists()


def test_missing_torch_is_a_clear_error(iris_run, tmp_path, monkeypatch):
    import sys

    from mlspec.runtime.errors import StepError
    from mlspec.runtime.steps.train import run_train

    monkeypatch.setitem(sys.modules, "torch", None)  # as if PyTorch were not installed
    with pytest.raises(StepError, match="PyTorch is not installed"):
        run_train(_torch_spec(tmp_path), iris_run["train"], str(tmp_path / "m"))
