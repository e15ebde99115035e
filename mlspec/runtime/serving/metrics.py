"""The server's Prometheus metrics: O(1) updates on the request path, text exposition on scrape.

Names and label sets come from :mod:`mlspec.contract` only. Every series carries the constant
``model`` and ``version`` labels of the one model this server runs, so the request path updates
plain dicts and lists; the text is rendered only when ``/metrics`` is scraped.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable

from mlspec import contract


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if value != value:  # NaN
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


_FEEDBACK_FAMILIES = (
    (contract.FEEDBACK_TOTAL, "Predictions labelled with ground truth through /feedback."),
    (contract.FEEDBACK_LOSS, "Sum of their loss: 0/1 misclassification, or squared error."),
    (contract.FEEDBACK_LOSS_SQUARED, "Sum of the squares of their loss (for its variance)."),
)


class Metrics:
    """Counters, the latency histogram and gauges of one served model."""

    def __init__(self, model: str, version: str) -> None:
        self.base = f'model="{_escape(model)}",version="{_escape(version)}"'
        self.requests: dict[int, int] = {}
        self.bucket_counts = [0] * (len(contract.DURATION_BUCKETS) + 1)  # last: +Inf only
        self.duration_sum = 0.0
        self.duration_count = 0
        self.predictions: dict[str, int] = {}
        self.performance: dict[str, float] = {}
        self.feedback_loss: list = [0, 0.0, 0.0]  # the server's Feedback.loss (same list)
        self.shadow: dict[str, int] = {}  # outcome -> rows, on a shadow candidate only
        # Called at scrape time: feature -> (method, value); online drift is computed lazily.
        self.drift_source: Callable[[], dict[str, tuple[str, float]]] | None = None

    def observe(self, code: int, seconds: float) -> None:
        """Count one inference request with its status code and latency."""
        self.requests[code] = self.requests.get(code, 0) + 1
        self.bucket_counts[bisect_left(contract.DURATION_BUCKETS, seconds)] += 1
        self.duration_sum += seconds
        self.duration_count += 1

    def count_predictions(self, labels: list) -> None:
        """Count predicted classes (classifiers) - one increment per prediction."""
        counts = self.predictions
        for label in labels:
            key = str(label)
            counts[key] = counts.get(key, 0) + 1

    def count_values(self, n: int) -> None:
        """Count regression predictions: they have no class, the label is empty."""
        self.predictions[""] = self.predictions.get("", 0) + n

    def render(self) -> str:
        """The Prometheus text exposition (format 0.0.4) of every metric."""
        return render_all([self])

    def families(self) -> list[tuple[str, str, str, list[str]]]:
        """Every metric family as (name, type, help, sample lines), in exposition order."""
        base = self.base
        drift = self.drift_source() if self.drift_source else {}
        return [
            (contract.MODEL_INFO, "gauge", "The model this server runs (always 1).",
             [f"{contract.MODEL_INFO}{{{base}}} 1"]),
            (contract.REQUESTS_TOTAL, "counter", "Inference requests by HTTP status code.",
             [f'{contract.REQUESTS_TOTAL}{{{base},code="{code}"}} {self.requests[code]}'
              for code in sorted(self.requests)]),
            (contract.REQUEST_DURATION, "histogram", "Inference request latency in seconds.",
             self._histogram()),
            (contract.PREDICTIONS_TOTAL, "counter", "Predictions by predicted class.",
             [f'{contract.PREDICTIONS_TOTAL}{{{base},class="{_escape(label)}"}} '
              f"{self.predictions[label]}" for label in sorted(self.predictions)]),
            (contract.FEATURE_DRIFT, "gauge",
             "Drift of recent inputs against the training reference profile, per feature.",
             [f'{contract.FEATURE_DRIFT}{{{base},feature="{_escape(feature)}",'
              f'method="{_escape(drift[feature][0])}"}} {_number(drift[feature][1])}'
              for feature in sorted(drift)]),
            (contract.MODEL_PERFORMANCE, "gauge",
             "Model quality on recent ground truth received through /feedback.",
             [f'{contract.MODEL_PERFORMANCE}{{{base},metric="{_escape(metric)}"}} '
              f"{_number(self.performance[metric])}" for metric in sorted(self.performance)]),
            *self._feedback_counters(),
            (contract.SHADOW_COMPARISONS, "counter",
             "A shadow's predictions compared with the champion's on the same requests, per row.",
             [f'{contract.SHADOW_COMPARISONS}{{{base},outcome="{outcome}"}} {self.shadow[outcome]}'
              for outcome in sorted(self.shadow)]),
        ]

    def _feedback_counters(self) -> list[tuple[str, str, str, list[str]]]:
        n, loss, squared = self.feedback_loss
        if not n:
            return [(name, "counter", text, []) for name, text in _FEEDBACK_FAMILIES]
        return [(name, "counter", text, [f"{name}{{{self.base}}} {_number(value)}"])
                for (name, text), value in zip(_FEEDBACK_FAMILIES, (n, loss, squared),
                                               strict=True)]

    def _histogram(self) -> list[str]:
        name = contract.REQUEST_DURATION
        lines = []
        cumulative = 0
        for bound, count in zip(contract.DURATION_BUCKETS, self.bucket_counts, strict=False):
            cumulative += count
            lines.append(f'{name}_bucket{{{self.base},le="{_number(bound)}"}} {cumulative}')
        lines.append(f'{name}_bucket{{{self.base},le="+Inf"}} {self.duration_count}')
        lines.append(f"{name}_sum{{{self.base}}} {_number(self.duration_sum)}")
        lines.append(f"{name}_count{{{self.base}}} {self.duration_count}")
        return lines


def render_all(servers: list[Metrics]) -> str:
    """One exposition of several models' metrics (a champion and a candidate in one process):
    each family's HELP and TYPE once, then every model's samples (the format allows no second
    TYPE line for a family)."""
    per_server = [m.families() for m in servers]
    lines: list[str] = []
    for index, (name, kind, text, _) in enumerate(per_server[0]):
        lines.append(f"# HELP {name} {text}")
        lines.append(f"# TYPE {name} {kind}")
        for families in per_server:
            lines.extend(families[index][3])
    return "\n".join(lines) + "\n"
