"""A rollout's outcome in the registry: tags on the version, and the champion alias on success.

Every rollout leaves tags on the candidate's model version: ``mlspec.rollout.outcome``
(``promoted`` / ``rolled_back``), ``mlspec.rollout.reason``, ``mlspec.rollout.strategy`` and,
per gate of each step that was judged, ``mlspec.rollout.step<N>.<gate>`` = ``pass|fail <value>``.
Only a ``promoted`` rollout moves the alias (``validation.baseline.alias``, e.g. ``production``)
to the version; a rolled-back one never touches an alias.
"""

from __future__ import annotations

from typing import Any

from mlspec.runtime.errors import StepError, first_line
from mlspec.runtime.rollout.executor import PROMOTED

TAG_PREFIX = "mlspec.rollout."
_TAG_VALUE_LIMIT = 5000  # MLflow's limit on a tag value is 5000 characters


def rollout_tags(report: dict[str, Any]) -> dict[str, str]:
    """The registry tags that record ``report`` (see the module)."""
    tags = {f"{TAG_PREFIX}outcome": report["outcome"],
            f"{TAG_PREFIX}reason": report.get("reason", "")[:_TAG_VALUE_LIMIT],
            f"{TAG_PREFIX}strategy": report["strategy"]}
    for step in report["steps"]:
        for gate in step["gates"]:
            verdict = "pass" if gate["passed"] else "fail"
            tags[f"{TAG_PREFIX}step{step['step']}.{gate['name']}"] = f"{verdict} {gate['value']}"
    return tags


def record(report: dict[str, Any], tracking_uri: str, model: str, version: str,
           alias: str | None) -> None:
    """Tag the version with the report; on ``promoted`` move ``alias`` to it.

    Raises:
        StepError: the registry cannot be reached or has no such version.
    """
    from mlflow import MlflowClient

    from mlspec.runtime.registry import point_mlflow_at

    point_mlflow_at(tracking_uri)
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    try:
        client.get_model_version(model, version)
        for key, value in rollout_tags(report).items():
            client.set_model_version_tag(model, version, key, value)
        if report["outcome"] == PROMOTED and alias:
            client.set_registered_model_alias(model, alias, version)
    except Exception as exc:  # noqa: BLE001 - MLflow raises many types; all mean this
        raise StepError(f"cannot record the rollout of {model} version {version}: "
                        f"{first_line(exc)}") from None
