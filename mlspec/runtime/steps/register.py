"""register: log the model folder to MLflow and create a registered model version.

The run records params, metrics and tags (``data_sha256``, ``spec_sha256``, ``git_commit``);
the model folder is logged as the run's ``model`` artifact unchanged (so the reference profile
travels with it) and registered under ``registry.model_name``. ``registry.alias`` is set only when
the gate's decision passed; a failed decision makes the step refuse.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlspec.runtime.errors import StepError, first_line
from mlspec.runtime.io import file_sha256, read_json_object, write_json
from mlspec.runtime.model_io import read_meta
from mlspec.runtime.registry import client, experiment_id, git_commit, with_retries, writer_lock
from mlspec.runtime.spec import load_project, spec_sha256


def run_register(spec, in_model: str, in_metrics: str | None, in_decision: str | None,
                 in_dataset: str | None, out_registration: str) -> dict:
    """Register ``in_model``; write ``{"name", "version", "alias", "run_id", "model_uri"}``."""
    project = load_project(spec)
    passed = False
    if in_decision is not None:
        decision = read_json_object(in_decision, "gate decision")
        passed = bool(decision.get("passed"))
        if not passed:
            failed = "; ".join(decision.get("reasons") or []) or "no reasons given"
            raise StepError(f"refusing to register: the gate failed ({failed})")
    meta = read_meta(in_model)
    metrics = (read_json_object(in_metrics, "evaluate metrics file", "metrics")["metrics"]
               if in_metrics else {})
    tags = {"spec_sha256": spec_sha256(project), "mlspec.task": meta["task"],
            "mlspec.framework": meta["framework"]}
    if in_dataset is not None:
        if not Path(in_dataset).is_file():
            raise StepError(f"dataset not found: {in_dataset}")
        tags["data_sha256"] = file_sha256(in_dataset)
    commit = git_commit()
    if commit:
        tags["git_commit"] = commit
    params = _params(meta)
    alias = project.registry.alias if passed else None
    with writer_lock(project.registry.tracking_uri):
        result = _register(project, in_model, params, metrics, tags, alias)
    write_json(result, out_registration)
    return result


def _params(meta: dict[str, Any]) -> dict[str, str]:
    params = {"framework": meta["framework"], "estimator": meta.get("estimator", "torch.mlp")}
    for key, value in (meta.get("params") or {}).items():
        params[f"param.{key}"] = str(value)
    for key, value in ((meta.get("tuning") or {}).get("best_params") or {}).items():
        params[f"param.{key}"] = str(value)
    return {k: v[:6000] for k, v in sorted(params.items())}


def _register(project, model_dir: str, params, metrics, tags, alias) -> dict[str, Any]:
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.exceptions import MlflowException

    uri = project.registry.tracking_uri
    name = project.model_name
    try:
        mlflow_client = client(uri)
        experiment = experiment_id(mlflow_client, name, uri)
        run = with_retries(lambda: mlflow_client.create_run(experiment, tags=tags,
                                                            run_name=f"{name}-train"))
        run_id = run.info.run_id
        import time

        now = int(time.time() * 1000)
        with_retries(lambda: mlflow_client.log_batch(
            run_id,
            metrics=[Metric(k, float(v), now, 0) for k, v in sorted(metrics.items())],
            params=[Param(k, v) for k, v in params.items()],
            tags=[RunTag(k, v) for k, v in sorted(tags.items())]))
        with_retries(lambda: mlflow_client.log_artifacts(run_id, model_dir, "model"))
        try:
            with_retries(lambda: mlflow_client.create_registered_model(name))
        except MlflowException as exc:
            if getattr(exc, "error_code", "") != "RESOURCE_ALREADY_EXISTS":
                raise
        version = with_retries(lambda: mlflow_client.create_model_version(
            name, source=f"{run.info.artifact_uri}/model", run_id=run_id, tags=tags))
        if alias:
            with_retries(lambda: mlflow_client.set_registered_model_alias(name, alias,
                                                                          version.version))
        with_retries(lambda: mlflow_client.set_terminated(run_id, "FINISHED"))
    except StepError:
        raise
    except Exception as exc:
        raise StepError(f"registering {name} in {uri} failed: {first_line(exc)}") \
            from None
    return {"name": name, "version": str(version.version), "alias": alias, "run_id": run_id,
            "model_uri": f"models:/{name}/{version.version}", "tracking_uri": uri}
