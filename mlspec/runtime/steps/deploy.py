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
from mlspec.runtime.errors import StepError
from mlspec.runtime.io import read_json_object, write_json
from mlspec.runtime.rollout import deploy as deploying
from mlspec.runtime.spec import load_project


def run_deploy(spec, in_registration: str, bundle_path: str, out_deployment: str,
               kube=None, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Deploy the version the registration names; returns the deployment record."""
    registration = read_json_object(in_registration, "registration")
    if not str(registration.get("version") or "").isdigit():
        raise StepError(f"registration {in_registration} names no registry version")
    return deploy_version(spec, str(registration["version"]), bundle_path, out_deployment,
                          kube=kube, log=log)


def deploy_version(spec, version: str, bundle_path: str, out_deployment: str, kube=None,
                   log: Callable[[str], None] = print) -> dict[str, Any]:
    """Pin ``version`` (and the stable alias's version, where a server needs it) into the
    bundle's objects and apply them; writes and returns the deployment record."""
    from mlspec.runtime.kube import Kube, KubeError
    from mlspec.runtime.registry import version_by_alias

    project = load_project(spec)
    bundle = deploying.read_bundle(bundle_path)
    if bundle["model"] != project.model_name:
        raise StepError(f"the deploy bundle is for model {bundle['model']!r}, the spec registers "
                        f"{project.model_name!r}")
    stable = None
    if any((o.get("metadata", {}).get("annotations") or {}).get(contract.MODEL_ROLE_ANNOTATION)
           == contract.STABLE_ROLE for o in bundle["objects"]):
        stable = version_by_alias(project.registry.tracking_uri, project.model_name,
                                  bundle.get("stableAlias", "production"))
    try:
        kube = kube if kube is not None else Kube()
    except KubeError as exc:
        raise StepError(str(exc)) from None
    record = deploying.deploy(bundle, kube, version, stable, log=log)
    write_json(record, out_deployment)
    return record
