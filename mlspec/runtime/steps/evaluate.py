"""evaluate: the metrics in ``validation.metrics`` on the test set.

When ``validation.baseline`` is set and the registry has a model behind its alias (the
champion), the champion is evaluated on the same test set too, so the gate compares like with
like. What evaluate found is recorded for the gate, which then needs no registry query of its
own (and judges the very version measured here, even if the alias moves in between). The
record names the alias and model name it looked up, and then: ``version: None``
when no version has the alias; else the version, its model URI, the project's metrics logged
with it at registration, and ``metrics`` (same test set) or, when the champion cannot be
loaded, ``error`` (the gate then uses the logged metrics). A registry that cannot be read gives
``error`` without a version: the gate asks again. Pipelines never cache this step when a
baseline is set (``mlspec.compile.graph``), so the record is as fresh as the run.
"""

from __future__ import annotations

import math
from typing import Any

from mlspec.runtime.errors import StepError, first_line
from mlspec.runtime.io import read_dataset, write_json
from mlspec.runtime.model_io import LoadedModel, load_model
from mlspec.runtime.spec import load_project


def run_evaluate(spec, in_model: str, in_test: str, out_metrics: str) -> dict:
    """Evaluate the model folder ``in_model`` on ``in_test``; write ``out_metrics`` (JSON).

    The file holds ``{"version", "task", "n_test", "metrics": {name: value}, "champion"}``.
    """
    project = load_project(spec)
    model = load_model(in_model)
    test = read_dataset(in_test)
    result: dict[str, Any] = {
        "version": 1,
        "task": project.model.task,
        "n_test": int(len(test)),
        "metrics": evaluate_frame(project, model, test),
        "champion": _champion_metrics(project, test),
    }
    write_json(result, out_metrics)
    return result


def evaluate_frame(project, model: LoadedModel, frame) -> dict[str, float]:
    """The project's validation metrics of ``model`` on ``frame``."""
    from mlspec.runtime.features import require_columns
    from mlspec.runtime.metrics import NEEDS_PROBA, compute_metrics
    from mlspec.runtime.preprocess import feature_frame

    target = project.data.target or model.meta.get("target")
    if target is None:
        raise StepError("data.target is required to evaluate")
    require_columns(frame, [target], "target")
    if len(frame) == 0:
        raise StepError("the test set has no rows")
    X = feature_frame(frame, model.features)
    y = frame[target].to_numpy()
    names = project.metrics
    try:
        pred = model.predict(X)
        proba = model.predict_proba(X) if any(n in NEEDS_PROBA for n in names) else None
    except (ValueError, TypeError) as exc:
        raise StepError(f"the model cannot predict on this data: {first_line(exc)}") from None
    return compute_metrics(names, project.model.task, y, pred, proba, model.classes)


def _champion_metrics(project, test) -> dict[str, Any] | None:
    baseline = project.validation.baseline
    if baseline is None:
        return None
    from mlspec.runtime.registry import champion

    # Which model and alias the lookup was for: the gate trusts it only for the same ones. (Not
    # the tracking URI: it may hold credentials, and metrics files are pipeline artifacts.)
    looked_up = {"alias": baseline.alias, "model_name": project.model_name}
    try:
        found = champion(project)
    except StepError as exc:
        return {**looked_up, "error": str(exc)}
    if found is None:
        return {**looked_up, "version": None}
    version, local_path = found["version"], found["local_path"]
    # The project's metrics only, finite only: a run logged elsewhere may hold NaN (not JSON).
    logged = {name: value for name, value in found["logged_metrics"].items()
              if name in project.metrics and math.isfinite(value)}
    out: dict[str, Any] = {**looked_up, "version": version, "model_uri": found["model_uri"],
                           "logged_metrics": logged}
    try:
        out["metrics"] = evaluate_frame(project, load_model(local_path), test)
    except StepError as exc:
        out["error"] = str(exc)
    finally:
        import shutil

        shutil.rmtree(found["download_dir"], ignore_errors=True)
    return out
