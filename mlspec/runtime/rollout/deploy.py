"""Deploy: pin registry versions into the compiled serving objects and apply them.

The bundle (``mlspec.compile.kserve.deploy_bundle``, shipped in the pipeline: Tekton's spec
ConfigMap, KFP's ``deploy_bundle`` parameter) holds the strategy's objects as compiled: each
InferenceService names ``models:/NAME/unpinned`` and says by ``mlspec.dev/model-role`` whether
it serves the candidate (the version just registered) or the stable model (the version the
baseline alias names now). :func:`pin` writes those versions into the server's argv and the
model-uri annotation, and nothing else; :func:`deploy` server-side applies the pinned objects and
keeps what each object was before, which a rollback restores.

What is served is therefore always a pinned ``models:/NAME/VERSION``: an alias that moves later
changes no running server.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from mlspec import contract
from mlspec.runtime.errors import StepError

BUNDLE_VERSION = 1
# Fields the API server owns; a restored object leaves them out.
_SERVER_FIELDS = ("resourceVersion", "uid", "creationTimestamp", "generation", "managedFields",
                  "selfLink")


def read_bundle(path: str) -> dict[str, Any]:
    """The deploy bundle at ``path`` (JSON).

    Raises:
        StepError: unreadable, or not a bundle this runtime understands.
    """
    try:
        bundle = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StepError(f"cannot read the deploy bundle {path}: {exc}") from None
    if not isinstance(bundle, dict) or bundle.get("version") != BUNDLE_VERSION:
        raise StepError(f"{path} is not a version-{BUNDLE_VERSION} deploy bundle (compile "
                        "the spec with this mlspec version)")
    for key in ("model", "namespace", "strategy", "objects"):
        if key not in bundle:
            raise StepError(f"the deploy bundle {path} has no {key!r}")
    return bundle


def pinned_uri(model: str, version: str) -> str:
    return f"models:/{model}/{version}"


def pin(objects: list[dict[str, Any]], model: str, candidate: str,
        stable: str | None) -> list[dict[str, Any]]:
    """Copies of ``objects`` with every InferenceService's model version written in.

    Raises:
        StepError: an InferenceService that is not a template of ``model``, or a stable one
            when there is no stable version to pin.
    """
    template = pinned_uri(model, contract.UNPINNED_VERSION)
    out = []
    for obj in objects:
        obj = copy.deepcopy(obj)
        if obj.get("kind") == "InferenceService":
            name = obj["metadata"]["name"]
            annotations = obj["metadata"].setdefault("annotations", {})
            role = annotations.get(contract.MODEL_ROLE_ANNOTATION)
            version = {contract.CANDIDATE_ROLE: candidate, contract.STABLE_ROLE: stable}.get(role)
            if version is None:
                raise StepError(f"inferenceservice/{name}: role {role!r} has no version to serve"
                                + (" (nothing is at the stable alias yet: deploy a first "
                                   "version with the canary strategy)"
                                   if role == contract.STABLE_ROLE else ""))
            _pin_server(obj, template, pinned_uri(model, version))
            _pin_compared(obj, pinned_uri(model, contract.UNPINNED_STABLE_VERSION), model,
                          stable)
            annotations[contract.MODEL_URI_ANNOTATION] = pinned_uri(model, version)
        out.append(obj)
    return out


def pin_service(obj: dict[str, Any], version: str) -> dict[str, Any]:
    """One compiled InferenceService with ``version`` written in, whatever its role (``mlspec
    serve --manifest --model-version``); the model is the one its template names."""
    uri = (obj.get("metadata", {}).get("annotations") or {}).get(contract.MODEL_URI_ANNOTATION)
    suffix = f"/{contract.UNPINNED_VERSION}"
    if not isinstance(uri, str) or not uri.startswith("models:/") or not uri.endswith(suffix):
        raise StepError(f"inferenceservice/{obj.get('metadata', {}).get('name')} is not a deploy "
                        "template (its model is already pinned)")
    model = uri.removeprefix("models:/").removesuffix(suffix)
    return pin([obj], model, version, version)[0]


def _pin_server(obj: dict[str, Any], template: str, uri: str) -> None:
    """Replace the template URI in the predictor's ``serve`` argv (exactly one occurrence)."""
    name = obj["metadata"]["name"]
    containers = obj.get("spec", {}).get("predictor", {}).get("containers") or []
    hits = [(c, i) for c in containers for i, arg in enumerate(c.get("args") or [])
            if arg == template]
    if len(hits) != 1:
        raise StepError(f"inferenceservice/{name} is not a deploy template: expected its server "
                        f"to name {template} once, found it {len(hits)} times")
    container, index = hits[0]
    container["args"][index] = uri


def _pin_compared(obj: dict[str, Any], template: str, model: str, stable: str | None) -> None:
    """The shadow's server also holds the stable version it compares the candidate with."""
    for container in obj.get("spec", {}).get("predictor", {}).get("containers") or []:
        args = container.get("args") or []
        for index, arg in enumerate(args):
            if arg == template:
                if stable is None:
                    raise StepError(f"inferenceservice/{obj['metadata']['name']} compares the "
                                    "candidate with the stable version, and nothing is at the "
                                    "stable alias yet")
                args[index] = pinned_uri(model, stable)


def restorable(obj: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """``obj`` as read from the API, without status and server-owned metadata (what to
    apply to put it back)."""
    if obj is None:
        return None
    out = {k: copy.deepcopy(v) for k, v in obj.items() if k != "status"}
    meta = out.get("metadata", {})
    for key in _SERVER_FIELDS:
        meta.pop(key, None)
    return out


def deploy(bundle: Mapping[str, Any], kube, candidate: str, stable: str | None,
           log: Callable[[str], None] = print) -> dict[str, Any]:
    """Apply the bundle's objects with the versions pinned; returns the deployment record:
    what was applied and, per object, what it was before (``None``: it did not exist).

    Raises:
        StepError: an object that cannot be pinned or applied (objects applied before it stay
            as applied; the record of them is in the error's message).
    """
    from mlspec.runtime.kube import KubeError

    namespace = bundle["namespace"]
    objects = pin(list(bundle["objects"]), bundle["model"], candidate, stable)
    applied: list[dict[str, Any]] = []
    for obj in objects:
        kind, name = obj["kind"], obj["metadata"]["name"]
        try:
            previous = kube.get(kind, namespace, name)
            kube.apply(namespace, obj)
        except KubeError as exc:
            done = ", ".join(f"{a['kind'].lower()}/{a['name']}" for a in applied) or "nothing"
            raise StepError(f"deploying {kind.lower()}/{name}: {exc} (applied before it: "
                            f"{done})") from None
        action = "created" if previous is None else "configured"
        log(f"deploy: {kind.lower()}/{name} {action}")
        applied.append({"kind": kind, "name": name, "action": action,
                        "previous": restorable(previous)})
    return {"model": bundle["model"], "namespace": namespace, "strategy": bundle["strategy"],
            "candidate_version": candidate, "stable_version": stable,
            "model_uri": pinned_uri(bundle["model"], candidate), "objects": applied}
