"""The Grafana dashboard: traffic, latency, errors, predictions, drift per feature, performance
from feedback, and the versions being served.

Its panels read the same recording rules and selectors as the alerts (from
:mod:`~mlspec.compile.targets.monitoring.queries`), and draw the spec's thresholds as lines, so
what an operator sees is what the alerts test.

One dashboard, two files: ``grafana-dashboard.json`` (the JSON model, to import by hand or
provision from a file) and ``grafana-dashboard-configmap.yaml``, a ConfigMap holding the very
same text under ``<name>.json`` and labelled ``grafana_dashboard: "1"``, which Grafana's
dashboard sidecar (the Grafana Helm chart's and kube-prometheus-stack's) loads when it watches
the namespace.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from mlspec import contract
from mlspec.compile.targets.monitoring.queries import (
    k8s_labels,
    model_matcher,
    names_for,
    selector,
)
from mlspec.spec.models import Project

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
GRAFANA_SCHEMA_VERSION = 39
# The label (and value) the Grafana sidecar looks for on ConfigMaps by default.
SIDECAR_LABEL, SIDECAR_VALUE = "grafana_dashboard", "1"


class BlockText(str):
    """Text the YAML writer emits as a literal block (``|``), line for line, when it can."""


def _panel(
    panel_id: int,
    title: str,
    grid: tuple[int, int, int, int],
    targets: list[tuple[str, str]],
    unit: str,
    description: str,
    thresholds: list[tuple[float, str]] | None = None,
    kind: str = "timeseries",
) -> dict[str, Any]:
    """A Grafana panel; ``targets`` are (PromQL, legend) pairs, ``grid`` is (x, y, w, h)."""
    x, y, w, h = grid
    defaults: dict[str, Any] = {"unit": unit, "color": {"mode": "palette-classic"}}
    if thresholds:
        # Grafana treats the first step as the base (-Infinity) whatever its value.
        defaults["thresholds"] = {
            "mode": "absolute",
            "steps": [
                {"color": "green", "value": 0},
                *({"color": c, "value": v} for v, c in thresholds),
            ],
        }
        defaults["custom"] = {"thresholdsStyle": {"mode": "line"}}
    return {
        "id": panel_id,
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True}},
        "targets": [
            {
                "refId": chr(ord("A") + i),
                "expr": expr,
                "legendFormat": legend,
                "datasource": DATASOURCE,
            }
            for i, (expr, legend) in enumerate(targets)
        ],
    }


def dashboard(project: Project) -> dict[str, Any]:
    """A Grafana dashboard (JSON model): traffic, latency, errors, drift, performance."""
    mon = project.monitoring
    names = names_for(project)
    model = [model_matcher(project)]
    requests = selector(contract.REQUESTS_TOTAL, model)
    buckets = selector(contract.REQUEST_DURATION + "_bucket", model)
    window = "$__rate_interval"
    drift_selector = selector(contract.FEATURE_DRIFT, [*model, ("method", "=", mon.drift.method)])
    latency = [
        (f"histogram_quantile({q}, sum by (le) (rate({buckets}[{window}])))", f"p{label}")
        for q, label in ((0.5, "50"), (0.9, "90"), (0.99, "99"))
    ]
    panels = [
        _panel(
            1,
            "Requests per second",
            (0, 0, 12, 8),
            [(f"sum by (code) (rate({requests}[{window}]))", "{{code}}")],
            "reqps",
            "Inference requests by HTTP status code.",
        ),
        _panel(
            2,
            "Latency",
            (12, 0, 12, 8),
            latency,
            "s",
            "Request latency quantiles; the line is the p99 objective.",
            [(mon.service.latency_p99_ms / 1000, "red")],
        ),
        _panel(
            3,
            "Error ratio (5xx)",
            (0, 8, 12, 8),
            [(selector(names.error_ratio, model), "5xx / all")],
            "percentunit",
            "Share of requests answered with a 5xx.",
            [(mon.service.error_rate, "red")],
        ),
        _panel(
            4,
            "Predictions per second by class",
            (12, 8, 12, 8),
            [
                (
                    f"sum by (class) "
                    f"(rate({selector(contract.PREDICTIONS_TOTAL, model)}[{window}]))",
                    "{{class}}",
                )
            ],
            "short",
            "What the model predicts: a shift here often precedes drift.",
        ),
        _panel(
            5,
            f"Feature drift ({mon.drift.method})",
            (0, 16, 12, 8),
            [
                (
                    f"max by (feature) ({drift_selector})",
                    "{{feature}}",
                )
            ],
            "short",
            "Online drift of each input feature against the training data; the line is the "
            "alert threshold.",
            [(mon.drift.threshold, "red")],
        ),
    ]
    perf_targets = [
        (
            f"avg by (metric, version) ({selector(contract.MODEL_PERFORMANCE, model)})",
            "{{metric}} v{{version}}",
        )
    ]
    perf_thresholds = None
    if mon.performance is not None and mon.performance.min is not None:
        perf_thresholds = [(mon.performance.min, "green")]
    panels.append(
        _panel(
            6,
            "Model performance (from feedback)",
            (12, 16, 12, 8),
            perf_targets,
            "short",
            "Metrics computed from ground truth sent to /feedback.",
            perf_thresholds,
        )
    )
    panels.append(
        _panel(
            7,
            "Serving versions",
            (0, 24, 24, 4),
            [(f"max by (version) ({selector(contract.MODEL_INFO, model)})", "v{{version}}")],
            "short",
            "Model versions that servers report as loaded.",
            kind="stat",
        )
    )
    uid = "mlspec-" + hashlib.sha256(project.metadata.name.encode()).hexdigest()[:12]
    return {
        "uid": uid,
        "title": f"mlspec / {project.metadata.name}",
        "description": f"Serving, drift and performance of model {project.model_name}.",
        "tags": ["mlspec", "ml-model"],
        "editable": True,
        "schemaVersion": GRAFANA_SCHEMA_VERSION,
        "version": 1,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "30s",
        "timezone": "browser",
        "graphTooltip": 1,
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                }
            ]
        },
        "templating": {
            "list": [
                {
                    "type": "datasource",
                    "name": "datasource",
                    "label": "Prometheus",
                    "query": "prometheus",
                    "hide": 0,
                }
            ]
        },
        "panels": panels,
    }


def dashboard_json(project: Project) -> str:
    """The dashboard as written: sorted keys, two-space indent, UTF-8, one final newline."""
    return json.dumps(dashboard(project), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def dashboard_configmap(project: Project, text: str) -> dict[str, Any]:
    """A ConfigMap for Grafana's sidecar holding the dashboard ``text`` under ``<name>.json``."""
    name = project.metadata.name
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": f"{name}-dashboard",
            "namespace": project.namespace,
            "labels": {**k8s_labels(project), SIDECAR_LABEL: SIDECAR_VALUE},
        },
        "data": {f"{name}.json": BlockText(text)},
    }
