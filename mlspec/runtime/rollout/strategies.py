"""Shadow, A/B and blue-green rollouts, and the one entry point for every strategy's plan.

Each takes the plan as compiled (``mlspec.compile.rollout_plan``; plain data here), a
``Traffic`` (the local server's admin API, or the cluster's objects) and Prometheus, and returns
the report the canary executor returns: ``outcome`` (promoted / rolled_back), ``reason``, and
``steps``, each with the gates judged in it and their measured values. A failed gate, a test
that says the candidate is worse, no verdict in time, or traffic that cannot be moved restores
the state read before the rollout began.

* **shadow**: mirror ``mirrorPercent`` of the requests to the candidate for ``hold``; then the
  gates (error rate and p99 per version, prediction agreement on the mirrored rows). Pass: the
  candidate takes all the traffic, mirroring stops.
* **ab**: split ``trafficPercent``; poll the ground-truth counters until both versions have
  ``minSamples`` labelled predictions since the split began (and ``hold`` has passed), then the
  health gates and the test (``abtest.py``). Pass: the candidate takes all the traffic. No
  verdict by ``decideWithin``: rolled back.
* **blue-green**: wait up to ``readinessTimeout`` for green to be ready, send it a smoke
  inference, switch the route, hold, judge the gates. Pass: green serves, blue stays up at 0 %
  for a switch back. Fail: the route goes back to blue.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import Any

from mlspec.runtime.rollout import abtest
from mlspec.runtime.rollout.executor import (
    PROMOTED,
    ROLLED_BACK,
    RolloutError,
    execute,
    parse_duration,
    parse_plan,
)
from mlspec.runtime.rollout.gates import Gate, Prometheus, PrometheusError, judge_all

AB_POLL_S = 15.0


def _gates(plan: Mapping[str, Any]) -> tuple[Gate, ...]:
    try:
        gates = tuple(Gate.from_plan(g) for g in plan.get("gates") or [])
    except (TypeError, ValueError, AttributeError) as exc:
        raise RolloutError(f"the plan's gates: {exc}") from None
    if not gates:
        raise RolloutError(f"the {plan.get('strategy')} plan has no gates: nothing would decide")
    return gates


def _duration(plan: Mapping[str, Any], key: str, override_s: float | None = None) -> float:
    if override_s is not None:
        return override_s
    if key not in plan:
        raise RolloutError(f"the {plan.get('strategy')} plan has no {key!r}")
    return parse_duration(str(plan[key]))


def _percent(plan: Mapping[str, Any], key: str) -> int:
    value = plan.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= 100:
        raise RolloutError(f"the plan's {key} {value!r} is not 1-100")
    return value


def check_plan(plan: Mapping[str, Any]) -> None:
    """Refuse a plan this runtime cannot carry out, before any traffic moves."""
    strategy = plan.get("strategy")
    if strategy == "canary":
        parse_plan(plan)
        return
    if strategy not in RUNNERS:
        raise RolloutError(f"the plan's strategy is {strategy!r}; this runtime carries out "
                           f"{', '.join(['canary', *RUNNERS])}")
    _gates(plan)
    _duration(plan, "hold")
    if strategy == "shadow":
        _percent(plan, "mirrorPercent")
    elif strategy == "ab":
        _percent(plan, "trafficPercent")
        _duration(plan, "decideWithin")
        _test(plan)
    else:
        _duration(plan, "readinessTimeout")


def carry_out(plan: Mapping[str, Any], traffic, prometheus: Prometheus, *,
              hold_override_s: float | None = None, sleep: Callable[[float], None] = time.sleep,
              clock: Callable[[], float] = time.monotonic,
              log: Callable[[str], None] = print) -> dict[str, Any]:
    """Carry out any strategy's plan (see the module); returns the report."""
    check_plan(plan)
    if plan["strategy"] == "canary":
        return execute(parse_plan(plan, hold_override_s), traffic, prometheus, sleep=sleep,
                       log=log)
    report: dict[str, Any] = {"strategy": plan["strategy"], "model": str(plan.get("model", "")),
                              "started_at": time.time(), "steps": []}
    report["before"] = before = traffic.state()
    runner = RUNNERS[plan["strategy"]]
    try:
        outcome, reason = runner(plan, traffic, prometheus, report, hold_override_s, sleep,
                                 clock, log)
    except RolloutError as exc:
        outcome, reason = ROLLED_BACK, str(exc)
    if outcome == ROLLED_BACK:
        log(f"rolling back: {reason}")
        try:
            traffic.restore(before)
            report["restored"] = True
        except RolloutError as exc:
            report["restored"] = False
            reason += f"; restoring the previous traffic failed too: {exc}"
    report.update(outcome=outcome, reason=reason, finished_at=time.time())
    return report


def _judge(number: int, phase: str, percent: int, hold_s: float, gates, prometheus,
           report: dict[str, Any], log) -> list[str]:
    """Judge ``gates`` into a report step; returns the failures' descriptions."""
    results = judge_all(gates, prometheus)
    report["steps"].append({"step": number, "phase": phase, "traffic_percent": percent,
                            "hold_s": hold_s, "gates": [r.to_json() for r in results]})
    for result in results:
        log(f"  {'pass' if result.passed else 'FAIL'} {result.gate.name}: {result.reason}")
    return [f"gate {r.gate.name} failed: {r.reason}" for r in results if not r.passed]


def _shadow(plan, traffic, prometheus, report, hold_override_s, sleep, clock, log):
    percent, hold = _percent(plan, "mirrorPercent"), _duration(plan, "hold", hold_override_s)
    traffic.set_mirror(percent)
    log(f"shadow: mirroring {percent}% of the requests to the candidate, holding {hold:g} s")
    sleep(hold)
    failed = _judge(1, "mirror", 0, hold, _gates(plan), prometheus, report, log)
    if failed:
        return ROLLED_BACK, "shadow: " + "; ".join(failed)
    traffic.promote()
    report["steps"].append({"step": 2, "phase": "promote", "traffic_percent": 100, "hold_s": 0,
                            "gates": []})
    return PROMOTED, "the shadow matched the champion on every gate; the candidate serves 100%"


def _test(plan: Mapping[str, Any]) -> tuple[int, float]:
    test = plan.get("test") or {}
    min_samples, significance = test.get("minSamples"), test.get("significance")
    if test.get("name") != "welch-z-one-sided" or not isinstance(min_samples, int) \
            or isinstance(significance, bool) or not isinstance(significance, int | float) \
            or not 0 < significance < 0.5 or not isinstance(plan.get("feedback"), dict):
        raise RolloutError(f"the A/B plan's test {test!r} is not one this runtime computes")
    return min_samples, float(significance)


def _arms(prometheus: Prometheus, queries: Mapping[str, str]) -> dict[str, abtest.Arm]:
    """Each version's feedback counters now (a version with none yet has zeros)."""
    values: dict[str, dict[str, float]] = {}
    for key in ("samples", "loss", "lossSquared"):
        for labels, value in prometheus.query(queries[key]):
            if not math.isfinite(value):
                raise PrometheusError(f"{key} of {dict(labels)} is {value}")
            values.setdefault(dict(labels).get("version", ""), {})[key] = value
    return {version: abtest.Arm(v.get("samples", 0.0), v.get("loss", 0.0),
                                v.get("lossSquared", 0.0)) for version, v in values.items()}


def _ab(plan, traffic, prometheus, report, hold_override_s, sleep, clock, log):
    percent, hold = _percent(plan, "trafficPercent"), _duration(plan, "hold", hold_override_s)
    within = max(hold, _duration(plan, "decideWithin"))
    min_samples, significance = _test(plan)
    stable, candidate = traffic.versions()
    zero = abtest.Arm(0.0, 0.0, 0.0)
    try:
        start = _arms(prometheus, plan["feedback"])
    except PrometheusError as exc:
        raise RolloutError(f"ab: the feedback counters cannot be read: {exc}") from None
    report["feedback_at_start"] = {v: vars(a) for v, a in sorted(start.items())}
    traffic.set_percent(percent)
    log(f"ab: candidate at {percent}%; a verdict needs {min_samples} labelled predictions per "
        f"version (at least {hold:g} s, at most {within:g} s)")
    began = clock()
    while True:
        sleep(min(AB_POLL_S, hold) if hold else AB_POLL_S)
        elapsed = clock() - began
        try:
            now = _arms(prometheus, plan["feedback"])
        except PrometheusError as exc:
            raise RolloutError(f"ab: the feedback counters cannot be read: {exc}") from None
        arms = [now.get(v, zero).minus(start.get(v, zero)) for v in (stable, candidate)]
        verdict = abtest.one_sided_welch(arms[0], arms[1], min_samples, significance)
        if verdict.decided and elapsed >= hold:
            break
        if elapsed >= within:
            _record_test(report, verdict, arms, elapsed)
            return ROLLED_BACK, f"ab: no verdict within {within:g} s: {verdict.reason}"
        log(f"  {elapsed:.0f} s: {verdict.reason}")
    failed = _judge(1, "split", percent, elapsed, _gates(plan), prometheus, report, log)
    _record_test(report, verdict, arms, elapsed)
    log(f"  {'FAIL' if verdict.candidate_worse else 'pass'} ab-test: {verdict.reason}")
    if verdict.candidate_worse:
        failed.append(f"ab-test: {verdict.reason}")
    if failed:
        return ROLLED_BACK, "ab: " + "; ".join(failed)
    traffic.set_percent(100)
    return PROMOTED, f"ab: {verdict.reason}; the candidate serves 100%"


def _record_test(report: dict[str, Any], verdict: abtest.Verdict, arms, elapsed: float) -> None:
    entry: dict[str, Any] = {"name": "ab-test", "query": "welch-z-one-sided on mlspec_feedback_*",
             "min": None, "max": None, "passed": verdict.decided and not verdict.candidate_worse,
             "reason": verdict.reason,
             "value": verdict.p_value if math.isfinite(verdict.p_value) else None,
             "z": verdict.z if math.isfinite(verdict.z) else None,
             "arms": {"champion": vars(arms[0]), "candidate": vars(arms[1])},
             "samples": []}
    if not report["steps"]:
        report["steps"].append({"step": 1, "phase": "split", "hold_s": elapsed, "gates": []})
    report["steps"][-1]["gates"].append(entry)


def _blue_green(plan, traffic, prometheus, report, hold_override_s, sleep, clock, log):
    hold = _duration(plan, "hold", hold_override_s)
    timeout = _duration(plan, "readinessTimeout")
    traffic.wait_ready(timeout, sleep, clock)
    log("blue-green: green is ready")
    answer = traffic.smoke()
    log(f"blue-green: smoke inference answered: {answer}")
    report["smoke"] = answer
    traffic.set_percent(100)
    log(f"blue-green: switched to green, holding {hold:g} s")
    sleep(hold)
    failed = _judge(1, "switched", 100, hold, _gates(plan), prometheus, report, log)
    if failed:
        return ROLLED_BACK, "blue-green: " + "; ".join(failed)
    return PROMOTED, "green passed every gate after the switch; blue stays up at 0% for rollback"


RUNNERS: dict[str, Callable[..., tuple[str, str]]] = {
    "shadow": _shadow, "ab": _ab, "blue-green": _blue_green,
}
