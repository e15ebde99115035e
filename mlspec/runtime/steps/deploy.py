"""The ``deploy`` step: serve the version the pipeline just registered, pinned.

``python -m mlspec.runtime deploy --spec SPEC --in registration=PATH --bundle deploy.json
--out deployment=PATH``. The candidate is the registration's version; the stable version (for
strategies with a second InferenceService) is the one ``stableAlias`` names in the registry now.
The objects are pinned and server-side applied (``mlspec.runtime.rollout.deploy``); the
deployment record, with every object's state before, is what the ``rollout`` step reads.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mlspec import contract
from mlspec.runtime.errors import StepError, first_line
from mlspec.runtime.io import read_json_object, write_json
from mlspec.runtime.rollout import deploy as deploying
from mlspec.runtime.spec import load_project


def run_deploy(spec, in_registration: str, bundle_path: str, out_deployment: str,
               kube=None, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Deploy the registered version; returns the deployment record (also written)."""
    from mlspec.runtime.kube import Kube, KubeError

    project = load_project(spec)
    registration = read_json_object(in_registration, "registration")
    if not str(registration.get("version") or "").isdigit():
        raise StepError(f"registration {in_registration} names no registry version")
    bundle = deploying.read_bundle(bundle_path)
    if bundle["model"] != project.model_name:
        raise StepError(f"the deploy bundle is for model {bundle['model']!r}, the spec registers "
                        f"{project.model_name!r}")
    candidate = str(registration["version"])
    stable = None
    if any((o.get("metadata", {}).get("annotations") or {}).get(contract.MODEL_ROLE_ANNOTATION)
           == contract.STABLE_ROLE for o in bundle["objects"]):
        stable = stable_version(project.registry.tracking_uri, project.model_name,
                                bundle.get("stableAlias", "production"))
    try:
        kube = kube if kube is not None else Kube()
    except KubeError as exc:
        raise StepError(str(exc)) from None
    record = deploying.deploy(bundle, kube, candidate, stable, log=log)
    write_json(record, out_deployment)
    return record


def stable_version(tracking_uri: str, model: str, alias: str) -> str | None:
    """The version ``alias`` names now, or None when the alias is not set."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from mlspec.runtime.registry import point_mlflow_at

    point_mlflow_at(tracking_uri)
    try:
        found = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri) \
            .get_model_version_by_alias(model, alias)
    except MlflowException as exc:
        if "RESOURCE_DOES_NOT_EXIST" in str(getattr(exc, "error_code", "")) \
                or "not found" in str(exc).lower():
            return None
        raise StepError(f"cannot read alias {alias!r} of {model}: {first_line(exc)}") from None
    return str(found.version)
