"""The Alertmanager config (``alertmanager.yaml``): the route that sends retraining alerts to
the retraining trigger.

A complete config (a default receiver plus one sub-route), so ``amtool check-config`` checks the
file as written; the sub-route matches the labels that ``rules.rule_labels`` puts on the alerts
``monitoring.alerts.retrain_on`` names.
"""

from __future__ import annotations

from typing import Any

from mlspec import contract
from mlspec.compile.context import RenderContext
from mlspec.compile.promql import promql_string
from mlspec.spec.models import Project


def alertmanager_config(project: Project, ctx: RenderContext) -> dict[str, Any]:
    """A complete Alertmanager config whose one sub-route sends retraining alerts to the trigger."""
    name = project.metadata.name
    receiver = f"mlspec-retrain-{name}"
    config: dict[str, Any] = {
        "route": {
            "receiver": "default",
            "group_by": ["alertname", contract.PROJECT_LABEL],
            "routes": [],
        },
        "receivers": [{"name": "default"}],
    }
    if project.triggers.on_alert and project.monitoring.alerts.retrain_on:
        config["route"]["routes"].append(
            {
                "receiver": receiver,
                "matchers": [
                    f"{contract.RETRAIN_LABEL}={promql_string('true')}",
                    f"{contract.PROJECT_LABEL}={promql_string(name)}",
                ],
                # One retraining per project, whatever fired: group every retraining alert together.
                "group_by": [contract.PROJECT_LABEL],
                "group_wait": "30s",
                "group_interval": "5m",
                "repeat_interval": "12h",
            }
        )
        config["receivers"].append(
            {
                "name": receiver,
                "webhook_configs": [{"url": ctx.retrain_webhook_url, "send_resolved": False}],
            }
        )
    return config
