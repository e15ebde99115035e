"""Benchmark: the model server's ``POST /feedback`` scoring against scikit-learn's metrics.

Every feedback post adds labelled predictions to a sliding window (10 000 pairs by default) and
rescores the window, on the server's event loop: inference waits while it runs. Side by side,
in one run, on the same posts:

* ``mlspec``  — ``mlspec.runtime.serving.feedback.Feedback``: running confusion counts
  (classification), numpy ring buffers (regression);
* ``sklearn`` — the window kept as pairs and scored with scikit-learn's metric functions after
  each post (accuracy, balanced accuracy, macro/weighted F1, macro precision/recall; numpy for
  regression): what the server did before, and what one would write first.

Prints the median time per post (add + score) of each, the ratio, and checks both report the
same figures (relative 1e-12); exits 1 when they differ.

    .venv/bin/python bench/feedback_bench.py [--window 10000] [--posts 200] [--batch 8]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from collections import deque
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mlspec.runtime.serving.feedback import Feedback  # noqa: E402


def sklearn_classification(true: list, pred: list) -> dict[str, float]:
    from sklearn import metrics as m

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "accuracy": float(m.accuracy_score(true, pred)),
            "balanced_accuracy": float(m.balanced_accuracy_score(true, pred)),
            "f1_macro": float(m.f1_score(true, pred, average="macro", zero_division=0)),
            "f1_weighted": float(m.f1_score(true, pred, average="weighted", zero_division=0)),
            "precision_macro": float(m.precision_score(true, pred, average="macro",
                                                       zero_division=0)),
            "recall_macro": float(m.recall_score(true, pred, average="macro", zero_division=0)),
        }


def numpy_regression(true: list, pred: list) -> dict[str, float]:
    p, t = np.asarray(pred), np.asarray(true)
    err = p - t
    mse = float(np.mean(err ** 2))
    var = float(np.var(t))
    nonzero = t != 0
    return {"mse": mse, "rmse": mse ** 0.5, "mae": float(np.mean(np.abs(err))),
            "r2": 1.0 - mse / var if var > 0 else 0.0,
            "mape": float(np.mean(np.abs(err[nonzero] / t[nonzero]))) if nonzero.any() else 0.0}


class Recompute:
    """The window as a deque of pairs, rescored from scratch after every post."""

    def __init__(self, classifier: bool, window: int) -> None:
        self.classifier = classifier
        self.pairs: deque[tuple] = deque(maxlen=window)

    def add(self, predictions: list, labels: list) -> None:
        cast = str if self.classifier else float
        self.pairs.extend((cast(p), cast(y)) for p, y in zip(predictions, labels, strict=True))

    def scores(self) -> dict[str, float]:
        pred, true = (list(x) for x in zip(*self.pairs, strict=True))
        return (sklearn_classification if self.classifier else numpy_regression)(true, pred)


def posts(classifier: bool, n_posts: int, batch: int, seed: int) -> list[tuple[list, list]]:
    rng = np.random.default_rng(seed)
    if classifier:
        return [(rng.integers(0, 3, batch).tolist(), rng.integers(0, 3, batch).tolist())
                for _ in range(n_posts)]
    return [(rng.normal(size=batch).tolist(), rng.normal(size=batch).tolist())
            for _ in range(n_posts)]


def time_posts(scorer, work: list[tuple[list, list]]) -> tuple[list[float], dict[str, float]]:
    times, scores = [], {}
    for predictions, labels in work:
        start = time.perf_counter()
        scorer.add(predictions, labels)
        scores = scorer.scores()
        times.append(time.perf_counter() - start)
    return times, scores


def run(classifier: bool, window: int, n_posts: int, batch: int) -> bool:
    kind = "classification" if classifier else "regression"
    fill = posts(classifier, 1, window, seed=1)[0]  # a full window first: the steady state
    work = posts(classifier, n_posts, batch, seed=2)
    contenders = {"mlspec": Feedback(classifier, window), "sklearn": Recompute(classifier, window)}
    results = {}
    for name, scorer in contenders.items():
        scorer.add(*fill)
        results[name] = time_posts(scorer, work)
    ours, theirs = (statistics.median(results[n][0]) for n in ("mlspec", "sklearn"))
    same = all(np.isclose(results["mlspec"][1][k], v, rtol=1e-12, atol=0)
               for k, v in results["sklearn"][1].items())
    print(f"{kind:15s} window {window}, {n_posts} posts of {batch}: "
          f"mlspec {ours * 1e3:8.3f} ms/post   sklearn {theirs * 1e3:8.3f} ms/post   "
          f"mlspec is {theirs / ours:,.0f}x faster   same figures: {'yes' if same else 'NO'}")
    return same


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=int, default=10000)
    parser.add_argument("--posts", type=int, default=200)
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()
    same = [run(classifier, args.window, args.posts, args.batch) for classifier in (True, False)]
    return 0 if all(same) else 1


if __name__ == "__main__":
    sys.exit(main())
