"""``mlspec rollout SPEC --version N [--local URL]``: carry out the compiled rollout plan.

The plan is the one ``mlspec compile`` writes to ``serving/rollout-plan.yaml`` (rendered here from
the same spec and profile, so the two never disagree). ``--local`` names the admin API of
``mlspec serve CHAMPION --candidate models:/NAME/N``; ``--prometheus`` the Prometheus that
scrapes that server. Without ``--local`` the rollout happens on the cluster of the kubeconfig,
exactly as the pipeline's deploy and rollout steps do it (``deploy: manual`` is this command):
version N pinned into the compiled serving objects and server-side applied, then the strategy
carried out (KServe's ``canaryTrafficPercent`` stepped, the shadow's mirror, the A/B graph's
weights, the blue-green route), gated on ``--prometheus`` (default
``serving.rollout.prometheus_url``; from a workstation, a port-forward). The bundle, the
deployment record and the report go to ``.mlspec/rollouts/<model>-v<N>/``.

The executor (``mlspec.runtime.rollout``) steps the traffic and judges the gates; the report goes
to ``--report`` (default ``.mlspec/rollouts/<model>-v<N>.json`` locally) and onto the version as
registry tags; only a promoted rollout moves ``validation.baseline.alias``.

Exit codes: 0 promoted, 1 rolled back (or the spec is invalid, or the deploy failed), 2 usage: an
unknown profile, an admin API that serves another candidate, no Kubernetes credentials.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from mlspec.errors import UsageError

EXIT_PROMOTED, EXIT_ROLLED_BACK, EXIT_USAGE = 0, 1, 2
PLAN_FILE = "serving/rollout-plan.yaml"


LOCAL_PROMETHEUS = "http://127.0.0.1:9090"


def rollout_command(spec: str, version: int, profile: str | None, local: str | None,
                    prometheus: str | None, hold: str | None, report_path: str | None) -> int:
    """The ``mlspec rollout`` command; returns the exit code.

    Raises:
        UsageError: see the module.
    """
    from mlspec.commands.checked import load_checked
    from mlspec.runtime.errors import StepError
    from mlspec.runtime.rollout.executor import PROMOTED, LocalTraffic, RolloutError, parse_duration
    from mlspec.runtime.steps.rollout import run_rollout

    if version < 1:
        raise UsageError(f"--version {version}: a registry version is 1 or more")
    loaded, refused = load_checked(spec, profile, local=local is not None)
    if refused is not None:
        return refused
    project = loaded.project
    if local is None:
        return _on_cluster(project, version, prometheus, hold, report_path)
    plan = _compiled_plan(project)
    prometheus = prometheus or LOCAL_PROMETHEUS
    path = Path(report_path or Path(".mlspec") / "rollouts"
                / f"{project.model_name}-v{version}.json")
    try:  # what can be refused before any traffic moves is a usage error
        if hold is not None:
            parse_duration(hold)
        LocalTraffic(local).state()
    except RolloutError as exc:
        raise UsageError(str(exc)) from None
    started = time.time()
    try:
        report = run_rollout(project, plan, version, local, prometheus, str(path), hold=hold)
    except StepError as exc:
        if path.exists() and path.stat().st_mtime >= started:  # it ran; recording it failed
            print(f"error: {exc} (the report is in {path})")
            return EXIT_ROLLED_BACK
        raise UsageError(str(exc)) from None
    _print_outcome(report, path)
    return EXIT_PROMOTED if report["outcome"] == PROMOTED else EXIT_ROLLED_BACK


def _on_cluster(project, version: int, prometheus: str | None, hold: str | None,
                report_path: str | None) -> int:
    """Deploy version ``version`` and carry its canary out on the kubeconfig's cluster."""
    from mlspec.compile.context import build_context
    from mlspec.compile.kserve import bundle_json
    from mlspec.runtime.errors import StepError
    from mlspec.runtime.kube import Kube, KubeError
    from mlspec.runtime.rollout.executor import PROMOTED, RolloutError, parse_duration
    from mlspec.runtime.steps.deploy import deploy_version
    from mlspec.runtime.steps.rollout import run_cluster_rollout

    if hold is not None:
        try:
            parse_duration(hold)
        except RolloutError as exc:
            raise UsageError(str(exc)) from None
    ctx = build_context(project)
    folder = Path(".mlspec") / "rollouts" / f"{project.model_name}-v{version}"
    folder.mkdir(parents=True, exist_ok=True)
    bundle = folder / "deploy.json"
    bundle.write_text(bundle_json(project, ctx.strategy, ctx.inference_services),
                      encoding="utf-8")
    path = Path(report_path) if report_path else folder / "report.json"
    try:
        kube = Kube()
    except KubeError as exc:
        raise UsageError(str(exc)) from None
    try:
        deploy_version(project, str(version), str(bundle), str(folder / "deployment.json"),
                       kube=kube)
        report = run_cluster_rollout(project, str(folder / "deployment.json"), str(bundle),
                                     str(path), prometheus_url=prometheus, hold=hold, kube=kube)
    except StepError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ROLLED_BACK
    finally:
        kube.close()
    _print_outcome(report, path)
    return EXIT_PROMOTED if report["outcome"] == PROMOTED else EXIT_ROLLED_BACK


def _compiled_plan(project) -> dict[str, Any]:
    import yaml

    from mlspec.compile.build import render_target

    files = {f.path: f.content for f in render_target(project, "serving")}
    config_map = yaml.safe_load(files[PLAN_FILE])
    return yaml.safe_load(config_map["data"]["plan.yaml"])


def _print_outcome(report: dict[str, Any], path: Path) -> None:
    if report["outcome"] == "promoted":
        moved = f"; alias {report['alias']} -> version {report['version']}" \
            if report.get("alias") else ""
        print(f"promoted {report['model']} version {report['version']}{moved}")
    else:
        print(f"rolled back {report['model']} version {report['version']}: {report['reason']}")
    print(f"report     {path}")
