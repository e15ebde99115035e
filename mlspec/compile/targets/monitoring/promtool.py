"""The promtool unit tests (``rules.test.yaml``): synthetic series that make every alert fire,
and series that must not make it fire.

Built from the same :func:`~mlspec.compile.targets.monitoring.rules.alert_defs` as the rules, so
``promtool test rules`` proves each generated alert, its labels and its expanded annotations
against the thresholds of the spec, not against a hand-written copy of them.
"""

from __future__ import annotations

import re
from typing import Any

from mlspec import contract
from mlspec.compile.targets.monitoring.queries import (
    drift_features,
    duration_ms,
    names_for,
    number,
    selector,
)
from mlspec.compile.targets.monitoring.rules import (
    ALERT_BATCH_DRIFT,
    ALERT_BATCH_VIOLATIONS,
    ALERT_DRIFT,
    ALERT_ERRORS,
    ALERT_LATENCY,
    ALERT_NO_TRAFFIC,
    ALERT_NOT_READY,
    ALERT_PERFORMANCE,
    AlertDef,
    alert_defs,
    rule_labels,
    runbook_url,
)
from mlspec.spec.models import Project

# Synthetic series are sampled and rules evaluated every TEST_STEP; a test evaluates an alert
# after its ``for`` has passed by two steps.
TEST_STEP_S = 10
TEST_VERSION = "1"


def series(metric: str, labels: dict[str, str]) -> str:
    """A promtool input series, ``metric{a="x",...}``, with every value escaped."""
    return selector(metric, [(k, "=", v) for k, v in sorted(labels.items())])


def _eval_seconds(alert: AlertDef) -> int:
    pending_s = duration_ms(alert.pending) // 1000
    steps = -(-pending_s // TEST_STEP_S) + 2
    return steps * TEST_STEP_S


def _samples(alert: AlertDef) -> int:
    return _eval_seconds(alert) // TEST_STEP_S + 2


def _constant(value: float, count: int) -> str:
    return f"{number(value)}x{count}"


def _counter(per_step: int, count: int) -> str:
    return f"0+{per_step}x{count}"


# The only template forms the rules' annotations use; anything else left after removing them
# (spec text above all) is a bug, which expand() and the target's tests check.
TEMPLATE_PART = re.compile(r"\{\{ \$labels\.([a-z_]+) \}\}|\{\{ \$value \| printf \"%\.3f\" \}\}")


def expand(template: str, labels: dict[str, str], value: float | None) -> str:
    """Expand the only template forms the rules use, as Prometheus will (for exp_annotations)."""

    def one(match: re.Match[str]) -> str:
        if match.group(1):
            return labels.get(match.group(1), "")
        assert value is not None, "an annotation that shows $value needs an expected value"
        return f"{value:.3f}"

    assert "{{" not in TEMPLATE_PART.sub("", template), f"unknown template form in {template!r}"
    return TEMPLATE_PART.sub(one, template)


def _expected(
    project: Project, alert: AlertDef, labels: dict[str, str], value: float | None = None
) -> dict[str, Any]:
    """One expected firing alert: its labels and its expanded annotations."""
    all_labels = {**labels, **rule_labels(project, alert)}
    return {
        "exp_labels": all_labels,
        "exp_annotations": {
            "summary": expand(alert.summary, all_labels, value),
            "description": expand(alert.description, all_labels, value),
            "runbook_url": runbook_url(alert.name),
        },
    }


def _case(
    alert: AlertDef, name: str, input_series: list[dict[str, str]], expected: list[dict[str, Any]]
) -> dict[str, Any]:
    """One promtool test; a firing case also checks the alert is not firing before its ``for``."""
    checks: list[dict[str, Any]] = []
    pending_s = duration_ms(alert.pending) // 1000
    if expected and pending_s > 0:
        last_pending = (pending_s - 1) // TEST_STEP_S * TEST_STEP_S
        checks.append({"eval_time": f"{last_pending}s", "alertname": alert.name, "exp_alerts": []})
    checks.append(
        {"eval_time": f"{_eval_seconds(alert)}s", "alertname": alert.name, "exp_alerts": expected}
    )
    return {
        "name": f"{alert.name}: {name}",
        "interval": f"{TEST_STEP_S}s",
        "input_series": input_series,
        "alert_rule_test": checks,
    }


def _above(threshold: float) -> float:
    """A round value clearly above ``threshold``."""
    return round(threshold + max(abs(threshold), 0.1), 3)


def _below(threshold: float) -> float:
    """A round value clearly below ``threshold``."""
    return round(threshold - max(abs(threshold), 0.1), 3)


def _drift_cases(project: Project, alert: AlertDef) -> list[dict[str, Any]]:
    drift = project.monitoring.drift
    watched = drift_features(project) or ["any_feature"]
    n = _samples(alert)
    high, low = _above(drift.threshold), drift.threshold / 2

    def one(feature: str, value: float, model: str | None = None, method: str | None = None):
        labels = {
            "model": model or project.model_name,
            "version": TEST_VERSION,
            "feature": feature,
            "method": method or drift.method,
        }
        return {"series": series(contract.FEATURE_DRIFT, labels), "values": _constant(value, n)}

    cases = []
    for feature in watched:  # each watched feature, drifted alone, fires for itself only
        inputs = [one(f, high if f == feature else low) for f in watched]
        labels = {
            "model": project.model_name,
            "version": TEST_VERSION,
            "feature": feature,
            "method": drift.method,
        }
        cases.append(
            _case(
                alert,
                f"feature {feature!r} drifted",
                inputs,
                [_expected(project, alert, labels, high)],
            )
        )
    # Under the threshold, another model's drift, or another method's: no alert.
    quiet = [one(f, low) for f in watched]
    quiet.append(one(watched[0], high, model=project.model_name + "-other"))
    other_method = "ks" if drift.method != "ks" else "psi"
    quiet.append(one(watched[0], high, method=other_method))
    unwatched = sorted(set(project.data.features) - set(watched))
    if unwatched:  # a feature the spec does not watch
        quiet.append(one(unwatched[0], high))
    cases.append(_case(alert, "no feature over the threshold", quiet, []))
    return cases


def _performance_cases(project: Project, alert: AlertDef) -> list[dict[str, Any]]:
    perf = project.monitoring.performance
    assert perf is not None
    n = _samples(alert)
    labels = {"model": project.model_name, "version": TEST_VERSION, "metric": perf.metric}
    bad = _below(perf.min) if perf.min is not None else _above(perf.max)  # type: ignore[arg-type]
    if perf.min is not None and perf.max is not None:
        good = (perf.min + perf.max) / 2
    elif perf.min is not None:
        good = _above(perf.min)
    else:
        good = _below(perf.max)  # type: ignore[arg-type]
    metric = contract.MODEL_PERFORMANCE
    return [
        _case(
            alert,
            f"{perf.metric} degraded to {number(bad)}",
            [{"series": series(metric, labels), "values": _constant(bad, n)}],
            [_expected(project, alert, labels, bad)],
        ),
        _case(
            alert,
            f"{perf.metric} healthy at {number(good)}",
            [{"series": series(metric, labels), "values": _constant(good, n)}],
            [],
        ),
    ]


def _histogram(project: Project, count: int, slow_from: float) -> list[dict[str, str]]:
    """Bucket series where every request takes longer than ``slow_from`` seconds (and less than
    the next bucket bound)."""
    out = []
    bounds: list[float | str] = [*contract.DURATION_BUCKETS, "+Inf"]
    for le in bounds:
        labels = {
            "model": project.model_name,
            "version": TEST_VERSION,
            "le": le if isinstance(le, str) else number(le),
        }
        fast = not isinstance(le, str) and le <= slow_from
        out.append(
            {
                "series": series(contract.REQUEST_DURATION + "_bucket", labels),
                "values": _constant(0, count) if fast else _counter(10, count),
            }
        )
    return out


def _latency_cases(project: Project, alert: AlertDef) -> list[dict[str, Any]]:
    threshold_s = project.monitoring.service.latency_p99_ms / 1000
    n = _samples(alert)
    model = {"model": project.model_name}
    cases = []
    # Slow: every request lands in a bucket whose lower bound is at or above the threshold.
    lower_bounds = [b for b in contract.DURATION_BUCKETS[:-1] if b >= threshold_s]
    if lower_bounds:
        cases.append(
            _case(
                alert,
                "p99 above the threshold",
                _histogram(project, n, lower_bounds[0]),
                [_expected(project, alert, model)],
            )
        )
    if contract.DURATION_BUCKETS[0] < threshold_s:  # fast: everything in the first bucket
        cases.append(_case(alert, "p99 under the threshold", _histogram(project, n, 0.0), []))
    return cases


def _requests(project: Project, code: str, values: str) -> dict[str, str]:
    labels = {"model": project.model_name, "version": TEST_VERSION, "code": code}
    return {"series": series(contract.REQUESTS_TOTAL, labels), "values": values}


def _error_cases(project: Project, alert: AlertDef) -> list[dict[str, Any]]:
    rate = project.monitoring.service.error_rate
    n = _samples(alert)
    model = {"model": project.model_name}
    cases = []
    if rate < 1:
        failing = [_requests(project, "500", _counter(10, n))]
        if rate < 0.5:
            failing.append(_requests(project, "200", _counter(10, n)))
        cases.append(
            _case(
                alert, "5xx ratio above the threshold", failing, [_expected(project, alert, model)]
            )
        )
    healthy = [
        _requests(project, "200", _counter(10, n)),
        _requests(project, "400", _counter(5, n)),
    ]
    cases.append(_case(alert, "only 2xx and 4xx", healthy, []))
    return cases


def _info(project: Project, value: float, count: int, model: str | None = None) -> dict[str, str]:
    labels = {"model": model or project.model_name, "version": TEST_VERSION}
    return {"series": series(contract.MODEL_INFO, labels), "values": _constant(value, count)}


def _no_traffic_cases(project: Project, alert: AlertDef) -> list[dict[str, Any]]:
    n = _samples(alert)
    model = {"model": project.model_name}
    return [
        _case(
            alert,
            "up, counter flat",
            [_info(project, 1, n), _requests(project, "200", f"100x{n}")],
            [_expected(project, alert, model)],
        ),
        _case(
            alert,
            "up, never counted a request",
            [_info(project, 1, n)],
            [_expected(project, alert, model)],
        ),
        _case(
            alert,
            "serving traffic",
            [_info(project, 1, n), _requests(project, "200", _counter(10, n))],
            [],
        ),
    ]


def _not_ready_cases(project: Project, alert: AlertDef) -> list[dict[str, Any]]:
    n = _samples(alert)
    model = {"model": project.model_name}
    return [
        _case(
            alert,
            "no server reports the model",
            [_info(project, 1, n, model=project.model_name + "-other")],
            [_expected(project, alert, model)],
        ),
        _case(alert, "model info is 0", [_info(project, 0, n)], [_expected(project, alert, model)]),
        _case(alert, "model loaded", [_info(project, 1, n)], []),
    ]


def _batch_rows(project: Project, scored: int, broken: int, n: int) -> list[dict[str, str]]:
    base = {"model": project.model_name, "version": TEST_VERSION,
            "job": contract.BATCH_JOB, contract.PROJECT_LABEL: project.metadata.name}
    return [{"series": series(contract.BATCH_ROWS, {**base, "outcome": outcome}),
             "values": _constant(value, n)}
            for outcome, value in ((contract.SCORED, scored), (contract.VIOLATION, broken))]


def _batch_violation_cases(project: Project, alert: AlertDef) -> list[dict[str, Any]]:
    assert project.batch is not None
    n, limit = _samples(alert), project.batch.max_violation_fraction
    labels = {"model": project.model_name, "version": TEST_VERSION}
    total = 10_000
    # Broken shares clearly above and below the limit (never below 0 or above 1).
    high = min(limit + max(limit, 0.01), 1.0)
    broken_high, broken_low = round(total * high), int(total * limit / 2)
    cases = []
    if broken_high / total > limit:
        cases.append(_case(alert, "too many rows broke the contract",
                           _batch_rows(project, total - broken_high, broken_high, n),
                           [_expected(project, alert, labels, broken_high / total)]))
    cases.append(_case(alert, "few rows broke the contract",
                       _batch_rows(project, total - broken_low, broken_low, n), []))
    return cases


def _batch_drift_cases(project: Project, alert: AlertDef) -> list[dict[str, Any]]:
    n, threshold = _samples(alert), project.monitoring.drift.threshold
    base = {"model": project.model_name, "version": TEST_VERSION, "job": contract.BATCH_JOB,
            contract.PROJECT_LABEL: project.metadata.name}

    def gauge(feature: str, method: str, value: float) -> dict[str, str]:
        labels = {**base, "feature": feature, "method": method}
        return {"series": series(contract.BATCH_FEATURE_DRIFT, labels),
                "values": _constant(value, n)}

    def fired(feature: str, method: str, value: float) -> dict[str, Any]:
        return _expected(project, alert, {"model": project.model_name, "version": TEST_VERSION,
                                          "feature": feature, "method": method}, value)

    high, low = _above(threshold), threshold / 2
    return [
        _case(alert, "a statistic above the threshold",
              [gauge("f1", "psi", high), gauge("f2", "psi", low)], [fired("f1", "psi", high)]),
        _case(alert, "a chi-square p-value below the threshold",
              [gauge("f1", "chi2", low), gauge("f2", "chi2", high)],
              [fired("f1", "chi2", low)]),
        _case(alert, "no drift", [gauge("f1", "psi", low), gauge("f2", "chi2", high)], []),
    ]


_CASES = {
    ALERT_BATCH_VIOLATIONS: _batch_violation_cases,
    ALERT_BATCH_DRIFT: _batch_drift_cases,
    ALERT_DRIFT: _drift_cases,
    ALERT_PERFORMANCE: _performance_cases,
    ALERT_LATENCY: _latency_cases,
    ALERT_ERRORS: _error_cases,
    ALERT_NO_TRAFFIC: _no_traffic_cases,
    ALERT_NOT_READY: _not_ready_cases,
}


def rule_tests(project: Project) -> dict[str, Any]:
    """A promtool test file (``promtool test rules``) for ``rules.yaml`` beside it."""
    tests = []
    for alert in alert_defs(project, names_for(project)):
        tests += _CASES[alert.name](project, alert)
    return {"rule_files": ["rules.yaml"], "evaluation_interval": f"{TEST_STEP_S}s", "tests": tests}
