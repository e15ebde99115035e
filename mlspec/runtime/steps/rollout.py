"""The ``rollout`` step: carry out a canary plan for one registered version, record the outcome.

Two places the traffic can be, one executor (``mlspec.runtime.rollout``):

* on a cluster, after the ``deploy`` step: ``python -m mlspec.runtime rollout --spec SPEC
  --in deployment=deployment.json --bundle deploy.json --out report=rollout.json`` steps KServe's
  ``canaryTrafficPercent`` on the deployed InferenceService and asks the bundle's Prometheus;
* on a laptop: ``--in plan=plan.yaml --version N --admin URL --prometheus URL [--hold 30s]`` (and
  ``mlspec rollout --local``) steps the admin API of ``mlspec serve --candidate``.

Either way the report is written atomically and recorded on the version as registry tags, and
only a promoted rollout moves ``validation.baseline.alias``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from mlspec.runtime.errors import StepError
from mlspec.runtime.io import read_json_object, write_json
from mlspec.runtime.rollout import executor, gates, registry, strategies
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
        strategies.check_plan(plan)
        hold_s = None if hold is None else executor.parse_duration(hold)
        prometheus = gates.Prometheus(prometheus_url)
        traffic = executor.LocalTraffic(admin_url)
        before = traffic.state()
    except (executor.RolloutError, ValueError) as exc:
        raise StepError(str(exc)) from None
    if str(before.get("candidate")) != str(version):
        raise StepError(f"the server at {admin_url} has version {before.get('candidate')!r} as "
                        f"its candidate, not {version}")
    return _carry_out(project, plan, hold_s, traffic, prometheus, str(version), out_report, log)


def run_cluster_rollout(spec, in_deployment: str, bundle_path: str, out_report: str,
                        prometheus_url: str | None = None, hold: str | None = None, kube=None,
                        predictor_url: str | None = None,
                        log: Callable[[str], None] = print) -> dict[str, Any]:
    """Carry the bundle's plan out on the objects the deploy step applied: KServe's
    ``canaryTrafficPercent``, or the strategy's router (``mlspec.runtime.rollout.routers``).
    ``predictor_url`` is where blue-green's smoke inference goes (default: green's predictor
    Service in the cluster).

    Raises:
        StepError: see :func:`run_rollout`.
    """
    from mlspec.runtime.kube import Kube, KubeError
    from mlspec.runtime.rollout.deploy import read_bundle

    project = load_project(spec)
    deployment = read_json_object(in_deployment, "deployment")
    bundle = read_bundle(bundle_path)
    plan_ = bundle.get("plan")
    if not isinstance(plan_, dict) or not deployment.get("candidate_version"):
        raise StepError(f"{bundle_path} has no rollout plan, or {in_deployment} is not a "
                        "deployment record")
    try:
        strategies.check_plan(plan_)
        hold_s = None if hold is None else executor.parse_duration(hold)
        prometheus = gates.Prometheus(prometheus_url or bundle["prometheus"])
        kube = kube if kube is not None else Kube()
        traffic = _cluster_traffic(project, plan_, deployment, bundle, kube, predictor_url)
        traffic.state()
    except (executor.RolloutError, KubeError, ValueError) as exc:
        raise StepError(str(exc)) from None
    return _carry_out(project, plan_, hold_s, traffic, prometheus,
                      str(deployment["candidate_version"]), out_report, log)


def _cluster_traffic(project, plan: Mapping[str, Any], deployment: Mapping[str, Any],
                     bundle: Mapping[str, Any], kube, predictor_url: str | None):
    from mlspec.runtime.rollout.kserve import KIND, KServeTraffic
    from mlspec.runtime.rollout.routers import ROUTERS, BlueGreenRoute

    namespace = deployment["namespace"]
    if plan["strategy"] == "canary":
        services = [o for o in deployment.get("objects") or [] if o.get("kind") == KIND]
        if len(services) != 1:
            raise executor.RolloutError("the canary's deployment record names "
                                        f"{len(services)} InferenceServices, not one")
        return KServeTraffic(kube, namespace, services[0]["name"], services[0].get("previous"))
    if plan["strategy"] == "blue-green":
        version = str(deployment["candidate_version"])
        return BlueGreenRoute(kube, namespace, plan, deployment, bundle,
                              predictor_url=predictor_url,
                              sample=lambda: _sample(project, version))
    return ROUTERS[plan["strategy"]](kube, namespace, plan, deployment, bundle)


def _sample(project, version: str) -> dict:
    """A plausible request for the candidate, from its model in the registry."""
    from mlspec.runtime.serving.model import ModelLoadError, load_model, sample_request

    try:
        return sample_request(load_model(f"models:/{project.model_name}/{version}",
                                         tracking_uri=project.registry.tracking_uri))
    except ModelLoadError as exc:
        raise executor.RolloutError(f"cannot load version {version} for the smoke inference: "
                                    f"{exc}") from None


def _carry_out(project, plan: Mapping[str, Any], hold_s: float | None, traffic, prometheus,
               version: str, out_report: str, log: Callable[[str], None]) -> dict[str, Any]:
    report = strategies.carry_out(plan, traffic, prometheus, hold_override_s=hold_s, log=log)
    baseline = project.validation.baseline
    alias = baseline.alias if baseline else None
    promoted = report["outcome"] == executor.PROMOTED
    report.update(model=project.model_name, version=version,
                  alias=alias if promoted else None)
    write_json(report, out_report)
    registry.record(report, project.registry.tracking_uri, project.model_name, version, alias)
    return report
