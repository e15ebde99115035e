"""Lint rules for ``serving``: replicas and rollouts that KServe would not carry out.

Add a rule here as a ``@rule`` function and list it in ``mlspec.lint.rules.RULES``.
"""

from __future__ import annotations

from collections.abc import Iterator

from mlspec.errors import Severity
from mlspec.lint.base import Context, Finding, rule


@rule("MLS240", "traffic-percent-range")
def traffic_percent_range(ctx: Context) -> Iterator[Finding]:
    """serving.rollout.traffic_percent is outside 0–100.

    Anti-pattern: ``traffic_percent: 150`` or ``-10``.

    Best practice: a percentage of traffic between 0 and 100, e.g. 10 for a canary.
    """
    percent = ctx.project.serving.rollout.traffic_percent
    if not 0 <= percent <= 100:
        yield Finding(("serving", "rollout", "traffic_percent"),
                      f"traffic_percent {percent} is outside 0-100")


@rule("MLS241", "replicas-min-above-max")
def replicas_min_above_max(ctx: Context) -> Iterator[Finding]:
    """serving.replicas.min is greater than replicas.max.

    Anti-pattern: ``replicas: {min: 4, max: 2}`` — KServe rejects the InferenceService.

    Best practice: ``min`` ≤ ``max``.
    """
    replicas = ctx.project.serving.replicas
    if replicas.min > replicas.max:
        yield Finding(("serving", "replicas", "min"),
                      f"replicas.min {replicas.min} > replicas.max {replicas.max}")


@rule("MLS242", "canary-in-raw-mode")
def canary_in_raw_mode(ctx: Context) -> Iterator[Finding]:
    """A canary rollout with ``deployment_mode: raw``, where KServe ignores it.

    Anti-pattern: ``deployment_mode: raw`` with ``rollout: {strategy: canary}`` — KServe supports
    ``canaryTrafficPercent`` only in serverless (Knative) mode; in raw mode the new model takes
    all traffic at once, silently.

    Best practice: ``deployment_mode: serverless`` for canaries, or a ``blue-green``/``shadow``
    rollout in raw mode.
    """
    serving = ctx.project.serving
    if serving.deployment_mode == "raw" and serving.rollout.strategy == "canary":
        yield Finding(("serving", "rollout", "strategy"),
                      "KServe ignores canaryTrafficPercent in raw deployment mode",
                      "use deployment_mode: serverless, or strategy: blue-green")


@rule("MLS243", "bad-rollout-steps")
def bad_rollout_steps(ctx: Context) -> Iterator[Finding]:
    """serving.rollout.steps do not climb to 100.

    Anti-pattern: ``steps: [50, 10, 100]`` (not increasing), ``steps: [10, 50]`` (never
    completes) or a step outside 0–100.

    Best practice: strictly increasing percentages ending at 100, e.g. ``[10, 50, 100]``.
    """
    steps = ctx.project.serving.rollout.steps
    if steps is None:
        return
    path = ("serving", "rollout", "steps")
    if not steps:
        yield Finding(path, "rollout.steps is empty", "e.g. steps: [10, 50, 100]")
        return
    for i, step in enumerate(steps):
        if not 0 < step <= 100:
            yield Finding(path + (i,), f"step {step} is outside 1-100")
            return
        if i and step <= steps[i - 1]:
            yield Finding(path + (i,), f"step {step} does not increase on {steps[i - 1]}",
                          "steps must be strictly increasing")
            return
    if steps[-1] != 100:
        yield Finding(path + (len(steps) - 1,), f"the last step is {steps[-1]}, not 100: the "
                      "rollout would never complete", "end the steps with 100")


@rule("MLS244", "steps-without-canary", Severity.WARNING)
def steps_without_canary(ctx: Context) -> Iterator[Finding]:
    """rollout.steps is set for a strategy that does not use it.

    Anti-pattern: ``strategy: shadow`` with ``steps: [10, 50, 100]`` — the steps are ignored.

    Best practice: steps with ``canary`` (or ``auto``) only.
    """
    rollout = ctx.project.serving.rollout
    if rollout.steps is not None and rollout.strategy not in ("canary", "auto"):
        yield Finding(("serving", "rollout", "steps"),
                      f"rollout.steps is ignored by the {rollout.strategy} strategy")


@rule("MLS245", "raw-scale-to-zero")
def raw_scale_to_zero(ctx: Context) -> Iterator[Finding]:
    """replicas.min is 0 in raw deployment mode, which cannot scale to zero.

    Anti-pattern: ``deployment_mode: raw`` with ``replicas: {min: 0}`` — raw mode uses a
    Deployment with a HorizontalPodAutoscaler, whose minimum is 1.

    Best practice: ``min: 1`` in raw mode; scale-to-zero needs serverless mode.
    """
    serving = ctx.project.serving
    if serving.deployment_mode == "raw" and serving.replicas.min == 0:
        yield Finding(("serving", "replicas", "min"),
                      "raw deployment mode cannot scale to zero", "set min: 1, or use serverless")


@rule("MLS246", "canary-all-or-nothing", Severity.WARNING)
def canary_all_or_nothing(ctx: Context) -> Iterator[Finding]:
    """A canary sends 0 % or 100 % of traffic to the new model: no canary at all.

    Anti-pattern: ``strategy: canary`` with ``traffic_percent: 100`` (all users get the new model
    at once) or ``0`` (nobody does, and the canary never produces metrics).

    Best practice: a small share such as 10, then ``steps`` up to 100.
    """
    rollout = ctx.project.serving.rollout
    if rollout.strategy == "canary" and rollout.traffic_percent in (0, 100):
        yield Finding(("serving", "rollout", "traffic_percent"),
                      f"a canary with traffic_percent {rollout.traffic_percent} is not a canary",
                      "use a small share such as 10")


@rule("MLS247", "concurrency-in-raw-mode", Severity.WARNING)
def concurrency_in_raw_mode(ctx: Context) -> Iterator[Finding]:
    """replicas.target_concurrency is set in raw deployment mode, where it is ignored.

    Anti-pattern: ``deployment_mode: raw`` with ``replicas: {target_concurrency: 5}`` — raw mode
    scales with a HorizontalPodAutoscaler, which cannot see in-flight requests; mlspec has it
    scale on CPU (80 % utilization), so the concurrency target is silently dropped.

    Best practice: ``deployment_mode: serverless`` to scale on concurrency (Knative), or no
    ``target_concurrency`` in raw mode.
    """
    path = ("serving", "replicas", "target_concurrency")
    if ctx.project.serving.deployment_mode == "raw" and ctx.given(path):
        yield Finding(path, "raw deployment mode scales on CPU; target_concurrency is ignored",
                      "use deployment_mode: serverless, or remove target_concurrency")


@rule("MLS248", "traffic-percent-with-blue-green", Severity.WARNING)
def traffic_percent_with_blue_green(ctx: Context) -> Iterator[Finding]:
    """rollout.traffic_percent is set for a blue-green rollout, which switches all traffic.

    Anti-pattern: ``strategy: blue-green`` with ``traffic_percent: 10`` — blue-green moves 100 %
    of the traffic to the new model at once; the percentage is silently ignored.

    Best practice: ``canary`` (or ``ab``) for a partial share; no ``traffic_percent`` with
    ``blue-green``.
    """
    rollout = ctx.project.serving.rollout
    path = ("serving", "rollout", "traffic_percent")
    if rollout.strategy == "blue-green" and ctx.given(path):
        yield Finding(path, "blue-green switches all traffic at once; traffic_percent is ignored",
                      "remove traffic_percent, or use strategy: canary")


@rule("MLS249", "ab-without-ground-truth")
def ab_without_ground_truth(ctx: Context) -> Iterator[Finding]:
    """``strategy: ab`` in a spec that declares no ground truth (``monitoring.performance``).

    Anti-pattern: an A/B rollout with no ``monitoring.performance`` — the A/B rollout decides on
    labels posted to ``/feedback``; a service that never receives them gives no verdict, and no
    verdict within ``decide_within`` rolls the candidate back every time.

    Best practice: declare the ground truth the service gets (``monitoring.performance:
    {metric: accuracy, min: 0.85}``) with ``ab``; without labels use ``canary`` or ``shadow``,
    which decide on what the servers measure themselves.
    """
    if ctx.project.serving.rollout.strategy == "ab" and ctx.project.monitoring.performance is None:
        yield Finding(("serving", "rollout", "strategy"),
                      "an A/B rollout decides on ground truth from /feedback, and "
                      "monitoring.performance declares none",
                      "add monitoring.performance, or use strategy: canary or shadow")
