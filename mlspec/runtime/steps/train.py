"""train: fit the model (sklearn estimator from the catalog, or the torch MLP), with optional
tuning, and save it as an MLflow model folder with the reference profile of the training data."""

from __future__ import annotations

import importlib
import json
import shutil
from typing import TYPE_CHECKING, Any

from mlspec.errors import did_you_mean
from mlspec.runtime.errors import StepError, first_line
from mlspec.runtime.features import feature_specs, require_columns
from mlspec.runtime.io import read_dataset
from mlspec.runtime.model_io import (
    EXAMPLE_ROWS,
    check_model_dir,
    model_requirements,
    quiet_mlflow,
    replace_model_dir,
    write_meta,
)
from mlspec.runtime.profile import PROFILE_FILE, build_profile
from mlspec.runtime.spec import load_project
from mlspec.spec.catalog import kind_for_task, load_catalog, lookup

if TYPE_CHECKING:
    import pandas as pd

    from mlspec.spec.models import Project, Tuning



def run_train(spec, in_train: str, out_model: str, bundle: str | None = None,
              handoff: str | None = None) -> dict:
    """Fit the spec's model on ``in_train`` and save it to the folder ``out_model``.

    A distributed torch model trains in several processes: with ``bundle`` (the compiled
    TrainJob) on a cluster, in the TrainJob this step submits (mlspec.runtime.trainjob), whose
    nodes run this step with ``handoff`` (the run that carries data and model); else under a
    local torchrun (mlspec.runtime.distributed).

    Returns:
        The model metadata written to ``mlspec_model.json``.
    """
    from mlspec.runtime import distributed, trainjob

    project = load_project(spec)
    dist = project.model.distributed
    if dist is not None and project.model.framework == "torch":
        if handoff is not None:  # a process of the TrainJob, under the node's torchrun
            trainjob.fetch_input(project, handoff, in_train)
            meta = train_frame(project, read_dataset(in_train), out_model)
            if distributed.is_writer():
                trainjob.hand_back(project, handoff, out_model)
            return meta
        if trainjob.submitting(bundle):
            assert bundle is not None
            return trainjob.train_on_cluster(project, in_train, out_model, bundle)
        if not distributed.under_torchrun():
            # Not yet under torchrun: start the cluster's world size of processes here (the
            # same shards, so the same model), each of which runs this step.
            return distributed.launch(project.model_dump(mode="json"), in_train, out_model,
                                      dist.nodes * dist.processes_per_node)
    frame = read_dataset(in_train)
    return train_frame(project, frame, out_model)


def train_frame(project: Project, frame: pd.DataFrame, out_model: str) -> dict:
    """Fit on ``frame`` and write the model folder (see mlspec.runtime.model_io)."""
    from mlspec.runtime.preprocess import feature_frame

    target = project.data.target
    if target is None:
        raise StepError("data.target is required to train a supervised model")
    require_columns(frame, [target], "target")
    if len(frame) == 0:
        raise StepError("the training data has no rows")
    features = feature_specs(project, frame)
    for f in features:
        if f.name in frame.columns and frame[f.name].isna().all():
            raise StepError(f"feature {f.name!r} has no values in the training data (all null)")
    X = feature_frame(frame, features)
    y = _target(frame[target], project.model.task)
    meta: dict[str, Any] = {
        "version": 1,
        "task": project.model.task,
        "framework": project.model.framework,
        "target": target,
        "features": [{"name": f.name, "type": f.type, "nullable": f.nullable} for f in features],
        "train_rows": int(len(frame)),
        "model_name": project.model_name,
    }
    if project.model.task == "classification":
        import numpy as np

        meta["classes"] = [_plain(c) for c in np.unique(y)]
        if len(meta["classes"]) < 2:
            raise StepError(f"target {target!r} has a single class; a classifier needs two or more")
    from mlspec.runtime.distributed import is_writer

    final = check_model_dir(out_model)
    if project.model.framework == "torch" and not is_writer():
        # Another rank of a distributed run: train its shard; rank 0 writes the model.
        from mlspec.runtime.torch_mlp import train_torch

        meta.update(train_torch(project, features, X, y, None))
        return meta
    # Build the folder beside its destination and move it in at the end: a failed training
    # neither leaves a half-written model behind nor removes the earlier one.
    path = final.with_name(f".{final.name}.partial")
    if path.exists():
        shutil.rmtree(path)
    try:
        if project.model.framework == "torch":
            from mlspec.runtime.torch_mlp import train_torch

            if project.model.tuning is not None:
                raise StepError("model.tuning searches scikit-learn estimators; it is not "
                                "supported with framework: torch (remove tuning)")

            meta.update(train_torch(project, features, X, y, path))
        else:
            pipeline, info = fit_sklearn(project, features, X, y)
            meta.update(info)
            save_sklearn(pipeline, X, path)
        write_meta(path, meta)
        profile = build_profile(frame, features)
        (path / PROFILE_FILE).write_text(json.dumps(profile, indent=1, sort_keys=True) + "\n",
                                         encoding="utf-8")
        replace_model_dir(path, final)
    finally:
        if path.exists():
            shutil.rmtree(path, ignore_errors=True)
    return meta


def _target(column: pd.Series, task: str):
    import pandas as pd

    if column.isna().any():
        raise StepError(f"target column {column.name!r} has {int(column.isna().sum())} null values")
    if task == "regression":
        numbers = pd.to_numeric(column, errors="coerce")
        if numbers.isna().any():
            raise StepError(f"target {column.name!r} of a regression must be numeric "
                            f"(found {column[numbers.isna()].iloc[0]!r})")
        return numbers.to_numpy(dtype="float64")
    return column.to_numpy()


def _plain(value: Any) -> Any:
    """A numpy scalar as a JSON-friendly Python value."""
    return value.item() if hasattr(value, "item") else value


def estimator_class(project: Project):
    """The estimator class named by ``model.estimator``, imported only from the catalog.

    Raises:
        StepError: not in the catalog, wrong kind for the task, or unknown/missing params.
    """
    path = project.model.estimator_path()
    info = lookup(path)
    if info is None:
        hint = did_you_mean(path, load_catalog())
        raise StepError(f"unknown estimator {path!r}: not in mlspec's scikit-learn catalog"
                        + (f" ({hint})" if hint else ""))
    want = kind_for_task(project.model.task)
    if info.kind != want:
        raise StepError(f"estimator {path} is a {info.kind}, but model.task is "
                        f"{project.model.task} (needs a {want})")
    _check_params(path, info, project.model.params, "model.params")
    if project.model.tuning:
        _check_params(path, info, project.model.tuning.space, "model.tuning.space",
                      required=False)
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name), info


def _check_params(path: str, info, params: dict, where: str, required: bool = True) -> None:
    unknown = sorted(set(params) - info.params)
    if unknown:
        hint = did_you_mean(unknown[0], info.params)
        raise StepError(f"unknown parameter{'s' if len(unknown) > 1 else ''} "
                        f"{', '.join(unknown)} in {where} for {path}"
                        + (f" ({hint})" if hint else "")
                        + f"; valid: {', '.join(sorted(info.params))}")
    missing = sorted(info.required - set(params)) if required else []
    if missing:
        raise StepError(f"{path} needs {', '.join(missing)} in {where}")


def fit_sklearn(project: Project, features, X, y):
    """Fit preprocessing + estimator as one Pipeline (tuned when ``model.tuning`` is set)."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.pipeline import Pipeline

    from mlspec.runtime.preprocess import build_preprocessor

    cls, info = estimator_class(project)
    params = dict(project.model.params)
    # Reproducible by default: seed anything random with the split's seed.
    if "random_state" in info.params and "random_state" not in params:
        params["random_state"] = project.data.split.seed
    try:
        estimator = cls(**params)
    except (TypeError, ValueError) as exc:
        raise StepError(f"cannot build {info.path}({_show(params)}): {exc}") from None
    pipeline = Pipeline([("preprocess", build_preprocessor(features, X)), ("model", estimator)])
    out: dict[str, Any] = {"estimator": info.path, "params": _jsonable(params)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        try:
            if project.model.tuning:
                pipeline, out["tuning"] = _tune(project, project.model.tuning, pipeline, X, y)
            else:
                pipeline.fit(X, y)
        except StepError:
            raise
        except (ValueError, TypeError) as exc:
            raise StepError(f"training {info.path} failed: {first_line(exc)}") from None
    return pipeline, out


def _tune(project: Project, tuning: Tuning, pipeline, X, y):
    import numpy as np
    from sklearn.model_selection import GridSearchCV, ParameterGrid, RandomizedSearchCV

    from mlspec.runtime.metrics import scorer
    from mlspec.spec.models import LOWER_IS_BETTER

    metric = tuning.metric or project.metrics[0]
    n_classes = len(np.unique(y)) if project.model.task == "classification" else None
    grid = {f"model__{k}": v for k, v in sorted(tuning.space.items())}
    if not grid:
        raise StepError("model.tuning.space is empty: name at least one parameter to search")
    common = {"scoring": scorer(metric, n_classes), "cv": tuning.cv, "refit": True,
              "error_score": "raise"}
    if tuning.strategy == "random":
        trials = min(tuning.trials, len(ParameterGrid(grid)))
        search = RandomizedSearchCV(pipeline, grid, n_iter=trials,
                                    random_state=project.data.split.seed, **common)
    else:
        search = GridSearchCV(pipeline, grid, **common)
    search.fit(X, y)
    best = {k.removeprefix("model__"): _plain(v) for k, v in search.best_params_.items()}
    score = float(search.best_score_)
    if metric in LOWER_IS_BETTER:
        score = -score  # scikit-learn maximises negated errors
    return search.best_estimator_, {
        "strategy": tuning.strategy, "metric": metric, "cv": tuning.cv,
        "candidates": int(len(search.cv_results_["params"])), "best_params": _jsonable(best),
        "best_score": score,
    }


def save_sklearn(pipeline, X, path) -> None:
    """Save the fitted Pipeline in MLflow's sklearn format with signature and input example."""
    quiet_mlflow()
    import mlflow.sklearn
    from mlflow.models import infer_signature

    example = X.head(EXAMPLE_ROWS)
    signature = infer_signature(example, pipeline.predict(example))
    # pickle, not skops: importing skops walks every scikit-learn module (and imports torch
    # when installed), ~6 s on every load; the folder comes from this step, not from strangers.
    # Explicit requirements: MLflow's inference reloads the model in a subprocess (~10 s).
    mlflow.sklearn.save_model(pipeline, str(path), signature=signature, input_example=example,
                              serialization_format="pickle",
                              pip_requirements=model_requirements("scikit-learn"))


def _jsonable(params: dict) -> dict:
    return json.loads(json.dumps(params, default=str))


def _show(params: dict) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in sorted(params.items()))




__all__ = ["run_train", "train_frame", "fit_sklearn", "estimator_class"]
