"""Lint rules for ``monitoring``: drift, online performance and the alerts that retrain."""

from __future__ import annotations

from collections.abc import Iterator

from mlspec.contract import ONLINE_PERFORMANCE_METRICS
from mlspec.errors import Severity, did_you_mean
from mlspec.lint.base import Context, Finding, rule
from mlspec.lint.validation import TASK_METRICS

NUMERIC_ONLY_METHODS = ("ks", "wasserstein")
CATEGORICAL_METHODS = ("chi2",)
# Methods whose statistic cannot exceed 1: a threshold at or above it never fires.
BOUNDED_METHODS = ("ks", "js")


def drift_features(ctx: Context) -> list[tuple[str, str]]:
    """(name, type) of each feature drift is evaluated on, when the spec says which."""
    features = ctx.project.data.features
    chosen = ctx.project.monitoring.drift.features
    names = list(features) if chosen == "all" else [n for n in chosen if n in features]
    return [(n, features[n].type) for n in names]


@rule("MLS250", "drift-feature-unknown")
def drift_feature_unknown(ctx: Context) -> Iterator[Finding]:
    """monitoring.drift.features names a feature that data.features does not declare.

    Anti-pattern: ``drift: {features: [petal_lenght]}`` — the server never exports a drift value
    for it, so the alert can never fire.

    Best practice: list features declared under ``data.features``, or ``features: all``.
    """
    chosen = ctx.project.monitoring.drift.features
    declared = ctx.project.data.features
    if chosen == "all":
        return
    for i, name in enumerate(chosen):
        if name not in declared:
            hint = did_you_mean(name, declared) or (
                "declared: " + ", ".join(declared) if declared else "declare it in data.features")
            yield Finding(("monitoring", "drift", "features", i),
                          f"drift feature '{name}' is not in data.features", hint)


@rule("MLS251", "performance-metric-wrong-task")
def performance_metric_wrong_task(ctx: Context) -> Iterator[Finding]:
    """monitoring.performance.metric does not apply to model.task.

    Anti-pattern: ``performance: {metric: accuracy}`` on a regression model (the default
    metric is accuracy, so a regression spec must set it).

    Best practice: a metric of the task, e.g. ``rmse`` or ``r2`` for regression.
    """
    performance = ctx.project.monitoring.performance
    task = ctx.project.model.task
    if performance is not None and performance.metric not in TASK_METRICS[task]:
        path: tuple[str, ...] = ("monitoring", "performance", "metric")
        if not ctx.given(path):
            path = path[:-1]
        yield Finding(path, f"'{performance.metric}' is not a {task} metric",
                      f"{task} metrics: {', '.join(TASK_METRICS[task])}")


@rule("MLS256", "performance-metric-not-online")
def performance_metric_not_online(ctx: Context) -> Iterator[Finding]:
    """monitoring.performance.metric is not one the model server computes from feedback.

    Anti-pattern: ``performance: {metric: roc_auc, min: 0.9}`` — the server scores ground truth
    against predicted labels, so it never exports ``roc_auc`` or ``log_loss`` and the alert can
    never fire.

    Best practice: a label-based metric, e.g. ``accuracy`` or ``f1_macro`` (``rmse`` or ``r2``
    for regression).
    """
    performance = ctx.project.monitoring.performance
    task = ctx.project.model.task
    online = ONLINE_PERFORMANCE_METRICS[task]
    if performance is not None and performance.metric in TASK_METRICS[task] \
            and performance.metric not in online:
        yield Finding(("monitoring", "performance", "metric"),
                      f"the model server does not compute '{performance.metric}' from feedback, "
                      "so this alert can never fire", f"online {task} metrics: {', '.join(online)}")


@rule("MLS252", "performance-without-bound", Severity.WARNING)
def performance_without_bound(ctx: Context) -> Iterator[Finding]:
    """monitoring.performance sets neither ``min`` nor ``max``, so its alert never fires.

    Anti-pattern: ``performance: {metric: accuracy, window: 24h}``.

    Best practice: ``performance: {metric: accuracy, min: 0.85}``.
    """
    performance = ctx.project.monitoring.performance
    if performance is not None and performance.min is None and performance.max is None:
        yield Finding(("monitoring", "performance"),
                      "monitoring.performance sets neither min nor max; it can never alert",
                      "add min: (or max: for an error metric)")


@rule("MLS253", "drift-method-feature-type", Severity.WARNING)
def drift_method_feature_type(ctx: Context) -> Iterator[Finding]:
    """The drift method does not fit the type of a feature it is applied to.

    Anti-pattern: ``method: ks`` or ``wasserstein`` on ``category``/``string`` features (they
    compare numeric distributions), or ``method: chi2`` on ``float`` features (it compares
    counts of categories).

    Best practice: ``psi`` or ``js`` for mixed features; ks/wasserstein for numeric ones;
    chi2 for categorical ones.
    """
    method = ctx.project.monitoring.drift.method
    for name, kind in drift_features(ctx):
        numeric = kind in ("float", "int")
        if (method in NUMERIC_ONLY_METHODS and not numeric and kind != "bool") or \
                (method in CATEGORICAL_METHODS and kind == "float"):
            yield Finding(("monitoring", "drift", "method"),
                          f"drift method {method} does not fit the {kind} feature '{name}'",
                          "use psi or js, which handle both numeric and categorical features")
            return


@rule("MLS254", "drift-threshold-unreachable", Severity.WARNING)
def drift_threshold_unreachable(ctx: Context) -> Iterator[Finding]:
    """The drift threshold is at or above the largest value the method can produce.

    Anti-pattern: ``method: ks, threshold: 1.5`` — the KS statistic and the Jensen–Shannon
    distance are at most 1, so drift is never reported.

    Best practice: a threshold in (0, 1) for ks and js, e.g. 0.1.
    """
    drift = ctx.project.monitoring.drift
    if drift.method in BOUNDED_METHODS and drift.threshold >= 1:
        yield Finding(("monitoring", "drift", "threshold"),
                      f"{drift.method} is at most 1; threshold {drift.threshold:g} never fires",
                      "use a threshold below 1, e.g. 0.1")


@rule("MLS255", "retrain-on-missing-performance", Severity.WARNING)
def retrain_on_missing_performance(ctx: Context) -> Iterator[Finding]:
    """alerts.retrain_on lists ``performance`` but no performance monitoring is set.

    Anti-pattern: ``retrain_on: [performance]`` without a ``monitoring.performance`` section: no
    performance alert exists to start retraining.

    Best practice: add ``monitoring.performance`` with a bound, or drop ``performance``.
    """
    monitoring = ctx.project.monitoring
    if "performance" in monitoring.alerts.retrain_on and monitoring.performance is None \
            and ctx.given(("monitoring", "alerts", "retrain_on")):
        index = monitoring.alerts.retrain_on.index("performance")
        yield Finding(("monitoring", "alerts", "retrain_on", index),
                      "retrain_on lists performance, but monitoring.performance is not set",
                      "add monitoring.performance: {metric: ..., min: ...}")
