"""A rollout step's gates, judged on Prometheus' answer to their PromQL, failing closed.

A gate is the plan's ``{name, query, min?, max?}``. Its query goes to Prometheus' instant-query
API (``GET /api/v1/query``); the answer passes only when Prometheus answered ``success`` with at
least one sample, every sample is a finite number, and every one is within the bounds. Anything
else fails the gate with the reason, so a rollout can never advance on a missing measurement:

* Prometheus unreachable, an HTTP error, a timeout, a body that is not Prometheus' JSON;
* ``status: error`` (a bad query) or a result type that is not a number or a vector;
* an empty vector ("no data": nothing scraped yet, or the series does not exist);
* NaN or ±Inf (``0/0`` for a rate over no traffic, a histogram quantile with no samples).

Each result keeps what was measured and what it was compared with, for the rollout report and
the registry tags.
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

QUERY_PATH = "/api/v1/query"
DEFAULT_TIMEOUT_S = 10.0


class PrometheusError(Exception):
    """Prometheus gave no usable answer (the gate fails with this message)."""


@dataclass(frozen=True)
class Gate:
    """One gate of a rollout step: a PromQL expression and its bounds (inclusive)."""

    name: str
    query: str
    min: float | None = None
    max: float | None = None

    @classmethod
    def from_plan(cls, entry: Mapping[str, Any]) -> Gate:
        """A gate from the plan's mapping; bounds must be finite numbers, at least one given."""
        name, query = entry.get("name"), entry.get("query")
        if not isinstance(name, str) or not name or not isinstance(query, str) or not query:
            raise ValueError(f"a gate needs a name and a query, got {dict(entry)!r}")
        bounds = {key: entry.get(key) for key in ("min", "max")}
        for key, value in bounds.items():
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)
                                      or not math.isfinite(value)):
                raise ValueError(f"gate {name!r}: {key} must be a finite number, got {value!r}")
        if bounds["min"] is None and bounds["max"] is None:
            raise ValueError(f"gate {name!r} has neither min nor max")
        return cls(name, query, bounds["min"], bounds["max"])

    def bounds_text(self) -> str:
        parts = [f">= {self.min:g}" if self.min is not None else "",
                 f"<= {self.max:g}" if self.max is not None else ""]
        return " and ".join(p for p in parts if p)


@dataclass(frozen=True)
class GateResult:
    """A gate's verdict: the samples measured (labels, value) and why it passed or failed."""

    gate: Gate
    passed: bool
    reason: str
    samples: tuple[tuple[tuple[tuple[str, str], ...], float], ...] = field(default=())

    @property
    def value(self) -> float | None:
        """The worst sample for the gate (the one nearest to failing), or None without data."""
        if not self.samples:
            return None
        values = [value for _, value in self.samples]
        return min(values) if self.gate.min is not None and self.gate.max is None else max(values)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.gate.name, "query": self.gate.query, "min": self.gate.min,
                "max": self.gate.max, "passed": self.passed, "reason": self.reason,
                "value": _json_number(self.value),
                "samples": [{"labels": dict(labels), "value": _json_number(value)}
                            for labels, value in self.samples]}


class Prometheus:
    """Prometheus' HTTP API at ``url`` (e.g. ``http://prometheus.monitoring.svc:9090``)."""

    def __init__(self, url: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"Prometheus URL must be http(s)://, got {url!r}")
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s

    def query(self, expr: str) -> list[tuple[tuple[tuple[str, str], ...], float]]:
        """An instant query's samples as (sorted labels, value).

        Raises:
            PrometheusError: no answer, an error answer, or an answer that is not a number.
        """
        body = self._get(f"{self.url}{QUERY_PATH}?" + urllib.parse.urlencode({"query": expr}))
        if body.get("status") != "success":
            raise PrometheusError(f"Prometheus refused the query: {body.get('errorType', '?')}: "
                                  f"{body.get('error', 'no error message')}")
        data = body.get("data") or {}
        kind, result = data.get("resultType"), data.get("result")
        if kind == "scalar" and isinstance(result, list) and len(result) == 2:
            return [((), _sample_value(result))]
        if kind == "vector" and isinstance(result, list):
            return [(tuple(sorted((item.get("metric") or {}).items())),
                     _sample_value(item.get("value"))) for item in result]
        raise PrometheusError(f"the query gave a {kind or 'malformed'} result, not a number")

    def _get(self, url: str) -> dict[str, Any]:
        request = urllib.request.Request(url, headers={"Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raw = exc.read()  # Prometheus answers 400/422/503 with its JSON error body
            if not raw.strip().startswith(b"{"):
                raise PrometheusError(f"Prometheus answered HTTP {exc.code}") from None
        except TimeoutError:
            raise PrometheusError(f"Prometheus at {self.url} did not answer within "
                                  f"{self.timeout_s:g} s") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise PrometheusError(f"Prometheus at {self.url} cannot be reached: {reason}") from None
        try:
            body = json.loads(raw)
        except ValueError:
            raise PrometheusError("Prometheus' answer is not JSON") from None
        if not isinstance(body, dict):
            raise PrometheusError("Prometheus' answer is not a JSON object")
        return body


def judge(gate: Gate, prometheus: Prometheus) -> GateResult:
    """Query the gate's PromQL and judge the answer (failing closed, see the module)."""
    try:
        samples = prometheus.query(gate.query)
    except PrometheusError as exc:
        return GateResult(gate, False, str(exc))
    return judge_samples(gate, samples)


def judge_samples(gate: Gate, samples: Iterable[tuple[tuple[tuple[str, str], ...], float]]
                  ) -> GateResult:
    """The verdict on samples already measured: all finite and within bounds, at least one."""
    measured = tuple(samples)
    if not measured:
        return GateResult(gate, False, "no data: the query returned no sample")
    for labels, value in measured:
        where = _labels_text(labels)
        if not math.isfinite(value):
            return GateResult(gate, False, f"{value} is not a measurement{where}", measured)
        if gate.min is not None and value < gate.min:
            return GateResult(gate, False, f"{value:g} < min {gate.min:g}{where}", measured)
        if gate.max is not None and value > gate.max:
            return GateResult(gate, False, f"{value:g} > max {gate.max:g}{where}", measured)
    worst = GateResult(gate, True, "", measured).value
    return GateResult(gate, True, f"{worst:g} within {gate.bounds_text()}", measured)


def judge_all(gates: Iterable[Gate], prometheus: Prometheus) -> list[GateResult]:
    """Every gate's verdict (all are asked, so the report shows each measurement)."""
    return [judge(gate, prometheus) for gate in gates]


def _sample_value(pair: Any) -> float:
    """Prometheus' ``[timestamp, "value"]``: the value as a float (``NaN``/``+Inf`` included)."""
    if not isinstance(pair, list) or len(pair) != 2 or not isinstance(pair[1], str):
        raise PrometheusError(f"a sample is not [time, value]: {pair!r}")
    try:
        return float(pair[1])
    except ValueError:
        raise PrometheusError(f"a sample's value is not a number: {pair[1]!r}") from None


def _labels_text(labels: tuple[tuple[str, str], ...]) -> str:
    return (" (" + ", ".join(f"{k}={v!r}" for k, v in labels) + ")") if labels else ""


def _json_number(value: float | None) -> float | str | None:
    """JSON has no NaN or Inf: those are written as Prometheus writes them, as strings."""
    if value is None or math.isfinite(value):
        return value
    return str(value)
