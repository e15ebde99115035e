"""The rollout plan of each strategy: what the executor does, how long, and what decides it.

``serving/rollout-plan.yaml`` is a ConfigMap holding the plan as YAML; the deploy bundle carries
the same plan, and ``mlspec.runtime.rollout`` carries it out (the runtime never imports this
module: the plan is plain data). Every plan names the model, the namespace, the strategy, the
objects the executor moves traffic on (``services``, ``router``) and what to do on failure; then,
per strategy:

============  ============================================================================
canary        ``steps``: traffic percent, hold, and the PromQL gates judged after the hold
shadow        ``mirrorPercent`` of the champion's requests copied to the candidate for ``hold``,
              then ``gates``: error rate and p99 latency per version, and the share of mirrored
              rows whose predictions agree (``mlspec_shadow_comparisons_total``)
ab            ``trafficPercent`` to the candidate; ``test`` on the ground truth both versions
              received through ``/feedback`` (``feedback`` queries: labelled predictions, sum
              and sum of squares of their loss), no verdict before ``minSamples`` per version;
              ``gates`` guard health meanwhile
blue-green    ``readinessTimeout`` for green, a smoke inference, the switch, ``hold``, ``gates``
============  ============================================================================

Gate queries take the worst served ``version``: a candidate at 10 % of the traffic cannot hide
behind the stable model's volume.
"""

from __future__ import annotations

from typing import Any

import yaml

from mlspec import contract
from mlspec.compile.promql import promql_string
from mlspec.spec.models import Project

PLAN_VERSION = 1
DEFAULT_CANARY_STEPS = (50, 100)  # after the first step, traffic_percent
GATE_WINDOW = "5m"
READINESS_TIMEOUT = "10m"
# The A/B test, as the executor computes it (docs/serving.md says why this one).
AB_TEST = "welch-z-one-sided"


def canary_steps(project: Project) -> list[int]:
    """The canary's traffic steps: ``rollout.steps``, else traffic_percent → 50 → 100."""
    rollout = project.serving.rollout
    if rollout.steps:
        return list(rollout.steps)
    first = rollout.traffic_percent
    return [first] + [s for s in DEFAULT_CANARY_STEPS if s > first]


def _model(project: Project) -> str:
    return f"model={promql_string(project.model_name)}"


def health_gates(project: Project) -> list[dict]:
    """Error rate, p99 latency and feature drift, each the worst served version's.

    A version with requests but no 5xx counts as 0, not as missing.
    """
    model, window = _model(project), GATE_WINDOW
    service = project.monitoring.service
    requests = f"sum by (version) (rate({contract.REQUESTS_TOTAL}{{{model}}}[{window}]))"
    errors = (f'sum by (version) (rate({contract.REQUESTS_TOTAL}{{{model},code=~"5.."}}'
              f"[{window}]))")
    return [
        {"name": "error-rate",
         "query": f"max(({errors} or 0 * {requests}) / clamp_min({requests}, 1e-9))",
         "max": service.error_rate},
        {"name": "latency-p99-seconds",
         "query": (f"max(histogram_quantile(0.99, sum by (le, version) (rate("
                   f"{contract.REQUEST_DURATION}_bucket{{{model}}}[{window}]))))"),
         "max": service.latency_p99_ms / 1000},
        {"name": "feature-drift",
         "query": f"max(max_over_time({contract.FEATURE_DRIFT}{{{model}}}[{window}]))",
         "max": project.monitoring.drift.threshold},
    ]


def gate_queries(project: Project) -> list[dict]:
    """A canary step's gates: health, and online performance where the spec bounds it."""
    gates = health_gates(project)
    perf = project.monitoring.performance
    if perf is not None and (perf.min is not None or perf.max is not None):
        gate: dict[str, Any] = {"name": f"performance-{perf.metric}",
                                "query": (f"min(min_over_time({contract.MODEL_PERFORMANCE}"
                                          f"{{{_model(project)},metric="
                                          f"{promql_string(perf.metric)}}}[{GATE_WINDOW}]))")}
        if perf.min is not None:
            gate["min"] = perf.min
        if perf.max is not None:
            gate["max"] = perf.max
        gates.append(gate)
    return gates


def agreement_gate(project: Project) -> dict:
    """The share of mirrored rows on which the shadow's prediction equals the champion's."""
    counted = f"{contract.SHADOW_COMPARISONS}{{{_model(project)}"
    agree = f'sum(increase({counted},outcome="{contract.AGREE}"}}[{GATE_WINDOW}]))'
    every = f"sum(increase({counted}}}[{GATE_WINDOW}]))"
    return {"name": "prediction-agreement", "query": f"{agree} / {every}",
            "min": project.serving.rollout.min_agreement}


def feedback_queries(project: Project) -> dict[str, str]:
    """Per version, since each server started: labelled predictions, Σ loss, Σ loss²."""
    model = _model(project)
    return {key: f"sum by (version) ({name}{{{model}}})" for key, name in (
        ("samples", contract.FEEDBACK_TOTAL), ("loss", contract.FEEDBACK_LOSS),
        ("lossSquared", contract.FEEDBACK_LOSS_SQUARED))}


def _base(project: Project, strategy: str, services: dict[str, str],
          router: dict[str, str] | None) -> dict[str, Any]:
    plan: dict[str, Any] = {"version": PLAN_VERSION, "model": project.model_name,
                            "namespace": project.namespace, "strategy": strategy,
                            "services": services,
                            "onFailure": {"action": "rollback", "trafficPercent": 0}}
    if router is not None:
        plan["router"] = router
    return plan


def canary_plan(project: Project, name: str) -> dict[str, Any]:
    hold = project.serving.rollout.hold
    plan = _base(project, "canary", {"candidate": name}, None)
    plan["inferenceService"] = name
    plan["steps"] = [{"trafficPercent": p, "hold": hold if p < 100 else "0s",
                      "gates": gate_queries(project) if p < 100 else []}
                     for p in canary_steps(project)]
    return plan


def shadow_plan(project: Project, stable: str, shadow: str, router: str) -> dict[str, Any]:
    rollout = project.serving.rollout
    plan = _base(project, "shadow", {"stable": stable, "candidate": shadow},
                 {"kind": "VirtualService", "name": router})
    plan.update(mirrorPercent=rollout.traffic_percent, hold=rollout.hold,
                gates=[*health_gates(project), agreement_gate(project)])
    return plan


def ab_plan(project: Project, stable: str, candidate: str, router: str) -> dict[str, Any]:
    rollout = project.serving.rollout
    plan = _base(project, "ab", {"stable": stable, "candidate": candidate},
                 {"kind": "InferenceGraph", "name": router})
    plan.update(trafficPercent=rollout.traffic_percent, hold=rollout.hold,
                decideWithin=rollout.decide_within, gates=health_gates(project),
                feedback=feedback_queries(project),
                test={"name": AB_TEST, "minSamples": rollout.min_samples,
                      "significance": rollout.significance,
                      "loss": "misclassification" if project.model.task == "classification"
                      else "squared-error"})
    return plan


def blue_green_plan(project: Project, blue: str, green: str, router: str) -> dict[str, Any]:
    plan = _base(project, "blue-green", {"stable": blue, "candidate": green},
                 {"kind": "VirtualService", "name": router})
    plan.update(readinessTimeout=READINESS_TIMEOUT, smoke=True,
                hold=project.serving.rollout.hold, gates=health_gates(project))
    return plan


def plan_config_map(project: Project, plan: dict[str, Any], meta: dict) -> dict:
    """The ConfigMap holding ``plan`` as YAML (``plan.yaml``), keys sorted."""
    text = yaml.safe_dump(plan, sort_keys=True, default_flow_style=False, width=1000)
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta,
            "data": {"plan.yaml": text}}
