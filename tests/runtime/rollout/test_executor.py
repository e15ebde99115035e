"""The canary executor's rules: the plan it accepts, and how every failure ends in a rollback.

The traffic side is a recording ``Traffic`` (the executor's own interface); Prometheus is a real
client pointed at a port nobody listens on, so the gates fail closed as they would in
production. The whole loop with a real server and a real Prometheus is tests/e2e/
test_rollout_loop.py.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlspec.runtime.rollout.executor import (
    PROMOTED,
    ROLLED_BACK,
    Plan,
    RolloutError,
    Step,
    execute,
    parse_duration,
    parse_plan,
)
from mlspec.runtime.rollout.gates import Gate, Prometheus
from mlspec.runtime.rollout.registry import rollout_tags

REPO = Path(__file__).resolve().parents[3]


class RecordingTraffic:
    """Keeps the traffic state in memory and records every change; can be told to fail."""

    def __init__(self, percent: int = 0, fail_at: int | None = None,
                 fail_restore: bool = False) -> None:
        self.current = {"champion": "1", "candidate": "2", "candidate_percent": percent,
                        "mirror": False}
        self.calls: list[Any] = []
        self.fail_at, self.fail_restore = fail_at, fail_restore

    def state(self) -> dict[str, Any]:
        return dict(self.current)

    def set_percent(self, percent: int) -> None:
        self.calls.append(percent)
        if percent == self.fail_at:
            raise RolloutError("the admin API refused")
        self.current["candidate_percent"] = percent

    def restore(self, state: Mapping[str, Any]) -> None:
        self.calls.append(("restore", state["candidate_percent"]))
        if self.fail_restore:
            raise RolloutError("the admin API is gone")
        self.current.update(state)


@pytest.fixture
def unreachable() -> Iterator[Prometheus]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield Prometheus(f"http://127.0.0.1:{sock.getsockname()[1]}", timeout_s=1)


def _compiled_plan() -> dict:
    from mlspec.compile.build import render_target
    from mlspec.spec.loader import load_spec

    project = load_spec(str(REPO / "examples" / "iris" / "mlproject.yaml"), None).project
    files = {f.path: f.content for f in render_target(project, "serving")}
    return yaml.safe_load(yaml.safe_load(files["serving/rollout-plan.yaml"])["data"]["plan.yaml"])


def _plan(*steps: Step) -> Plan:
    return Plan("canary", "m", steps)


GATE = Gate("error-rate", "up", max=0.01)


@pytest.mark.parametrize("text, seconds", [("0s", 0), ("45s", 45), ("10m", 600),
                                           ("1h30m", 5400), ("250ms", 0.25), ("1.5s", 1.5)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "10", "ten minutes", "5x", "-1s", "1m x"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(RolloutError):
        parse_duration(text)


def test_the_compiled_canary_plan_parses_and_a_hold_override_shortens_it() -> None:
    plan = parse_plan(_compiled_plan(), hold_override_s=5)
    assert [(s.percent, s.hold_s) for s in plan.steps] == [(10, 5), (50, 5), (100, 0)]
    assert [g.name for g in plan.steps[0].gates] == [
        "error-rate", "latency-p99-seconds", "feature-drift", "performance-accuracy"]
    assert [s.hold_s for s in parse_plan(_compiled_plan()).steps] == [600, 600, 0]


@pytest.mark.parametrize("change, message", [
    ({"strategy": "shadow"}, "strategy is 'shadow'"),
    ({"steps": []}, "no steps"),
    ({"steps": [{"trafficPercent": 10, "hold": "1m", "gates": []},
                {"trafficPercent": 100, "hold": "0s", "gates": []}]}, "has no gates"),
    ({"steps": [{"trafficPercent": 10, "hold": "1m",
                 "gates": [{"name": "g", "query": "up", "max": 1}]}]}, "does not reach 100"),
    ({"steps": [{"trafficPercent": 0, "hold": "1m", "gates": []}]}, "is not 1-100"),
    ({"steps": [{"trafficPercent": 100, "hold": "soon"}]}, "not a duration"),
])
def test_a_plan_it_cannot_carry_out_is_refused(change: dict, message: str) -> None:
    with pytest.raises(RolloutError, match=message):
        parse_plan({**_compiled_plan(), **change})


def test_a_gate_that_cannot_be_measured_rolls_back_and_restores(unreachable) -> None:
    traffic = RecordingTraffic(percent=0)
    report = execute(_plan(Step(10, 0, (GATE,)), Step(100, 0, ())), traffic, unreachable,
                     log=lambda _: None)
    assert report["outcome"] == ROLLED_BACK and report["restored"] is True
    assert traffic.calls == [10, ("restore", 0)] and traffic.current["candidate_percent"] == 0
    assert "gate error-rate failed" in report["reason"]
    assert "cannot be reached" in report["reason"]
    (gate,) = report["steps"][0]["gates"]
    assert gate["passed"] is False and gate["value"] is None


def test_the_state_before_the_rollout_is_what_comes_back(unreachable) -> None:
    traffic = RecordingTraffic(percent=30)  # someone had given the candidate 30 % already
    execute(_plan(Step(50, 0, (GATE,)), Step(100, 0, ())), traffic, unreachable,
            log=lambda _: None)
    assert traffic.current["candidate_percent"] == 30


def test_traffic_that_cannot_be_moved_rolls_back(unreachable) -> None:
    traffic = RecordingTraffic(fail_at=50)
    report = execute(_plan(Step(50, 0, (GATE,)), Step(100, 0, ())), traffic, unreachable,
                     log=lambda _: None)
    assert report["outcome"] == ROLLED_BACK and "the admin API refused" in report["reason"]
    assert traffic.calls == [50, ("restore", 0)]


def test_a_failed_restore_is_said(unreachable) -> None:
    traffic = RecordingTraffic(fail_restore=True)
    report = execute(_plan(Step(10, 0, (GATE,)), Step(100, 0, ())), traffic, unreachable,
                     log=lambda _: None)
    assert report["outcome"] == ROLLED_BACK and report["restored"] is False
    assert "restoring the previous traffic failed too" in report["reason"]


def test_each_step_is_held_before_its_gates(unreachable) -> None:
    held: list[float] = []
    execute(_plan(Step(10, 7, (GATE,)), Step(100, 0, ())), RecordingTraffic(), unreachable,
            sleep=held.append, log=lambda _: None)
    assert held == [7]


def test_the_last_step_promotes() -> None:
    traffic = RecordingTraffic()
    report = execute(_plan(Step(100, 0, ())), traffic, Prometheus("http://127.0.0.1:9"),
                     log=lambda _: None)
    assert report["outcome"] == PROMOTED and traffic.current["candidate_percent"] == 100


def test_the_report_becomes_registry_tags(unreachable) -> None:
    report = execute(_plan(Step(10, 0, (GATE,)), Step(100, 0, ())), RecordingTraffic(),
                     unreachable, log=lambda _: None)
    tags = rollout_tags(report)
    assert tags["mlspec.rollout.outcome"] == "rolled_back"
    assert tags["mlspec.rollout.strategy"] == "canary"
    assert tags["mlspec.rollout.step1.error-rate"] == "fail None"
    assert all(len(v) <= 5000 for v in tags.values())
