"""The canary's traffic on a cluster: KServe's ``canaryTrafficPercent`` on the InferenceService.

KServe (serverless mode, the targeted 0.15+ releases; docs/serving.md) sends
``spec.predictor.canaryTrafficPercent`` percent of the traffic to the latest ready revision (the
one the deploy just created with the candidate's pinned model) and the rest to the previous
rolled-out revision. Each step of the plan is a merge patch of that one field, guarded by the
object's ``resourceVersion`` (a concurrent writer makes the API answer 409; the patch is
recomputed on the fresh object). The 0.20 ``spec.canary`` list is not used: the field is what
every KServe release since 0.6 honours.

A rollback first patches the share to 0 (every request back on the previous revision at once),
then server-side applies the object exactly as it was before the deploy, so the served model,
its annotations and its canary setting are the champion's again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlspec import contract
from mlspec.runtime.kube import KubeError
from mlspec.runtime.rollout.executor import RolloutError

KIND = "InferenceService"


class KServeTraffic:
    """The executor's ``Traffic`` for one InferenceService (see the module)."""

    def __init__(self, kube, namespace: str, name: str,
                 previous: Mapping[str, Any] | None) -> None:
        self.kube, self.namespace, self.name = kube, namespace, name
        self.previous = previous

    def state(self) -> dict[str, Any]:
        try:
            obj = self.kube.get(KIND, self.namespace, self.name)
        except KubeError as exc:
            raise RolloutError(str(exc)) from None
        if obj is None:
            raise RolloutError(f"inferenceservice/{self.name} does not exist in namespace "
                               f"{self.namespace!r}: deploy it first")
        predictor = obj.get("spec", {}).get("predictor", {})
        annotations = obj.get("metadata", {}).get("annotations") or {}
        return {"inference_service": self.name,
                "canary_traffic_percent": predictor.get("canaryTrafficPercent"),
                "model_uri": annotations.get(contract.MODEL_URI_ANNOTATION)}

    def set_percent(self, percent: int) -> None:
        self._patch(percent)

    def restore(self, state: Mapping[str, Any]) -> None:
        """Back to before the deploy (``state``, read after it, is kept in the report)."""
        del state
        self._patch(0)
        if self.previous is None:
            raise RolloutError(f"inferenceservice/{self.name} did not exist before this deploy: "
                               "there is no earlier model to restore; it stays at 0% canary "
                               "with no previous revision")
        try:
            self.kube.apply(self.namespace, dict(self.previous))
        except KubeError as exc:
            raise RolloutError(f"restoring inferenceservice/{self.name}: {exc}") from None

    def _patch(self, percent: int) -> None:
        try:
            self.kube.patch(KIND, self.namespace, self.name, lambda current: {
                "spec": {"predictor": {"canaryTrafficPercent": percent}}})
        except KubeError as exc:
            raise RolloutError(f"setting inferenceservice/{self.name} to {percent}%: "
                               f"{exc}") from None
