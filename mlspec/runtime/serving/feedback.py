"""Ground truth from ``POST /feedback``: a sliding window of (prediction, label) pairs and the
model-quality metrics over it, exported as ``mlspec_model_performance{metric=...}``.

Every post rescores the window, so scoring must not grow with it: classification keeps running
confusion counts (a post costs its own pairs plus one pass over the classes; sklearn over a
10k window took ~150 ms while inference waited), regression keeps the window in numpy ring
buffers. The figures equal scikit-learn's (``zero_division=0``; tested against it).
"""

from __future__ import annotations

from collections import Counter, deque

import numpy as np

from mlspec.runtime.serving.codec import BadRequest


class Feedback:
    """The last ``window`` labelled predictions and their scores."""

    def __init__(self, classifier: bool, window: int = 10000) -> None:
        if window < 1:
            raise ValueError(f"the feedback window must hold at least 1 pair, not {window}")
        self.classifier = classifier
        self._window = _ClassWindow(window) if classifier else _ValueWindow(window)
        # Since the server started, not over the window: [pairs, sum of loss, sum of loss²],
        # exported as counters so that Prometheus' increase() gives any period's figures.
        self.loss = [0, 0.0, 0.0]

    def __len__(self) -> int:
        return len(self._window)

    def add(self, predictions: list, labels: list) -> int:
        """Add pairs; labels must be scalars (numbers for regression). Returns how many."""
        for label in labels:
            if isinstance(label, (list, dict)) or label is None:
                raise BadRequest("each label must be a single value (not null, list or object)")
            if not self.classifier and (isinstance(label, bool)
                                        or not isinstance(label, (int, float))):
                raise BadRequest(f"label {str(label)[:40]!r} is not a number (regression model)")
        if len(predictions) != len(labels):
            raise ValueError("predictions and labels differ in length")
        self._window.add(predictions, labels)
        self._add_loss(predictions, labels)
        return len(labels)

    def _add_loss(self, predictions: list, labels: list) -> None:
        """Per pair: 0/1 misclassification (classes compared as text) or squared error."""
        if self.classifier:
            wrong = sum(str(p) != str(y) for p, y in zip(predictions, labels, strict=True))
            self.loss[1] += wrong
            self.loss[2] += wrong  # 1² = 1
        else:
            err = np.asarray(predictions, dtype=np.float64) - np.asarray(labels, dtype=np.float64)
            squared = err * err
            self.loss[1] += float(squared.sum())
            self.loss[2] += float((squared * squared).sum())
        self.loss[0] += len(labels)

    def scores(self) -> dict[str, float]:
        """Metric name -> value over the window (classification or regression metrics)."""
        return self._window.scores() if len(self._window) else {}


class _ClassWindow:
    """(predicted, true) class pairs, compared as text (a label "1" and a predicted 1 are the
    same class), with their confusion counts kept up to date as pairs enter and leave."""

    def __init__(self, window: int) -> None:
        self.pairs: deque[tuple[str, str]] = deque()
        self.window = window
        self.confusion: Counter[tuple[str, str]] = Counter()

    def __len__(self) -> int:
        return len(self.pairs)

    def add(self, predictions: list, labels: list) -> None:
        for pair in zip(map(str, predictions), map(str, labels), strict=True):
            self.pairs.append(pair)
            self.confusion[pair] += 1
        while len(self.pairs) > self.window:
            old = self.pairs.popleft()
            self.confusion[old] -= 1
            if not self.confusion[old]:
                del self.confusion[old]  # a class that left the window leaves the averages

    def scores(self) -> dict[str, float]:
        predicted: Counter[str] = Counter()
        true: Counter[str] = Counter()
        hits: Counter[str] = Counter()
        for (p, y), count in self.confusion.items():
            predicted[p] += count
            true[y] += count
            if p == y:
                hits[y] += count
        n = len(self.pairs)
        labels = sorted(predicted.keys() | true.keys())
        precision = [hits[c] / predicted[c] if predicted[c] else 0.0 for c in labels]
        recall = [hits[c] / true[c] if true[c] else 0.0 for c in labels]
        f1 = [2 * hits[c] / (predicted[c] + true[c]) for c in labels]
        return {
            "accuracy": sum(hits.values()) / n,
            # sklearn averages recall over the classes that occur in the truth only.
            "balanced_accuracy": sum(hits[c] / true[c] for c in true) / len(true),
            "f1_macro": sum(f1) / len(labels),
            "f1_weighted": sum(f * true[c] for f, c in zip(f1, labels, strict=True)) / n,
            "precision_macro": sum(precision) / len(labels),
            "recall_macro": sum(recall) / len(labels),
        }


class _ValueWindow:
    """(predicted, true) numbers in two ring buffers."""

    def __init__(self, window: int) -> None:
        self.pred = np.empty(window)
        self.true = np.empty(window)
        self.next = 0  # where the next pair goes
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def add(self, predictions: list, labels: list) -> None:
        window = len(self.pred)
        pred = np.asarray(predictions, dtype=np.float64)[-window:]
        true = np.asarray(labels, dtype=np.float64)[-window:]
        where = (self.next + np.arange(len(pred))) % window
        self.pred[where], self.true[where] = pred, true
        self.next = (self.next + len(pred)) % window
        self.size = min(window, self.size + len(pred))

    def scores(self) -> dict[str, float]:
        p, t = self.pred[:self.size], self.true[:self.size]
        err = p - t
        mse = float(np.mean(err ** 2))
        var = float(np.var(t))
        nonzero = t != 0
        return {
            "mse": mse, "rmse": mse ** 0.5, "mae": float(np.mean(np.abs(err))),
            "r2": 1.0 - mse / var if var > 0 else 0.0,
            "mape": float(np.mean(np.abs(err[nonzero] / t[nonzero]))) if nonzero.any() else 0.0,
        }
