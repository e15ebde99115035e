"""The Prometheus Operator objects (``monitoring.coreos.com/v1``): the PrometheusRule that loads
the rule groups, and the ServiceMonitor that scrapes the model servers.

Both are Kubernetes objects of the project's namespace and carry the same standard labels; the
plain ``rules.yaml`` holds the same groups for a Prometheus without the Operator.
"""

from __future__ import annotations

from typing import Any

from mlspec import contract
from mlspec.compile.context import RenderContext
from mlspec.compile.targets.monitoring.queries import k8s_labels
from mlspec.compile.targets.monitoring.rules import rule_groups
from mlspec.spec.models import Project


def prometheus_rule(project: Project) -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": f"{project.metadata.name}-mlspec",
            "namespace": project.namespace,
            "labels": k8s_labels(project),
        },
        "spec": {"groups": rule_groups(project)},
    }


def service_monitor(project: Project, ctx: RenderContext) -> dict[str, Any]:
    """Scrapes every Service KServe makes for the rollout's InferenceServices.

    Shadow, A/B and blue-green write more than one InferenceService (``NAME-shadow``,
    ``NAME-green``, ...); an ``In`` selector over all of them keeps every model version scraped.
    """
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {
            "name": f"{project.metadata.name}-predictor",
            "namespace": project.namespace,
            "labels": k8s_labels(project),
        },
        "spec": {
            "namespaceSelector": {"matchNames": [project.namespace]},
            "selector": {
                "matchExpressions": [{
                    "key": "serving.kserve.io/inferenceservice",
                    "operator": "In",
                    "values": sorted(ctx.inference_services),
                }]
            },
            "endpoints": [
                {
                    # The predictor container's port (the runtime server), behind KServe's Service.
                    "targetPort": contract.SERVER_PORT,
                    "path": contract.METRICS_PATH,
                    "scheme": "http",
                    "interval": "15s",
                }
            ],
        },
    }
