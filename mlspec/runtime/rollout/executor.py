"""The canary rollout executor: step the candidate's traffic through the plan, gate each step.

For each step of ``serving/rollout-plan.yaml`` (``trafficPercent``, ``hold``, ``gates``): give the
candidate that share, hold it, then ask Prometheus every gate (``gates.py``). All gates pass: the
next step. One fails, or the traffic cannot be set: the previous traffic state is restored
exactly (the share the champion and candidate had before the rollout began) and the rollout
ends ``rolled_back`` with the failing step, gate and measured value. After the last step the
candidate serves 100 % and the rollout is ``promoted``.

Where the traffic is moved is a ``Traffic`` object: ``LocalTraffic`` drives ``mlspec serve
--candidate``'s admin API. The executor changes nothing in the registry; ``registry.py`` records
the report on the version and, only for ``promoted``, moves the champion alias.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from mlspec.runtime.rollout.gates import Gate, GateResult, Prometheus, judge_all

PROMOTED, ROLLED_BACK = "promoted", "rolled_back"
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0,
           "y": 31536000.0}


class RolloutError(Exception):
    """The rollout cannot be carried out (a bad plan, traffic that cannot be moved)."""


def parse_duration(text: str) -> float:
    """A Go/Prometheus-style duration (``10m``, ``1h30m``, ``45s``, ``0s``) in seconds."""
    if not isinstance(text, str) or not text or _DURATION.sub("", text):
        raise RolloutError(f"{text!r} is not a duration like 30s, 10m or 1h")
    return sum(float(n) * _UNIT_S[unit] for n, unit in _DURATION.findall(text))


@dataclass(frozen=True)
class Step:
    percent: int
    hold_s: float
    gates: tuple[Gate, ...]


@dataclass(frozen=True)
class Plan:
    strategy: str
    model: str
    steps: tuple[Step, ...]


def parse_plan(plan: Mapping[str, Any], hold_override_s: float | None = None) -> Plan:
    """The plan's YAML (already parsed); ``hold_override_s`` replaces every step's hold.

    Raises:
        RolloutError: not a canary plan this executor can carry out.
    """
    strategy = plan.get("strategy")
    if strategy != "canary":
        raise RolloutError(f"the plan's strategy is {strategy!r}: this executor steps canary "
                           "plans")
    raw_steps = plan.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise RolloutError("the plan has no steps")
    steps = []
    for number, raw in enumerate(raw_steps, 1):
        try:
            percent = int(raw["trafficPercent"])
            hold = parse_duration(str(raw.get("hold", "0s")))
            gates = tuple(Gate.from_plan(g) for g in raw.get("gates") or [])
        except (KeyError, TypeError, ValueError) as exc:
            raise RolloutError(f"step {number} of the plan: {exc}") from None
        if not 0 < percent <= 100:
            raise RolloutError(f"step {number}: trafficPercent {percent} is not 1-100")
        if percent < 100 and not gates:
            raise RolloutError(f"step {number} ({percent}%) has no gates: nothing would decide")
        steps.append(Step(percent, hold if hold_override_s is None or percent == 100
                          else hold_override_s, gates))
    if steps[-1].percent != 100:
        raise RolloutError("the plan's last step does not reach 100%")
    return Plan("canary", str(plan.get("model", "")), tuple(steps))


class Traffic(Protocol):
    def state(self) -> dict[str, Any]: ...

    def set_percent(self, percent: int) -> None: ...

    def restore(self, state: Mapping[str, Any]) -> None: ...


class LocalTraffic:
    """``mlspec serve --candidate``'s admin API (``/admin/traffic``) at ``url``."""

    def __init__(self, url: str, timeout_s: float = 10.0) -> None:
        self.url = url.rstrip("/").removesuffix("/admin/traffic") + "/admin/traffic"
        self.timeout_s = timeout_s

    def state(self) -> dict[str, Any]:
        return self._call("GET", None)

    def set_percent(self, percent: int) -> None:
        self._call("PUT", {"candidate_percent": percent})

    def restore(self, state: Mapping[str, Any]) -> None:
        self._call("PUT", {"candidate_percent": state["candidate_percent"],
                           "mirror": state["mirror"]})

    def set_mirror(self, percent: int) -> None:
        """Shadow: the local server mirrors every request (``percent`` is the cluster's)."""
        del percent
        self._call("PUT", {"candidate_percent": 0, "mirror": True})

    def promote(self) -> None:
        self._call("PUT", {"candidate_percent": 100, "mirror": False})

    def versions(self) -> tuple[str, str]:
        state = self.state()
        return str(state["champion"]), str(state["candidate"])

    def _public(self, suffix: str) -> str:
        state = self.state()
        if not state.get("port"):
            raise RolloutError("the admin API does not say the server's public port")
        host = urllib.parse.urlsplit(self.url).hostname
        model = urllib.parse.quote(str(state.get("model", "")), safe="")
        return (f"http://{host}:{state['port']}/v2/models/{model}/versions/"
                f"{urllib.parse.quote(str(state['candidate']), safe='')}/{suffix}")

    def wait_ready(self, timeout_s: float, sleep: Callable[[float], None],
                   clock: Callable[[], float]) -> None:
        """Until the candidate's ``/ready`` answers 200 (the local server loads both models
        before it listens, so this is the first answer unless something is wrong)."""
        url, deadline = self._public("ready"), clock() + timeout_s
        while True:
            try:
                self._call("GET", None, url)
                return
            except RolloutError as exc:
                if clock() >= deadline:
                    raise RolloutError(f"the candidate is not ready after {timeout_s:g} s: "
                                       f"{exc}") from None
            sleep(1.0)

    def smoke(self) -> str:
        """One inference of plausible rows through the candidate; its answer, shortened."""
        sample = self._call("GET", None, self.url.removesuffix("/traffic") + "/sample")
        return smoke_predictions(self._call("POST", sample, self._public("infer")))

    def _call(self, method: str, body: dict | None, url: str | None = None) -> dict[str, Any]:
        return call_json(method, url or self.url, body, self.timeout_s,
                         what=url or f"the admin API at {self.url}")


def call_json(method: str, url: str, body: dict | None, timeout_s: float,
              what: str | None = None) -> dict[str, Any]:
    """One JSON request; the JSON object answered.

    Raises:
        RolloutError: no answer, an HTTP error, or an answer that is not a JSON object.
    """
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            answer = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise RolloutError(f"{url} refused {method}: HTTP {exc.code} "
                           f"{exc.read()[:200]!r}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise RolloutError(f"{what or url} cannot be used: "
                           f"{getattr(exc, 'reason', exc)}") from None
    if not isinstance(answer, dict):
        raise RolloutError(f"{what or url} answered {answer!r}")
    return answer


def smoke_predictions(answer: dict[str, Any]) -> str:
    """A smoke inference's predictions, shortened for the report.

    Raises:
        RolloutError: the answer holds no predictions.
    """
    outputs = answer.get("outputs") or []
    if not outputs or not isinstance(outputs[0], dict) or "data" not in outputs[0]:
        raise RolloutError(f"the smoke inference answered without predictions: {answer}")
    return json.dumps(outputs[0]["data"])[:200]


def execute(plan: Plan, traffic: Traffic, prometheus: Prometheus, *,
            sleep: Callable[[float], None] = time.sleep,
            log: Callable[[str], None] = print) -> dict[str, Any]:
    """Carry the plan out; returns the report (``outcome``, every step with its gates)."""
    started = time.time()
    before = traffic.state()
    report: dict[str, Any] = {"strategy": plan.strategy, "model": plan.model,
                              "before": before, "steps": [], "started_at": started}
    for number, step in enumerate(plan.steps, 1):
        entry: dict[str, Any] = {"step": number, "traffic_percent": step.percent,
                                 "hold_s": step.hold_s, "gates": []}
        report["steps"].append(entry)
        try:
            traffic.set_percent(step.percent)
        except RolloutError as exc:
            return _roll_back(report, traffic, before, f"step {number}: {exc}", log)
        log(f"step {number}: candidate at {step.percent}%, holding {step.hold_s:g} s")
        sleep(step.hold_s)
        results = judge_all(step.gates, prometheus)
        entry["gates"] = [r.to_json() for r in results]
        for result in results:
            log(f"  {'pass' if result.passed else 'FAIL'} {result.gate.name}: {result.reason}")
        failed = [r for r in results if not r.passed]
        if failed:
            return _roll_back(report, traffic, before, _failure(number, failed), log)
    report.update(outcome=PROMOTED, reason="every gate passed; the candidate serves 100%",
                  finished_at=time.time())
    return report


def _failure(number: int, failed: list[GateResult]) -> str:
    return f"step {number}: " + "; ".join(f"gate {r.gate.name} failed: {r.reason}"
                                          for r in failed)


def _roll_back(report: dict[str, Any], traffic: Traffic, before: Mapping[str, Any],
               reason: str, log: Callable[[str], None]) -> dict[str, Any]:
    log(f"rolling back: {reason}")
    try:
        traffic.restore(before)
        restored = True
    except RolloutError as exc:
        restored = False
        reason += f"; restoring the previous traffic failed too: {exc}"
    report.update(outcome=ROLLED_BACK, reason=reason, restored=restored,
                  finished_at=time.time())
    return report
