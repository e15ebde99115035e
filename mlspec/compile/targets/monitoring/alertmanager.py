"""The retraining route, twice: ``alertmanager.yaml`` (a plain Alertmanager config) and
``alertmanagerconfig.yaml`` (a ``monitoring.coreos.com/v1alpha1`` AlertmanagerConfig).

Both send the alerts that ``rules.rule_labels`` marks for retraining to the retraining trigger,
from one :class:`RetrainRoute`, so they cannot disagree:

- the plain config is complete (a default receiver plus one sub-route), so ``amtool
  check-config`` checks the file as written; it is for an Alertmanager without the Operator, and
  is not a Kubernetes object (``kustomization.yaml`` leaves it out);
- the AlertmanagerConfig is what ``kubectl apply -k`` gives a Prometheus Operator cluster: the
  Operator merges its route into the Alertmanager's config as a first-level route (``continue``
  forced to true, receiver names prefixed with ``<namespace>/<object name>/``) and scopes it to
  the object's namespace by a ``namespace="<namespace>"`` matcher. The route writes that matcher
  itself, so it means the same under every ``alertmanagerConfigMatcherStrategy``; the alerts
  carry the label because ``rules.rule_labels`` sets it.

There is no AlertmanagerConfig when nothing retrains (``triggers.on_alert`` false or
``monitoring.alerts.retrain_on`` empty): it would route nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlspec import contract
from mlspec.compile.context import RenderContext
from mlspec.compile.promql import promql_string
from mlspec.compile.targets.monitoring.queries import k8s_labels
from mlspec.compile.targets.monitoring.rules import NAMESPACE_LABEL
from mlspec.spec.models import Project

ALERTMANAGER_CONFIG_API = "monitoring.coreos.com/v1alpha1"


@dataclass(frozen=True)
class RetrainRoute:
    """The route to the retraining trigger: what it matches, how it groups, where it posts."""

    receiver: str
    matchers: tuple[tuple[str, str], ...]  # (label, value), each an equality matcher
    group_by: tuple[str, ...]
    group_wait: str
    group_interval: str
    repeat_interval: str
    url: str


def retrain_route(project: Project, ctx: RenderContext) -> RetrainRoute | None:
    """The retraining route of ``project``, or None when no alert retrains."""
    if not (project.triggers.on_alert and project.monitoring.alerts.retrain_on):
        return None
    name = project.metadata.name
    return RetrainRoute(
        receiver=f"mlspec-retrain-{name}",
        matchers=((contract.RETRAIN_LABEL, "true"), (contract.PROJECT_LABEL, name)),
        # One retraining per project, whatever fired: group every retraining alert together.
        group_by=(contract.PROJECT_LABEL,),
        group_wait="30s",
        group_interval="5m",
        repeat_interval="12h",
        url=ctx.retrain_webhook_url,
    )


def alertmanager_config(project: Project, ctx: RenderContext) -> dict[str, Any]:
    """A complete Alertmanager config whose one sub-route sends retraining alerts to the trigger."""
    config: dict[str, Any] = {
        "route": {
            "receiver": "default",
            "group_by": ["alertname", contract.PROJECT_LABEL],
            "routes": [],
        },
        "receivers": [{"name": "default"}],
    }
    route = retrain_route(project, ctx)
    if route is not None:
        config["route"]["routes"].append(
            {
                "receiver": route.receiver,
                "matchers": [f"{label}={promql_string(value)}" for label, value in route.matchers],
                "group_by": list(route.group_by),
                "group_wait": route.group_wait,
                "group_interval": route.group_interval,
                "repeat_interval": route.repeat_interval,
            }
        )
        config["receivers"].append(
            {
                "name": route.receiver,
                "webhook_configs": [{"url": route.url, "send_resolved": False}],
            }
        )
    return config


def alertmanager_config_object(project: Project, ctx: RenderContext) -> dict[str, Any] | None:
    """The AlertmanagerConfig (v1alpha1) holding the retraining route, or None without one."""
    route = retrain_route(project, ctx)
    if route is None:
        return None
    matchers = [*route.matchers, (NAMESPACE_LABEL, project.namespace)]
    return {
        "apiVersion": ALERTMANAGER_CONFIG_API,
        "kind": "AlertmanagerConfig",
        "metadata": {
            "name": f"{project.metadata.name}-retrain",
            "namespace": project.namespace,
            "labels": k8s_labels(project),
        },
        "spec": {
            "route": {
                "receiver": route.receiver,
                "matchers": [{"name": label, "value": value, "matchType": "="}
                             for label, value in matchers],
                "groupBy": list(route.group_by),
                "groupWait": route.group_wait,
                "groupInterval": route.group_interval,
                "repeatInterval": route.repeat_interval,
            },
            "receivers": [
                {
                    "name": route.receiver,
                    "webhookConfigs": [{"url": route.url, "sendResolved": False}],
                }
            ],
        },
    }
