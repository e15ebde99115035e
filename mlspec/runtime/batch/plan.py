"""``plan``: pin the model version and list the partitions, once for the whole batch.

Every score task reads this plan, so all of them score with the same registry version even if
the alias moves while the batch runs, and write under the same batch id.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from mlspec.runtime.batch.locations import join, list_partitions
from mlspec.runtime.errors import StepError
from mlspec.runtime.io import read_json_object, write_json, write_text
from mlspec.runtime.spec import load_project

PLAN_VERSION = 1


def run_plan(spec, out_plan: str, out_partitions: str | None = None) -> dict[str, Any]:
    """Write the batch plan (JSON) and, as a value, the partition indices to fan out over."""
    project = load_project(spec)
    batch = require_batch(project)
    version = resolve_version(project)
    partitions = list_partitions(batch.input)
    profile = _reference_profile(project, f"models:/{project.model_name}/{version}")
    batch_id = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + f"-v{version}-" + \
        uuid.uuid4().hex[:6]
    plan = {
        "version": PLAN_VERSION,
        "batch_id": batch_id,
        "model": {"name": project.model_name, "version": version,
                  "uri": f"models:/{project.model_name}/{version}",
                  "ref": project.batch_model_ref},
        "input": batch.input,
        "output": join(batch.output, batch_id),
        "chunk_rows": batch.chunk_rows,
        "partitions": [{"index": i, "uri": uri} for i, uri in enumerate(partitions)],
        # The training data's profile: what every partition's drift is measured against.
        "profile": profile,
    }
    write_json(plan, out_plan)
    if out_partitions:
        write_text(json.dumps([str(i) for i in range(len(partitions))]), out_partitions)
    return plan


def _reference_profile(project, uri: str) -> dict[str, Any]:
    import shutil
    import tempfile

    from mlspec.runtime.batch.model import download_model, read_profile

    folder = tempfile.mkdtemp(prefix="mlspec-plan-model-")
    try:
        return read_profile(download_model(project, uri, folder))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def require_batch(project):
    if project.batch is None:
        raise StepError("the spec has no batch section (batch.input, batch.output)")
    return project.batch


def resolve_version(project) -> str:
    """The registry version ``batch.model`` names now (a version number is checked to exist).

    Raises:
        StepError: no such alias or version, or the registry cannot be reached.
    """
    from mlspec.runtime.registry import client, version_by_alias, with_retries

    ref, name, uri = project.batch_model_ref, project.model_name, project.registry.tracking_uri
    if isinstance(ref, int):
        try:
            with_retries(lambda: client(uri).get_model_version(name, str(ref)))
        except Exception:  # noqa: BLE001 - MLflow raises many types for "no such version"
            raise StepError(f"model {name} has no version {ref} in {uri}") from None
        return str(ref)
    version = version_by_alias(uri, name, ref)
    if version is None:
        raise StepError(f"no version of model {name} has the alias {ref!r} in {uri} (set "
                        "batch.model to an alias or version that exists)")
    return version


def read_plan(path: str) -> dict[str, Any]:
    plan = read_json_object(path, "batch plan")
    if plan.get("version") != PLAN_VERSION or not isinstance(plan.get("partitions"), list):
        raise StepError(f"{path} is not a batch plan written by this mlspec version")
    return plan
