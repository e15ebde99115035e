"""Shadow, A/B and blue-green traffic on a cluster: the router objects the deploy applied.

Each is the executor's ``Traffic`` for one strategy (``strategies.py``), changing only the
router the plan names, with merge patches guarded by ``resourceVersion`` (a 409 is recomputed
on the fresh object, ``mlspec.runtime.kube``). JSON merge patch replaces lists whole, so each
patch is computed from the object as read.

* shadow — the Istio VirtualService on the stable predictor's host: ``mirrorPercentage`` is the
  share copied to the shadow InferenceService, whose server holds the stable version as well and
  compares the two answers (``mlspec.compile.kserve``). Promotion serves the candidate from the
  stable InferenceService (its model pinned to the candidate: a new revision) and stops the
  mirror.
* ab — the InferenceGraph Splitter's two weights.
* blue-green — the VirtualService's two weights; green's readiness is its InferenceService's
  ``Ready`` condition, the smoke inference goes to green's predictor Service.

A rollback server-side applies each router as it was before the deploy; a router the deploy
created is set to send nothing to the candidate (the candidate's InferenceService keeps running
with no traffic: the deployer's Role has no ``delete``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

from mlspec.runtime.kube import KubeError
from mlspec.runtime.rollout.executor import RolloutError, call_json, smoke_predictions

ISVC = "InferenceService"
SMOKE_TIMEOUT_S = 30.0


class _Router:
    """What the three strategies share: the router object, its state before, restoring it."""

    kind = ""

    def __init__(self, kube, namespace: str, plan: Mapping[str, Any],
                 record: Mapping[str, Any], bundle: Mapping[str, Any]) -> None:
        self.kube, self.namespace = kube, namespace
        self.name = plan["router"]["name"]
        self.stable, self.candidate = plan["services"]["stable"], plan["services"]["candidate"]
        self.model = plan["model"]
        self.versions_ = (str(record.get("stable_version")), str(record["candidate_version"]))
        previous = {(o["kind"], o["name"]): o.get("previous") for o in record.get("objects", [])}
        self.previous = previous.get((self.kind, self.name))
        self.bundle = bundle

    def get(self, kind: str, name: str) -> dict[str, Any]:
        try:
            obj = self.kube.get(kind, self.namespace, name)
        except KubeError as exc:
            raise RolloutError(str(exc)) from None
        if obj is None:
            raise RolloutError(f"{kind.lower()}/{name} does not exist in namespace "
                               f"{self.namespace!r}: deploy it first")
        return obj

    def patch(self, change: Callable[[dict[str, Any]], dict[str, Any]], what: str) -> None:
        try:
            self.kube.patch(self.kind, self.namespace, self.name, change)
        except KubeError as exc:
            raise RolloutError(f"{what} on {self.kind.lower()}/{self.name}: {exc}") from None

    def versions(self) -> tuple[str, str]:
        return self.versions_

    def restore(self, state: Mapping[str, Any]) -> None:
        del state  # read after the deploy; what comes back is what was there before it
        if self.previous is None:
            self.no_candidate()
            return
        try:
            self.kube.apply(self.namespace, copy.deepcopy(dict(self.previous)))
        except KubeError as exc:
            raise RolloutError(f"restoring {self.kind.lower()}/{self.name}: {exc}") from None

    def no_candidate(self) -> None:
        raise NotImplementedError


def _http(obj: Mapping[str, Any]) -> list[dict[str, Any]]:
    http = copy.deepcopy(obj.get("spec", {}).get("http") or [])
    if not http:
        raise RolloutError(f"virtualservice/{obj['metadata']['name']} has no http route")
    return http


class ShadowRoute(_Router):
    kind = "VirtualService"

    def state(self) -> dict[str, Any]:
        first = _http(self.get(self.kind, self.name))[0]
        return {"router": self.name, "mirror_percent": (first.get("mirrorPercentage") or {})
                .get("value", 0.0 if "mirror" not in first else 100.0),
                "route": [d["destination"]["host"] for d in first.get("route", [])]}

    def set_mirror(self, percent: int) -> None:
        def change(current: dict[str, Any]) -> dict[str, Any]:
            http = _http(current)
            http[0]["mirrorPercentage"] = {"value": float(percent)}
            return {"spec": {"http": http}}
        self.patch(change, f"mirroring {percent}%")

    def no_candidate(self) -> None:
        self.set_mirror(0)

    def promote(self) -> None:
        """The stable InferenceService serves the candidate's version; the mirror stops."""
        from mlspec.runtime.rollout.deploy import pin

        (template,) = [o for o in self.bundle["objects"]
                       if o["kind"] == ISVC and o["metadata"]["name"] == self.stable]
        candidate = self.versions_[1]
        (pinned,) = pin([template], self.model, candidate, candidate)
        try:
            self.kube.apply(self.namespace, pinned)
        except KubeError as exc:
            raise RolloutError(f"serving version {candidate} from inferenceservice/"
                               f"{self.stable}: {exc}") from None
        self.set_mirror(0)


class GraphSplit(_Router):
    kind = "InferenceGraph"

    def state(self) -> dict[str, Any]:
        steps = self._steps(self.get(self.kind, self.name))
        return {"router": self.name, "weights": {s["serviceName"]: s.get("weight")
                                                 for s in steps}}

    def _steps(self, obj: Mapping[str, Any]) -> list[dict[str, Any]]:
        steps = copy.deepcopy(obj.get("spec", {}).get("nodes", {}).get("root", {})
                              .get("steps") or [])
        names = {s.get("serviceName") for s in steps}
        if names != {self.stable, self.candidate}:
            raise RolloutError(f"inferencegraph/{self.name} splits between {sorted(names)}, "
                               f"not {self.stable} and {self.candidate}")
        return steps

    def set_percent(self, percent: int) -> None:
        def change(current: dict[str, Any]) -> dict[str, Any]:
            steps = self._steps(current)
            for step in steps:
                step["weight"] = percent if step["serviceName"] == self.candidate \
                    else 100 - percent
            return {"spec": {"nodes": {"root": {"steps": steps}}}}
        self.patch(change, f"splitting {percent}% to the candidate")

    def no_candidate(self) -> None:
        self.set_percent(0)


class BlueGreenRoute(_Router):
    kind = "VirtualService"

    def __init__(self, *args: Any, predictor_url: str | None = None,
                 sample: Callable[[], dict] | None = None) -> None:
        super().__init__(*args)
        self.predictor_url = predictor_url or (
            f"http://{self.candidate}-predictor.{self.namespace}.svc.cluster.local")
        self.sample = sample

    def state(self) -> dict[str, Any]:
        return {"router": self.name, "weights": self._weights(self.get(self.kind, self.name))}

    def _weights(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        return {d["destination"]["host"]: d.get("weight") for d in _http(obj)[0].get("route", [])}

    def set_percent(self, percent: int) -> None:
        def change(current: dict[str, Any]) -> dict[str, Any]:
            http = _http(current)
            for destination in http[0].get("route", []):
                green = destination["destination"]["host"].startswith(f"{self.candidate}-")
                destination["weight"] = percent if green else 100 - percent
            return {"spec": {"http": http}}
        self.patch(change, f"sending {percent}% to {self.candidate}")

    def no_candidate(self) -> None:
        self.set_percent(0)

    def wait_ready(self, timeout_s: float, sleep: Callable[[float], None],
                   clock: Callable[[], float]) -> None:
        """Until green's InferenceService has condition ``Ready`` = ``True``."""
        deadline = clock() + timeout_s
        while True:
            obj = self.get(ISVC, self.candidate)
            conditions = (obj.get("status") or {}).get("conditions") or []
            ready = [c for c in conditions if c.get("type") == "Ready"]
            if ready and ready[0].get("status") == "True":
                return
            if clock() >= deadline:
                said = ready[0].get("message") or ready[0].get("reason") if ready else None
                raise RolloutError(f"inferenceservice/{self.candidate} is not Ready after "
                                   f"{timeout_s:g} s" + (f": {said}" if said else ""))
            sleep(5.0)

    def smoke(self) -> str:
        """One inference of plausible rows to green's predictor, before any client sees it."""
        if self.sample is None:
            raise RolloutError("no sample request to smoke-test green with")
        url = f"{self.predictor_url.rstrip('/')}/v2/models/{self.model}/infer"
        return smoke_predictions(call_json("POST", url, self.sample(), SMOKE_TIMEOUT_S,
                                           what=f"the smoke inference to {url}"))


ROUTERS: dict[str, type[_Router]] = {
    "shadow": ShadowRoute, "ab": GraphSplit, "blue-green": BlueGreenRoute,
}
