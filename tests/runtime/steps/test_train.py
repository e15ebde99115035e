"""train and evaluate on data sets scikit-learn ships, tuning, preprocessing, bad estimators."""

from __future__ import annotations

import json
import shutil

import pytest

from mlspec.runtime.errors import StepError
from tests.runtime.conftest import iris_spec


def _fit_and_score(tmp_path, spec):
    """ingest -> split -> train -> evaluate in-process; returns (metrics, model folder)."""
    from mlspec.runtime.steps.evaluate import run_evaluate
    from mlspec.runtime.steps.ingest import run_ingest
    from mlspec.runtime.steps.split import run_split
    from mlspec.runtime.steps.train import run_train

    d, tr, te, m, out = (str(tmp_path / n) for n in
                         ("d.parquet", "train.parquet", "test.parquet", "model", "metrics.json"))
    run_ingest(spec, d)
    run_split(spec, d, tr, te)
    run_train(spec, tr, m)
    return run_evaluate(spec, m, te, out)["metrics"], tmp_path / "model"


def _sklearn_spec(tmp_path, dataset, task, estimator, params, metrics, features=None):
    return iris_spec(tmp_path, data__source__uri=f"sklearn://{dataset}",
                     data__features=features or {}, data__checks__min_rows=10,
                     model__task=task, model__estimator=estimator, model__params=params,
                     validation__metrics=metrics, validation__thresholds={},
                     validation__baseline=None,
                     data__split__stratify=task == "classification")


def test_iris_accuracy(iris_run):
    metrics = json.loads(open(iris_run["metrics"]).read())
    assert metrics["metrics"]["accuracy"] >= 0.9
    assert metrics["n_test"] == 30


def test_breast_cancer_accuracy_with_probability_metrics(tmp_path):
    spec = _sklearn_spec(tmp_path, "breast_cancer", "classification",
                         "sklearn.linear_model.LogisticRegression", {"max_iter": 500},
                         ["accuracy", "roc_auc", "log_loss", "f1"])
    metrics, model = _fit_and_score(tmp_path, spec)
    assert metrics["accuracy"] >= 0.9
    assert metrics["roc_auc"] >= 0.95 and 0 < metrics["log_loss"] < 0.3
    meta = json.loads((model / "mlspec_model.json").read_text())
    assert "mean_radius" in [f["name"] for f in meta["features"]]  # normalised names
    assert meta["classes"] == [0, 1]


def test_diabetes_regression_reports_r2_and_rmse(tmp_path):
    spec = _sklearn_spec(tmp_path, "diabetes", "regression", "sklearn.linear_model.Ridge",
                         {"alpha": 1.0}, ["r2", "rmse", "mae"])
    metrics, _ = _fit_and_score(tmp_path, spec)
    assert set(metrics) == {"r2", "rmse", "mae"}
    assert 0.2 < metrics["r2"] < 1 and 30 < metrics["rmse"] < 80


def test_multiclass_roc_auc_is_one_vs_rest(iris_run, tmp_path):
    from mlspec.runtime.io import read_dataset
    from mlspec.runtime.model_io import load_model
    from mlspec.runtime.spec import load_project
    from mlspec.runtime.steps.evaluate import evaluate_frame

    spec = iris_spec(tmp_path, validation__metrics=["roc_auc", "log_loss", "balanced_accuracy"])
    metrics = evaluate_frame(load_project(spec), load_model(iris_run["model"]),
                             read_dataset(iris_run["test"]))
    assert metrics["roc_auc"] > 0.95 and metrics["log_loss"] < 0.5


@pytest.mark.parametrize("strategy", ["grid", "random"])
def test_tuning(tmp_path, strategy):
    spec = iris_spec(tmp_path, model__tuning={
        "strategy": strategy, "metric": "f1_macro", "trials": 2, "cv": 3,
        "space": {"max_depth": [1, 4], "n_estimators": [5, 10]}})
    from mlspec.runtime.steps.ingest import run_ingest
    from mlspec.runtime.steps.train import run_train

    run_ingest(spec, str(tmp_path / "d.parquet"))
    meta = run_train(spec, str(tmp_path / "d.parquet"), str(tmp_path / "model"))
    tuning = meta["tuning"]
    assert tuning["strategy"] == strategy and tuning["metric"] == "f1_macro"
    assert tuning["candidates"] == (4 if strategy == "grid" else 2)
    assert tuning["best_params"]["max_depth"] in (1, 4) and 0.5 < tuning["best_score"] <= 1


def test_preprocessing_by_feature_type(tmp_path):
    """Categories are one-hot encoded, nullable numbers imputed, numbers scaled — in one
    Pipeline saved with the model, which then predicts on raw rows with unseen categories."""
    import numpy as np
    import pandas as pd

    from mlspec.runtime.model_io import load_model
    from mlspec.runtime.preprocess import feature_frame
    from mlspec.runtime.spec import load_project
    from mlspec.runtime.steps.train import train_frame

    rng = np.random.default_rng(0)
    n = 300
    colour = rng.choice(["red", "green", "blue"], n)
    size = rng.normal(10, 3, n)
    size[::17] = np.nan
    label = np.where((colour == "red") | (np.nan_to_num(size, nan=10) > 12), "yes", "no")
    frame = pd.DataFrame({"colour": colour, "size": size, "flag": rng.random(n) > 0.5,
                          "target": label})
    spec = iris_spec(tmp_path, data__features={
        "colour": {"type": "category", "values": ["red", "green", "blue"]},
        "size": {"type": "float", "nullable": True}, "flag": {"type": "bool"}},
        model__estimator="sklearn.linear_model.LogisticRegression", model__params={})
    train_frame(load_project(spec), frame, str(tmp_path / "model"))
    model = load_model(tmp_path / "model")
    steps = model.model.named_steps["preprocess"].named_transformers_
    assert set(steps) == {"cat", "num", "num_nullable"}
    raw = pd.DataFrame({"colour": ["red", "purple"], "size": [np.nan, 20.0], "flag": [True, False]})
    assert list(model.predict(feature_frame(raw, model.features))) == ["yes", "yes"]
    import mlflow.pyfunc

    pyfunc = mlflow.pyfunc.load_model(str(tmp_path / "model"))
    assert list(pyfunc.predict(feature_frame(raw, model.features))) == ["yes", "yes"]


@pytest.mark.parametrize("changes, message", [
    ({"model__estimator": "sklearn.ensemble.RandomForestClassifer"},
     "did you mean 'sklearn.ensemble.RandomForestClassifier'"),
    ({"model__estimator": "os.system"}, "not in mlspec's scikit-learn catalog"),
    ({"model__estimator": "sklearn.linear_model.Ridge"}, "is a regressor"),
    ({"model__params": {"n_estimator": 5}}, "did you mean 'n_estimators'"),
    ({"model__params": {"n_estimators": "many"}}, "training sklearn.ensemble"),
    ({"model__tuning": {"space": {"depth": [1, 2]}}}, "model.tuning.space"),
])
def test_bad_estimators_are_clear_errors(iris_run, tmp_path, changes, message):
    from mlspec.runtime.steps.train import run_train

    spec = iris_spec(tmp_path, **changes)
    earlier = tmp_path / "model"
    shutil.copytree(iris_run["model"], earlier)  # the model a failed training must not lose
    before = sorted(p.relative_to(earlier) for p in earlier.rglob("*"))
    with pytest.raises(StepError) as info:
        run_train(spec, iris_run["train"], str(earlier))
    assert message in str(info.value)
    assert sorted(p.relative_to(earlier) for p in earlier.rglob("*")) == before
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".partial")] == []


def test_unknown_param_lists_valid_ones(iris_run, tmp_path):
    from mlspec.runtime.steps.train import run_train

    with pytest.raises(StepError) as info:
        run_train(iris_spec(tmp_path, model__params={"depth": 3}), iris_run["train"],
                  str(tmp_path / "model"))
    assert "valid: bootstrap, ccp_alpha" in str(info.value) and "max_depth" in str(info.value)


def test_reference_profile_is_saved_with_the_model(iris_run):
    profile = json.loads(open(f"{iris_run['model']}/reference_profile.json").read())
    feature = profile["features"]["petal_length"]
    assert feature["kind"] == "numeric" and feature["count"] == 120
    assert len(feature["counts"]) == len(feature["edges"]) + 1 == 10
    assert sum(feature["counts"]) == 120 and len(feature["quantiles"]) == 101
    assert profile["rows"] == 120


def test_training_is_reproducible(iris_run, tmp_path):
    from mlspec.runtime.steps.evaluate import run_evaluate
    from mlspec.runtime.steps.train import run_train

    run_train(iris_run["spec"], iris_run["train"], str(tmp_path / "again"))
    again = run_evaluate(iris_run["spec"], str(tmp_path / "again"), iris_run["test"],
                         str(tmp_path / "m.json"))
    assert again["metrics"] == json.loads(open(iris_run["metrics"]).read())["metrics"]
