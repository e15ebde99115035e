"""The PromQL vocabulary every monitoring file shares: windows, durations, selectors, names
(and the labels of the target's Kubernetes objects).

Rules, promtool tests and the dashboard must agree on every recording-rule name, window and
label matcher, so they are made here once, in the lowest module of the package. Spec values
reach a selector only through :func:`promql_string` (and :func:`regex_literal` inside regex
matchers), both from :mod:`mlspec.compile.promql`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mlspec import contract, k8s
from mlspec.compile.promql import promql_string, regex_literal
from mlspec.spec.models import Project

# Fixed windows for the service-level signals (the spec sets only their thresholds).
RATE_WINDOW = "5m"
SERVICE_FOR = "5m"
NO_TRAFFIC_FOR = "15m"
NOT_READY_FOR = "5m"
# A drift or performance alert must hold for a quarter of its window, at most this long.
MAX_PENDING_S = 300


def selector(metric: str, matchers: list[tuple[str, str, str]]) -> str:
    """``metric{label<op>"value",...}`` with every value quoted by :func:`promql_string`."""
    inner = ",".join(f"{label}{op}{promql_string(value)}" for label, op, value in matchers)
    return f"{metric}{{{inner}}}"


def number(value: float) -> str:
    """A float as PromQL and people write it: ``0.2``, ``250``, never ``2e-01``."""
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


# --- durations --------------------------------------------------------------------------------
_UNITS_MS = {
    "y": 365 * 86_400_000,
    "w": 7 * 86_400_000,
    "d": 86_400_000,
    "h": 3_600_000,
    "m": 60_000,
    "s": 1000,
    "ms": 1,
}
_DURATION_PART = re.compile(r"([0-9]+)(ms|s|m|h|d|w|y)")


def duration_ms(text: str) -> int:
    """Milliseconds in a Prometheus duration such as ``1h30m`` (any order of units)."""
    return sum(int(n) * _UNITS_MS[unit] for n, unit in _DURATION_PART.findall(text))


def format_duration(ms: int) -> str:
    """The canonical Prometheus form of a duration (units descending): ``90000`` → ``1m30s``."""
    if ms <= 0:
        return "0s"
    parts = []
    for unit in ("y", "w", "d", "h", "m", "s", "ms"):
        count, ms = divmod(ms, _UNITS_MS[unit])
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def pending_for(window: str) -> str:
    """How long a windowed alert must hold: a quarter of its window, whole seconds, at most 5m."""
    seconds = min(MAX_PENDING_S, duration_ms(window) // 4000)
    return format_duration(seconds * 1000)


# --- recording-rule names ---------------------------------------------------------------------
@dataclass(frozen=True)
class Names:
    """Recording-rule names of one project (windows from the spec are part of the names)."""

    drift_window: str
    perf_window: str

    @property
    def requests_rate(self) -> str:
        return f"model:{contract.REQUESTS_TOTAL}:rate{RATE_WINDOW}"

    @property
    def error_ratio(self) -> str:
        return f"model:{contract.REQUESTS_TOTAL}:error_ratio_rate{RATE_WINDOW}"

    @property
    def latency_p99(self) -> str:
        return f"model:{contract.REQUEST_DURATION}:p99_rate{RATE_WINDOW}"

    @property
    def drift(self) -> str:
        return f"model_feature:{contract.FEATURE_DRIFT}:avg{self.drift_window}"

    @property
    def performance(self) -> str:
        return f"model:{contract.MODEL_PERFORMANCE}:avg{self.perf_window}"


def names_for(project: Project) -> Names:
    perf = project.monitoring.performance
    return Names(
        drift_window=format_duration(duration_ms(project.monitoring.drift.window)),
        perf_window=format_duration(duration_ms(perf.window if perf else "24h")),
    )


# --- selectors --------------------------------------------------------------------------------
def drift_features(project: Project) -> list[str]:
    """The features the drift alert watches (sorted); empty: every feature the server exports."""
    features = project.monitoring.drift.features
    if features == "all":
        return sorted(project.data.features)
    return sorted(set(features))


def model_matcher(project: Project) -> tuple[str, str, str]:
    return ("model", "=", project.model_name)


def drift_selector(project: Project, metric: str) -> str:
    matchers = [model_matcher(project), ("method", "=", project.monitoring.drift.method)]
    features = drift_features(project)
    if features:
        matchers.append(("feature", "=~", "|".join(regex_literal(f) for f in features)))
    return selector(metric, matchers)


def perf_selector(project: Project, metric: str) -> str:
    perf = project.monitoring.performance
    assert perf is not None
    return selector(metric, [model_matcher(project), ("metric", "=", perf.metric)])


# --- Kubernetes objects -----------------------------------------------------------------------
def k8s_labels(project: Project) -> dict[str, str]:
    """The labels of every Kubernetes object the monitoring target writes."""
    return k8s.standard_labels(project.metadata.name, project.metadata.labels,
                               {"app.kubernetes.io/component": "monitoring"})
