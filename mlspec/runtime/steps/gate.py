"""gate: the policy before registration — thresholds, then champion/challenger.

Thresholds: each ``validation.thresholds`` entry's ``min``/``max`` against the evaluated
metric. Champion/challenger (``validation.baseline``): the challenger must beat the model
behind the alias by ``min_delta`` on ``baseline.metric``. The champion is the one ``evaluate``
found and recorded, and its score the one measured on the same test set; when that is missing
(the champion could not be loaded), the metric logged with the champion at registration is
used, and the reason says so. No champion yet: pass, with a reason. Only when the metrics file
holds no champion lookup for this alias and model name (the registry could not be read then,
or the file comes from another spec) does the gate query the registry itself.

The step writes ``{"passed": bool, "reasons": [...], "metrics": {...}}`` and the ``passed``
value (``true``/``false``), and exits 0 either way so the pipeline can branch on it.
"""

from __future__ import annotations

from typing import Any

from mlspec.runtime.io import read_json_object, write_json, write_value
from mlspec.runtime.spec import load_project


def run_gate(spec, in_metrics: str, out_decision: str, out_passed: str | None = None) -> dict:
    """Decide whether the evaluated model may be registered; write the decision files."""
    project = load_project(spec)
    evaluated = read_json_object(in_metrics, "evaluate metrics file", "metrics")
    decision = decide(project, evaluated)
    write_json(decision, out_decision)
    if out_passed is not None:
        write_value(decision["passed"], out_passed)
    return decision


def decide(project, evaluated: dict[str, Any]) -> dict[str, Any]:
    """The gate's decision on an evaluate metrics document."""
    metrics: dict[str, float] = evaluated["metrics"]
    reasons: list[str] = []
    passed = True
    for name, threshold in sorted(project.validation.thresholds.items()):
        value = metrics.get(name)
        if value is None:
            passed = False
            reasons.append(f"threshold on {name}, but evaluate did not compute {name}")
            continue
        if threshold.min is not None and value < threshold.min:
            passed = False
            reasons.append(f"{name} = {value:.4g} is below the minimum {threshold.min:g}")
        elif threshold.max is not None and value > threshold.max:
            passed = False
            reasons.append(f"{name} = {value:.4g} is above the maximum {threshold.max:g}")
        else:
            reasons.append(f"{name} = {value:.4g} meets its threshold")
    baseline = project.validation.baseline
    if baseline is not None:
        ok, reason = _champion_rule(project, metrics, evaluated.get("champion"))
        passed = passed and ok
        reasons.append(reason)
    return {"passed": passed, "reasons": reasons, "metrics": metrics}


def _champion_rule(project, metrics: dict, measured: dict | None) -> tuple[bool, str]:
    from mlspec.runtime.metrics import better

    baseline = project.validation.baseline
    metric = baseline.metric or project.metrics[0]
    name = project.model_name
    if metric not in metrics:
        return False, f"champion/challenger on {metric}, but evaluate did not compute {metric}"
    found = _recorded_champion(measured, project)
    if found is None:
        from mlspec.runtime.registry import champion

        found = champion(project, download=False)
    if found is None or found["version"] is None:
        return True, (f"no champion: no version of {name!r} has the alias "
                      f"{baseline.alias!r}; nothing to beat")
    version = found["version"]
    if metric in (found.get("metrics") or {}):
        theirs, source = found["metrics"][metric], "on the same test set"
    elif metric in (found.get("logged_metrics") or {}):
        theirs, source = found["logged_metrics"][metric], "logged at its registration"
    else:
        return False, (f"champion {name} v{version} ({baseline.alias}) has no logged "
                       f"{metric} to compare with")
    ours = metrics[metric]
    margin = f" with a margin of {baseline.min_delta:g}" if baseline.min_delta else ""
    against = f"champion v{version} ({baseline.alias}) = {theirs:.4g}{margin} ({source})"
    if better(metric, ours, theirs, baseline.min_delta):
        return True, f"challenger {metric} = {ours:.4g} is at least as good as {against}"
    return False, f"challenger {metric} = {ours:.4g} does not beat {against}"


def _recorded_champion(measured: dict | None, project) -> dict | None:
    """evaluate's champion lookup (version None: there was none), or None when the metrics file
    holds no completed lookup for this project's alias and model name."""
    wanted = {"alias": project.validation.baseline.alias, "model_name": project.model_name}
    if not isinstance(measured, dict) or any(measured.get(k) != v for k, v in wanted.items()):
        return None
    if "version" not in measured:
        return None  # the registry could not be read when evaluate ran
    return measured
