"""The ``rollout`` step: carry out a canary plan for one registered version, record the outcome.

``python -m mlspec.runtime rollout --spec SPEC --in plan=plan.yaml --out report=report.json
--version N --admin URL --prometheus URL [--hold 30s]`` and ``mlspec rollout`` (which renders
the plan from the spec itself) both end here: the executor steps the traffic through the admin
API of ``mlspec serve --candidate`` and judges the gates on Prometheus
(``mlspec.runtime.rollout``); the report is written atomically and recorded on the version as
registry tags, and only a promoted rollout moves ``validation.baseline.alias``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from mlspec.runtime.errors import StepError
from mlspec.runtime.io import write_json
from mlspec.runtime.rollout import executor, gates, registry
from mlspec.runtime.spec import load_project


def read_plan(path: str) -> dict[str, Any]:
    """A plan file: the ConfigMap's ``plan.yaml`` (as mounted), or the whole ConfigMap."""
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise StepError(f"cannot read the rollout plan {path}: {exc}") from None
    if isinstance(data, dict) and data.get("kind") == "ConfigMap":
        data = yaml.safe_load((data.get("data") or {}).get("plan.yaml") or "")
    if not isinstance(data, dict):
        raise StepError(f"{path} is not a rollout plan")
    return data


def run_rollout(spec, plan: Mapping[str, Any], version: int, admin_url: str,
                prometheus_url: str, out_report: str, hold: str | None = None,
                log: Callable[[str], None] = print) -> dict[str, Any]:
    """Carry out ``plan`` for ``version``; returns the report (``outcome`` promoted or
    rolled_back).

    Raises:
        StepError: a plan, URL or admin API that cannot be used (before any traffic moves), or a
            registry that cannot record the outcome (after; the report is written first).
    """
    project = load_project(spec)
    try:
        plan_ = executor.parse_plan(plan, None if hold is None else executor.parse_duration(hold))
        prometheus = gates.Prometheus(prometheus_url)
        traffic = executor.LocalTraffic(admin_url)
        before = traffic.state()
    except (executor.RolloutError, ValueError) as exc:
        raise StepError(str(exc)) from None
    if str(before.get("candidate")) != str(version):
        raise StepError(f"the server at {admin_url} has version {before.get('candidate')!r} as "
                        f"its candidate, not {version}")
    report = executor.execute(plan_, traffic, prometheus, log=log)
    baseline = project.validation.baseline
    alias = baseline.alias if baseline else None
    promoted = report["outcome"] == executor.PROMOTED
    report.update(model=project.model_name, version=str(version),
                  alias=alias if promoted else None)
    write_json(report, out_report)
    registry.record(report, project.registry.tracking_uri, project.model_name, str(version),
                    alias)
    return report
