"""Ground truth from ``POST /feedback``: a sliding window of (prediction, label) pairs and the
model-quality metrics over it, exported as ``mlspec_model_performance{metric=...}``."""

from __future__ import annotations

import warnings
from collections import deque

from mlspec.contract import ONLINE_PERFORMANCE_METRICS
from mlspec.runtime.serving_codec import BadRequest

CLASSIFICATION = ONLINE_PERFORMANCE_METRICS["classification"]
REGRESSION = ONLINE_PERFORMANCE_METRICS["regression"]


class Feedback:
    """The last ``window`` labelled predictions and their scores."""

    def __init__(self, classifier: bool, window: int = 10000) -> None:
        self.classifier = classifier
        self.pairs: deque[tuple] = deque(maxlen=window)

    def __len__(self) -> int:
        return len(self.pairs)

    def add(self, predictions: list, labels: list) -> int:
        """Add pairs; labels must be scalars (numbers for regression). Returns how many."""
        for label in labels:
            if isinstance(label, (list, dict)) or label is None:
                raise BadRequest("each label must be a single value (not null, list or object)")
            if not self.classifier and (isinstance(label, bool)
                                        or not isinstance(label, (int, float))):
                raise BadRequest(f"label {str(label)[:40]!r} is not a number (regression model)")
        if self.classifier:  # compare as text: a label "1" and a predicted 1 are the same class
            self.pairs.extend((str(p), str(y)) for p, y in zip(predictions, labels, strict=True))
        else:
            pairs = zip(predictions, labels, strict=True)
            self.pairs.extend((float(p), float(y)) for p, y in pairs)
        return len(labels)

    def scores(self) -> dict[str, float]:
        """Metric name -> value over the window (classification or regression metrics)."""
        if not self.pairs:
            return {}
        pred, true = (list(x) for x in zip(*self.pairs, strict=True))
        if self.classifier:
            with warnings.catch_warnings():  # a small window often lacks some classes
                warnings.simplefilter("ignore")
                return _classification(true, pred)
        return _regression(true, pred)


def _classification(true: list, pred: list) -> dict[str, float]:
    from sklearn import metrics as m

    return {
        "accuracy": float(m.accuracy_score(true, pred)),
        "balanced_accuracy": float(m.balanced_accuracy_score(true, pred)),
        "f1_macro": float(m.f1_score(true, pred, average="macro", zero_division=0)),
        "f1_weighted": float(m.f1_score(true, pred, average="weighted", zero_division=0)),
        "precision_macro": float(m.precision_score(true, pred, average="macro", zero_division=0)),
        "recall_macro": float(m.recall_score(true, pred, average="macro", zero_division=0)),
    }


def _regression(true: list, pred: list) -> dict[str, float]:
    import numpy as np

    p, t = np.asarray(pred), np.asarray(true)
    err = p - t
    mse = float(np.mean(err ** 2))
    var = float(np.var(t))
    nonzero = t != 0
    return {
        "mse": mse, "rmse": mse ** 0.5, "mae": float(np.mean(np.abs(err))),
        "r2": 1.0 - mse / var if var > 0 else 0.0,
        "mape": float(np.mean(np.abs(err[nonzero] / t[nonzero]))) if nonzero.any() else 0.0,
    }
