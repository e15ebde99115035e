"""Lint rules for ``validation``: metrics, thresholds and the champion/challenger baseline."""

from __future__ import annotations

from collections.abc import Iterator

from mlspec.errors import Severity, did_you_mean
from mlspec.lint.base import Context, Finding, SpecPath, rule
from mlspec.lint.datasets import SKLEARN_DATASETS, sklearn_dataset_name
from mlspec.spec.catalog import lookup
from mlspec.spec.models import CLASSIFICATION_METRICS, LOWER_IS_BETTER, REGRESSION_METRICS

TASK_METRICS = {"classification": CLASSIFICATION_METRICS, "regression": REGRESSION_METRICS}
PROBA_METRICS = ("roc_auc", "log_loss")
BINARY_METRICS = ("precision", "recall", "f1")
# The range a metric can take; a threshold outside it can never pass (or always passes).
_UNIT = (0.0, 1.0)
METRIC_RANGE: dict[str, tuple[float | None, float | None]] = {
    **{m: _UNIT for m in CLASSIFICATION_METRICS if m != "log_loss"},
    "log_loss": (0.0, None), "r2": (None, 1.0),
    "rmse": (0.0, None), "mae": (0.0, None), "mse": (0.0, None), "mape": (0.0, None),
}


def metric_fields(ctx: Context) -> Iterator[tuple[SpecPath, str]]:
    """Every metric the validation section and tuning name, with its spec path."""
    validation = ctx.project.validation
    for i, metric in enumerate(validation.metrics or ()):
        yield ("validation", "metrics", i), metric
    tuning = ctx.project.model.tuning
    if tuning is not None and tuning.metric is not None:
        yield ("model", "tuning", "metric"), tuning.metric
    if validation.baseline is not None and validation.baseline.metric is not None:
        yield ("validation", "baseline", "metric"), validation.baseline.metric


@rule("MLS220", "threshold-not-computed")
def threshold_not_computed(ctx: Context) -> Iterator[Finding]:
    """A threshold is set on a metric that validation.metrics does not compute.

    Anti-pattern: ``metrics: [accuracy]`` with ``thresholds: {f1_macro: {min: 0.8}}`` — the gate
    has no value to compare, so the threshold silently does nothing (or fails every run).

    Best practice: every thresholded metric is also listed in ``validation.metrics``.
    """
    computed = ctx.project.metrics
    for name in ctx.project.validation.thresholds:
        if name not in computed:
            hint = did_you_mean(name, computed) or f"add '{name}' to validation.metrics"
            yield Finding(("validation", "thresholds", name),
                          f"threshold on '{name}', which validation.metrics does not compute "
                          f"(it computes {', '.join(computed)})", hint)


@rule("MLS221", "metric-wrong-task")
def metric_wrong_task(ctx: Context) -> Iterator[Finding]:
    """A metric does not apply to model.task.

    Anti-pattern: ``accuracy`` on a regression task, or ``rmse`` on a classification task.

    Best practice: classification: accuracy, f1_macro, roc_auc…; regression: r2, rmse, mae….
    """
    task = ctx.project.model.task
    allowed = TASK_METRICS[task]
    for path, metric in metric_fields(ctx):
        if metric not in allowed:
            yield Finding(path, f"'{metric}' is not a {task} metric",
                          f"{task} metrics: {', '.join(allowed)}")


@rule("MLS222", "metric-not-computed")
def metric_not_computed(ctx: Context) -> Iterator[Finding]:
    """model.tuning.metric or validation.baseline.metric is not in validation.metrics.

    Anti-pattern: ``baseline: {metric: roc_auc}`` while ``metrics: [accuracy]`` — the challenger
    is never scored on the metric it must beat the champion on.

    Best practice: list the metric in ``validation.metrics`` too.
    """
    computed = ctx.project.metrics
    task_metrics = TASK_METRICS[ctx.project.model.task]
    for path, metric in metric_fields(ctx):
        if path[:2] == ("validation", "metrics"):
            continue
        if metric in task_metrics and metric not in computed:  # else MLS221 reports it
            yield Finding(path, f"'{metric}' is not computed by validation.metrics",
                          f"add '{metric}' to validation.metrics")


@rule("MLS223", "proba-metric-without-proba")
def proba_metric_without_proba(ctx: Context) -> Iterator[Finding]:
    """roc_auc or log_loss is asked of an estimator that has no predict_proba.

    Anti-pattern: ``estimator: sklearn.svm.LinearSVC`` with ``metrics: [roc_auc]``.

    Best practice: choose an estimator with ``predict_proba`` (e.g. LogisticRegression), or a
    metric on labels (accuracy, f1_macro).
    """
    model = ctx.project.model
    if model.framework != "sklearn":
        return
    info = lookup(model.estimator_path())
    if info is None or info.kind != "classifier" or info.predict_proba:
        return
    for path, metric in metric_fields(ctx):
        if metric in PROBA_METRICS:
            yield Finding(path, f"'{metric}' needs predicted probabilities, and "
                          f"{info.path.rsplit('.', 1)[-1]} has no predict_proba",
                          "use accuracy/f1_macro, or an estimator with predict_proba")


@rule("MLS224", "threshold-unreachable")
def threshold_unreachable(ctx: Context) -> Iterator[Finding]:
    """A threshold can never pass: min above max, or a bound outside the metric's range.

    Anti-pattern: ``accuracy: {min: 90}`` (a percentage: accuracy is between 0 and 1);
    ``rmse: {max: -1}``; ``min: 0.9, max: 0.8``.

    Best practice: fractions between 0 and 1 for scores; min ≤ max.
    """
    for name, threshold in ctx.project.validation.thresholds.items():
        path = ("validation", "thresholds", name)
        low, high = threshold.min, threshold.max
        if low is not None and high is not None and low > high:
            yield Finding(path + ("min",), f"threshold on '{name}' has min {low:g} > max {high:g}")
            continue
        lo_lim, hi_lim = METRIC_RANGE.get(name, (None, None))
        if low is not None and hi_lim is not None and low > hi_lim:
            yield Finding(path + ("min",), f"'{name}' is at most {hi_lim:g}; min {low:g} can "
                          "never pass", "scores are fractions: write 0.9, not 90")
        if high is not None and lo_lim is not None and high < lo_lim:
            yield Finding(path + ("max",), f"'{name}' is at least {lo_lim:g}; max {high:g} can "
                          "never pass")


@rule("MLS225", "threshold-direction", Severity.WARNING)
def threshold_direction(ctx: Context) -> Iterator[Finding]:
    """A threshold bounds a metric in the wrong direction only.

    Anti-pattern: ``accuracy: {max: 0.9}`` (rejects good models) or ``rmse: {min: 3}``
    (rejects models whose error is small).

    Best practice: ``min`` for scores where higher is better, ``max`` for errors/losses.
    """
    for name, threshold in ctx.project.validation.thresholds.items():
        lower_better = name in LOWER_IS_BETTER
        path = ("validation", "thresholds", name)
        if not lower_better and threshold.max is not None and threshold.min is None:
            yield Finding(path + ("max",), f"'{name}' is better when higher; a max rejects "
                          "better models", "did you mean min?")
        if lower_better and threshold.min is not None and threshold.max is None:
            yield Finding(path + ("min",), f"'{name}' is better when lower; a min rejects "
                          "better models", "did you mean max?")


@rule("MLS226", "empty-threshold", Severity.WARNING)
def empty_threshold(ctx: Context) -> Iterator[Finding]:
    """A threshold sets neither ``min`` nor ``max``; it checks nothing.

    Anti-pattern: ``thresholds: {accuracy: {}}``.

    Best practice: ``accuracy: {min: 0.9}``.
    """
    for name, threshold in ctx.project.validation.thresholds.items():
        if threshold.min is None and threshold.max is None:
            yield Finding(("validation", "thresholds", name),
                          f"the threshold on '{name}' sets neither min nor max", "add min: or max:")


@rule("MLS227", "binary-metric-multiclass")
def binary_metric_multiclass(ctx: Context) -> Iterator[Finding]:
    """A binary-only metric is used on a data set with more than two classes.

    Anti-pattern: ``f1`` (binary) on ``sklearn://iris`` (3 classes) — scikit-learn raises.

    Best practice: ``f1_macro``, ``precision_macro``, ``recall_macro`` or ``f1_weighted``.
    """
    info = SKLEARN_DATASETS.get(sklearn_dataset_name(ctx.project.data.source.uri) or "")
    if info is None or info.classes <= 2:
        return
    for path, metric in metric_fields(ctx):
        if metric in BINARY_METRICS:
            yield Finding(path, f"'{metric}' is for binary targets; "
                          f"{ctx.project.data.source.uri} has {info.classes} classes",
                          f"did you mean '{metric}_macro'?")


@rule("MLS228", "negative-min-delta", Severity.WARNING)
def negative_min_delta(ctx: Context) -> Iterator[Finding]:
    """validation.baseline.min_delta is negative: a worse model can replace the champion.

    Anti-pattern: ``baseline: {min_delta: -0.05}``.

    Best practice: ``min_delta: 0`` (at least as good) or a small positive margin.
    """
    baseline = ctx.project.validation.baseline
    if baseline is not None and baseline.min_delta < 0:
        yield Finding(("validation", "baseline", "min_delta"),
                      f"min_delta {baseline.min_delta:g} lets a worse challenger replace the "
                      "champion", "use 0 or a positive margin")
