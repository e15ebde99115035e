"""The Prometheus rules: recording rules, the alerts, and the rule groups that hold them.

``rules.yaml`` and the PrometheusRule carry the same groups (:func:`rule_groups`); the promtool
tests are built from the same :class:`AlertDef` list, so a rule and its tests cannot disagree.
Annotations are Go templates in Prometheus: they only ever interpolate ``$labels``/``$value`` and
numbers, never spec text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlspec import contract
from mlspec.compile.targets.monitoring.queries import (
    NO_TRAFFIC_FOR,
    NOT_READY_FOR,
    RATE_WINDOW,
    SERVICE_FOR,
    Names,
    drift_selector,
    duration_ms,
    format_duration,
    model_matcher,
    names_for,
    number,
    pending_for,
    perf_selector,
    selector,
)
from mlspec.spec.models import Project

RUNBOOK_BASE = "https://github.com/mlspec/mlspec/blob/main/docs/monitoring.md"

ALERT_DRIFT = "MLSpecFeatureDrift"
ALERT_PERFORMANCE = "MLSpecModelPerformanceDegraded"
ALERT_LATENCY = "MLSpecHighLatencyP99"
ALERT_ERRORS = "MLSpecHighErrorRate"
ALERT_NO_TRAFFIC = "MLSpecNoTraffic"
ALERT_NOT_READY = "MLSpecModelNotReady"
ALERT_BATCH_VIOLATIONS = "MLSpecBatchContractViolations"
ALERT_BATCH_DRIFT = "MLSpecBatchFeatureDrift"
# The batch's gauges hold the last batch's figures until the next one replaces them: a short
# pending period only rides out a scrape that saw half a push.
BATCH_FOR = "1m"
# Which alerts ``monitoring.alerts.retrain_on`` names.
RETRAIN_KINDS = {"drift": ALERT_DRIFT, "performance": ALERT_PERFORMANCE}
# The label the Prometheus Operator scopes an AlertmanagerConfig's route by (it adds a
# ``namespace="<the object's namespace>"`` matcher to the route's top level).
NAMESPACE_LABEL = "namespace"


@dataclass(frozen=True)
class AlertDef:
    """An alerting rule plus what its promtool tests need to know."""

    name: str
    expr: str
    pending: str
    summary: str
    description: str
    retrain: bool
    # The labels the expression's result carries (besides the rule's own labels).
    result_labels: tuple[str, ...] = field(default=())


def recording_rules(project: Project, names: Names) -> list[dict[str, str]]:
    """Recording rules the alerts and the dashboard read: one definition of each signal."""
    model = [model_matcher(project)]
    requests = selector(contract.REQUESTS_TOTAL, model)
    errors = selector(contract.REQUESTS_TOTAL, [*model, ("code", "=~", "5..")])
    buckets = selector(contract.REQUEST_DURATION + "_bucket", model)
    rules = [
        {
            "record": names.requests_rate,
            "expr": f"sum by (model) (rate({requests}[{RATE_WINDOW}]))",
        },
        # Zero (not absent) when there are requests but no 5xx series yet.
        {
            "record": names.error_ratio,
            "expr": (
                f"(sum by (model) (rate({errors}[{RATE_WINDOW}])) or "
                f"sum by (model) (rate({requests}[{RATE_WINDOW}])) * 0) / "
                f"sum by (model) (rate({requests}[{RATE_WINDOW}]))"
            ),
        },
        {
            "record": names.latency_p99,
            "expr": "histogram_quantile(0.99, sum by (model, le) "
            f"(rate({buckets}[{RATE_WINDOW}])))",
        },
        {
            "record": names.drift,
            "expr": (
                f"max by (model, version, feature, method) (avg_over_time("
                f"{drift_selector(project, contract.FEATURE_DRIFT)}[{names.drift_window}]))"
            ),
        },
    ]
    if project.monitoring.performance is not None:
        rules.append(
            {
                "record": names.performance,
                "expr": (
                    f"avg by (model, version, metric) (avg_over_time("
                    f"{perf_selector(project, contract.MODEL_PERFORMANCE)}[{names.perf_window}]))"
                ),
            }
        )
    return rules


def alert_defs(project: Project, names: Names) -> list[AlertDef]:
    """Every alert of the project, in a fixed order."""
    mon = project.monitoring
    retrain = set(mon.alerts.retrain_on) if project.triggers.on_alert else set()
    model = [model_matcher(project)]
    drift = mon.drift
    alerts = [
        AlertDef(
            name=ALERT_DRIFT,
            expr=f"{drift_selector(project, names.drift)} > {number(drift.threshold)}",
            pending=pending_for(drift.window),
            summary="Input drift on feature {{ $labels.feature }} of model {{ $labels.model }}",
            description=(
                f"The {drift.method} drift of feature {{{{ $labels.feature }}}} (model "
                f"{{{{ $labels.model }}}} version {{{{ $labels.version }}}}) averaged over "
                f"{format_duration(duration_ms(drift.window))} is "
                f'{{{{ $value | printf "%.3f" }}}}, above the threshold '
                f"{number(drift.threshold)}."
            ),
            retrain="drift" in retrain,
            result_labels=("feature", "method", "model", "version"),
        )
    ]
    perf = mon.performance
    if perf is not None and (perf.min is not None or perf.max is not None):
        performance = perf_selector(project, names.performance)
        # A lower-is-better metric (rmse, log_loss...) degrades upwards.
        parts, bounds = [], []
        if perf.min is not None:
            parts.append(f"{performance} < {number(perf.min)}")
            bounds.append(f"under its minimum {number(perf.min)}")
        if perf.max is not None:
            parts.append(f"{performance} > {number(perf.max)}")
            bounds.append(f"over its maximum {number(perf.max)}")
        alerts.append(
            AlertDef(
                name=ALERT_PERFORMANCE,
                expr=" or ".join(parts),
                pending=pending_for(perf.window),
                summary="Model {{ $labels.model }} {{ $labels.metric }} degraded",
                description=(
                    f"{{{{ $labels.metric }}}} of model {{{{ $labels.model }}}} version "
                    f"{{{{ $labels.version }}}} from ground-truth feedback averaged over "
                    f"{format_duration(duration_ms(perf.window))} is "
                    f'{{{{ $value | printf "%.3f" }}}}, {" and ".join(bounds)}.'
                ),
                retrain="performance" in retrain,
                result_labels=("metric", "model", "version"),
            )
        )
    service = mon.service
    info = selector(contract.MODEL_INFO, model)
    alerts += [
        AlertDef(
            name=ALERT_LATENCY,
            expr=(
                f"{selector(names.latency_p99, model)} > {number(service.latency_p99_ms / 1000)}"
            ),
            pending=SERVICE_FOR,
            summary="Model {{ $labels.model }} answers slowly",
            description=(
                f"The 99th percentile of request latency of model {{{{ $labels.model }}}} "
                f"over {RATE_WINDOW} is above {number(service.latency_p99_ms)} ms."
            ),
            retrain=False,
            result_labels=("model",),
        ),
        AlertDef(
            name=ALERT_ERRORS,
            expr=f"{selector(names.error_ratio, model)} > {number(service.error_rate)}",
            pending=SERVICE_FOR,
            summary="Model {{ $labels.model }} fails requests",
            description=(
                f"More than {number(service.error_rate * 100)}% of the requests to model "
                f"{{{{ $labels.model }}}} got a 5xx answer over {RATE_WINDOW}."
            ),
            retrain=False,
            result_labels=("model",),
        ),
        AlertDef(
            name=ALERT_NO_TRAFFIC,
            # Up but idle: the request rate is zero, or the server never counted a request.
            expr=(
                f"{selector(names.requests_rate, model)} == 0 or on (model) "
                f"(max by (model) ({info}) unless on (model) "
                f"sum by (model) ({selector(contract.REQUESTS_TOTAL, model)}))"
            ),
            pending=NO_TRAFFIC_FOR,
            summary="Model {{ $labels.model }} gets no traffic",
            description=(
                f"Model {{{{ $labels.model }}}} is up but received no request for {NO_TRAFFIC_FOR}."
            ),
            retrain=False,
            result_labels=("model",),
        ),
        AlertDef(
            name=ALERT_NOT_READY,
            expr=f"absent({info}) or max by (model) ({info}) < 1",
            pending=NOT_READY_FOR,
            summary="Model {{ $labels.model }} is not ready",
            description=(
                "No ready server reports model {{ $labels.model }} "
                f"({contract.MODEL_INFO} is absent or 0) for {NOT_READY_FOR}."
            ),
            retrain=False,
            result_labels=("model",),
        ),
    ]
    return alerts + batch_alert_defs(project, {str(kind) for kind in retrain})


def batch_alert_defs(project: Project, retrain: set[str]) -> list[AlertDef]:
    """With a ``batch`` section: the last batch broke the contract too often, or drifted.

    The figures come from the batch report step through a Pushgateway (``mlspec.contract``'s
    ``BATCH_*``). A chi-square gauge is the p-value (drift when it is small); the others are
    statistics (drift when they are large), as the batch report judges them.
    """
    if project.batch is None:
        return []
    model = [model_matcher(project)]
    rows = selector(contract.BATCH_ROWS, model)
    broken = selector(contract.BATCH_ROWS, [*model, ("outcome", "=", contract.VIOLATION)])
    limit = project.batch.max_violation_fraction
    threshold = number(project.monitoring.drift.threshold)
    by = "model, version, feature, method"
    statistic = selector(contract.BATCH_FEATURE_DRIFT, [*model, ("method", "!=", "chi2")])
    p_value = selector(contract.BATCH_FEATURE_DRIFT, [*model, ("method", "=", "chi2")])
    return [
        AlertDef(
            name=ALERT_BATCH_VIOLATIONS,
            expr=(f"sum by (model, version) ({broken}) / sum by (model, version) ({rows}) "
                  f"> {number(limit)}"),
            pending=BATCH_FOR,
            summary="Batch scoring of model {{ $labels.model }} set many rows aside",
            description=(
                "In the last batch scored with model {{ $labels.model }} version "
                '{{ $labels.version }}, a share of {{ $value | printf "%.3f" }} of the rows '
                f"broke the data contract, above batch.max_violation_fraction {number(limit)}."
            ),
            retrain=False,
            result_labels=("model", "version"),
        ),
        AlertDef(
            name=ALERT_BATCH_DRIFT,
            expr=(f"max by ({by}) ({statistic}) > {threshold} or "
                  f"min by ({by}) ({p_value}) < {threshold}"),
            pending=BATCH_FOR,
            summary="Batch input drift on feature {{ $labels.feature }} of model "
                    "{{ $labels.model }}",
            description=(
                "The {{ $labels.method }} drift of feature {{ $labels.feature }} in the last "
                "batch scored with model {{ $labels.model }} version {{ $labels.version }} is "
                f'{{{{ $value | printf "%.3f" }}}} (threshold {threshold}).'
            ),
            retrain="drift" in retrain,
            result_labels=("feature", "method", "model", "version"),
        ),
    ]


def rule_labels(project: Project, alert: AlertDef) -> dict[str, str]:
    """Labels an alert carries: severity, the project, its namespace, and the retraining
    route's label.

    ``namespace`` is set on the rule because the expressions aggregate it away (``max by
    (model, ...)``): without it no alert would match the namespace matcher the Prometheus
    Operator adds to the AlertmanagerConfig's route. It is the namespace the PrometheusRule is
    applied to, the value a Prometheus with ``enforcedNamespaceLabel: namespace`` would set too.
    """
    labels = {
        "severity": project.monitoring.alerts.severity,
        contract.PROJECT_LABEL: project.metadata.name,
        NAMESPACE_LABEL: project.namespace,
    }
    if alert.retrain:
        labels[contract.RETRAIN_LABEL] = "true"
    return labels


def runbook_url(alert_name: str) -> str:
    return f"{RUNBOOK_BASE}#{alert_name.lower()}"


def alerting_rule(project: Project, alert: AlertDef) -> dict[str, Any]:
    return {
        "alert": alert.name,
        "expr": alert.expr,
        "for": alert.pending,
        "labels": rule_labels(project, alert),
        "annotations": {
            "summary": alert.summary,
            "description": alert.description,
            "runbook_url": runbook_url(alert.name),
        },
    }


def rule_groups(project: Project) -> list[dict[str, Any]]:
    """The rule groups shared by rules.yaml and the PrometheusRule."""
    names = names_for(project)
    return [
        {
            "name": f"mlspec.{project.metadata.name}.recording",
            "rules": recording_rules(project, names),
        },
        {
            "name": f"mlspec.{project.metadata.name}.alerts",
            "rules": [alerting_rule(project, a) for a in alert_defs(project, names)],
        },
    ]
