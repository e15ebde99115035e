"""Shadow, A/B and blue-green: the plans accepted, and every way each ends.

Traffic is a recording ``Traffic``; Prometheus answers from a script (the gates' own handling of
Prometheus' API is tests/runtime/rollout/test_gates.py, the whole loop against a real Prometheus
and a real server is tests/e2e/test_rollout_loop.py). The compiled plans come from the example
spec, so a plan the compiler writes and the runtime refuses fails here.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlspec.runtime.rollout.executor import PROMOTED, ROLLED_BACK, RolloutError
from mlspec.runtime.rollout.gates import Prometheus, PrometheusError
from mlspec.runtime.rollout.registry import rollout_tags
from mlspec.runtime.rollout.strategies import carry_out, check_plan

REPO = Path(__file__).resolve().parents[3]


def compiled_plan(strategy: str, **rollout: Any) -> dict:
    from mlspec.compile.build import render_target
    from mlspec.spec.models import Project

    data = yaml.safe_load((REPO / "examples" / "iris" / "mlproject.yaml").read_text())
    data["serving"]["rollout"].update(strategy=strategy, **rollout)
    files = {f.path: f.content for f in render_target(Project.model_validate(data), "serving")}
    return yaml.safe_load(yaml.safe_load(files["serving/rollout-plan.yaml"])["data"]["plan.yaml"])


class Traffic:
    def __init__(self, ready: bool = True, smoke_fails: bool = False) -> None:
        self.current = {"champion": "1", "candidate": "2", "candidate_percent": 0,
                        "mirror": False}
        self.calls: list[Any] = []
        self.ready, self.smoke_fails = ready, smoke_fails

    def state(self) -> dict[str, Any]:
        return dict(self.current)

    def set_percent(self, percent: int) -> None:
        self.calls.append(("percent", percent))
        self.current.update(candidate_percent=percent)

    def set_mirror(self, percent: int) -> None:
        self.calls.append(("mirror", percent))
        self.current.update(mirror=True)

    def promote(self) -> None:
        self.calls.append("promote")
        self.current.update(candidate_percent=100, mirror=False)

    def restore(self, state: Mapping[str, Any]) -> None:
        self.calls.append("restore")
        self.current.update(state)

    def versions(self) -> tuple[str, str]:
        return "1", "2"

    def wait_ready(self, timeout_s, sleep, clock) -> None:
        self.calls.append(("ready", timeout_s))
        if not self.ready:
            raise RolloutError(f"the candidate is not ready after {timeout_s:g} s")

    def smoke(self) -> str:
        self.calls.append("smoke")
        if self.smoke_fails:
            raise RolloutError("the smoke inference answered HTTP 500")
        return "[0, 1]"


class Scripted(Prometheus):
    """Answers each query with ``values[name-of-gate or feedback key]`` (a callable of the
    query count, or a number); anything else has no data."""

    def __init__(self, plan: dict, values: dict[str, Any]) -> None:
        super().__init__("http://127.0.0.1:9")
        self.by_query: dict[str, str] = {g["query"]: g["name"] for g in plan.get("gates", [])}
        self.by_query.update({q: k for k, q in (plan.get("feedback") or {}).items()})
        self.values, self.asked = values, itertools.count()

    def query(self, expr: str):
        key = self.by_query.get(expr)
        value = self.values.get(key)
        if value is None:
            return []
        if isinstance(value, Exception):
            raise value
        answer = value(next(self.asked)) if callable(value) else value
        return answer if isinstance(answer, list) else [((), float(answer))]


HEALTHY = {"error-rate": 0.0, "latency-p99-seconds": 0.01, "feature-drift": 0.01}


def run(plan: dict, traffic: Traffic, prometheus: Prometheus, **kw: Any) -> dict:
    clock = itertools.count(0, 30)  # every look at the clock: 30 s later
    return carry_out(plan, traffic, prometheus, sleep=lambda _: None,
                     clock=lambda: float(next(clock)), log=lambda _: None, **kw)


# --- the plans ---------------------------------------------------------------------------------
@pytest.mark.parametrize("strategy", ["canary", "shadow", "ab", "blue-green"])
def test_every_compiled_plan_is_one_the_runtime_carries_out(strategy: str) -> None:
    check_plan(compiled_plan(strategy))


@pytest.mark.parametrize("strategy, change, message", [
    ("shadow", {"gates": []}, "has no gates"),
    ("shadow", {"mirrorPercent": 0}, "is not 1-100"),
    ("shadow", {"hold": "soon"}, "not a duration"),
    ("ab", {"test": {"name": "vibes"}}, "not one this runtime computes"),
    ("ab", {"decideWithin": None}, "not a duration"),
    ("blue-green", {"readinessTimeout": "x"}, "not a duration"),
    ("ab", {"strategy": "rainbow"}, "strategy is 'rainbow'"),
])
def test_a_plan_it_cannot_carry_out_is_refused(strategy: str, change: dict, message: str) -> None:
    with pytest.raises(RolloutError, match=message):
        check_plan({**compiled_plan(strategy), **change})


# --- shadow ------------------------------------------------------------------------------------
def test_a_shadow_that_agrees_is_promoted() -> None:
    plan, traffic = compiled_plan("shadow"), Traffic()
    report = run(plan, traffic, Scripted(plan, {**HEALTHY, "prediction-agreement": 0.99}))
    assert report["outcome"] == PROMOTED
    assert traffic.calls == [("mirror", 10), "promote"]
    assert traffic.current == {**traffic.current, "candidate_percent": 100, "mirror": False}
    gates = {g["name"]: g for g in report["steps"][0]["gates"]}
    assert gates["prediction-agreement"]["value"] == 0.99


def test_a_shadow_that_disagrees_is_rolled_back_with_its_figure() -> None:
    plan, traffic = compiled_plan("shadow"), Traffic()
    report = run(plan, traffic, Scripted(plan, {**HEALTHY, "prediction-agreement": 0.62}))
    assert report["outcome"] == ROLLED_BACK and report["restored"] is True
    assert traffic.calls == [("mirror", 10), "restore"] and traffic.current["mirror"] is False
    assert "gate prediction-agreement failed: 0.62 < min 0.95" in report["reason"]
    assert rollout_tags(report)["mlspec.rollout.step1.prediction-agreement"] == "fail 0.62"


def test_a_shadow_without_comparisons_is_not_passed() -> None:
    plan = compiled_plan("shadow")
    report = run(plan, Traffic(), Scripted(plan, HEALTHY))
    assert report["outcome"] == ROLLED_BACK and "no data" in report["reason"]


# --- A/B ---------------------------------------------------------------------------------------
def arms(champion: tuple[float, float], candidate: tuple[float, float]) -> dict[str, Any]:
    """Counters for (samples, wrong) per version (0/1 loss: loss² = loss); none yet when the
    split begins (the first three queries)."""
    def key(index: int):
        return lambda asked: [] if asked < 3 else [((("version", "1"),), champion[index]),
                                                   ((("version", "2"),), candidate[index])]
    return {"samples": key(0), "loss": key(1), "lossSquared": key(1)}


def test_ab_promotes_a_candidate_that_is_not_worse() -> None:
    plan, traffic = compiled_plan("ab"), Traffic()
    report = run(plan, traffic, Scripted(plan, {**HEALTHY, **arms((400, 40), (400, 36))}))
    assert report["outcome"] == PROMOTED, report["reason"]
    assert traffic.calls == [("percent", 10), ("percent", 100)]
    (test,) = [g for g in report["steps"][0]["gates"] if g["name"] == "ab-test"]
    assert test["passed"] and test["arms"]["candidate"]["samples"] == 400


def test_ab_rolls_back_a_candidate_that_is_worse() -> None:
    plan, traffic = compiled_plan("ab"), Traffic()
    report = run(plan, traffic, Scripted(plan, {**HEALTHY, **arms((400, 20), (400, 60))}))
    assert report["outcome"] == ROLLED_BACK and traffic.calls[-1] == "restore"
    assert "ab-test: candidate worse than the champion at significance 0.05" in report["reason"]
    assert rollout_tags(report)["mlspec.rollout.step1.ab-test"].startswith("fail ")


def test_ab_gives_no_verdict_before_the_minimum_sample() -> None:
    plan, traffic = compiled_plan("ab", decide_within="5m"), Traffic()
    report = run(plan, traffic, Scripted(plan, {**HEALTHY, **arms((150, 0), (150, 150))}))
    assert report["outcome"] == ROLLED_BACK
    assert "no verdict within 600 s" in report["reason"]  # decide_within < hold: the hold
    assert "150 labelled predictions for the champion, fewer than 200" in report["reason"]


def test_ab_counts_only_feedback_since_the_split_began() -> None:
    plan = compiled_plan("ab")
    # Before the split the champion had 10,000 perfect answers; afterwards both get 300 with
    # the same error: not worse (a total since start would make the candidate look worse).
    def counters(index: int):
        def answer(asked: int):
            before = asked < 3
            champion = (10_000, 0) if before else (10_300, 30)
            candidate = (0, 0) if before else (300, 30)
            return [((("version", "1"),), champion[index]), ((("version", "2"),), candidate[index])]
        return answer
    values = {**HEALTHY, "samples": counters(0), "loss": counters(1), "lossSquared": counters(1)}
    report = run(plan, Traffic(), Scripted(plan, values))
    assert report["outcome"] == PROMOTED, report["reason"]


def test_ab_without_prometheus_rolls_back() -> None:
    plan, traffic = compiled_plan("ab"), Traffic()
    report = run(plan, traffic, Scripted(plan, {"samples": PrometheusError("refused")}))
    assert report["outcome"] == ROLLED_BACK and "cannot be read: refused" in report["reason"]
    assert traffic.calls == ["restore"]


# --- blue-green ---------------------------------------------------------------------------------
def test_blue_green_waits_for_green_smokes_it_then_switches() -> None:
    plan, traffic = compiled_plan("blue-green"), Traffic()
    report = run(plan, traffic, Scripted(plan, HEALTHY))
    assert report["outcome"] == PROMOTED and report["smoke"] == "[0, 1]"
    assert traffic.calls == [("ready", 600), "smoke", ("percent", 100)]


@pytest.mark.parametrize("traffic, message", [
    (Traffic(ready=False), "not ready after 600 s"),
    (Traffic(smoke_fails=True), "smoke inference answered HTTP 500"),
])
def test_blue_green_never_switches_to_a_green_that_fails(traffic: Traffic, message: str) -> None:
    plan = compiled_plan("blue-green")
    report = run(plan, traffic, Scripted(plan, HEALTHY))
    assert report["outcome"] == ROLLED_BACK and message in report["reason"]
    assert ("percent", 100) not in traffic.calls and traffic.calls[-1] == "restore"


def test_blue_green_switches_back_when_a_gate_fails_after_the_switch() -> None:
    plan, traffic = compiled_plan("blue-green"), Traffic()
    report = run(plan, traffic, Scripted(plan, {**HEALTHY, "error-rate": 0.2}))
    assert report["outcome"] == ROLLED_BACK and traffic.current["candidate_percent"] == 0
    assert "gate error-rate failed: 0.2 > max 0.01" in report["reason"]
