"""Submit the compiled pipeline to Kubeflow Pipelines with ``kfp.Client`` (the v2beta1 API).

The pipeline is uploaded under ``metadata.name`` (a new version when it already exists, named
after the spec's version and the IR's hash, so re-submitting the same IR reuses its version),
the experiment is found or created, and a run is created from that version.
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from mlspec.errors import UsageError

EXIT_OK, EXIT_FAILED = 0, 1
HEALTHZ = "/apis/v2beta1/healthz"
PROBE_TIMEOUT_S = 5.0


class SubmitError(Exception):
    """The KFP API could not be reached or refused a request (exit code 1)."""


def check_options(options) -> None:
    """KFP needs the API endpoint.

    Raises:
        UsageError: no ``--host``.
    """
    if not options.host:
        raise UsageError("--target kfp needs --host URL (the KFP API endpoint, e.g. "
                         "http://localhost:8080)")


def submit_spec(loaded, options) -> int:
    """The backend entry point of ``mlspec submit --target kfp`` (see mlspec.commands.submit)."""
    return submit_kfp(loaded, host=options.host, experiment=options.experiment,
                      namespace=options.namespace)


def submit_kfp(loaded, host: str, experiment: str | None = None,
               namespace: str | None = None) -> int:
    """Compile ``loaded``'s project for KFP and submit it to ``host``: returns the exit code."""
    from mlspec.commands.checked import render_checked
    from mlspec.compile.targets.kfp import OUTPUT_PATH

    project = loaded.project
    files = render_checked(loaded, "kfp")
    if files is None:
        return EXIT_FAILED
    (ir,) = [f.content for f in files if f.path == OUTPUT_PATH]
    host = host.rstrip("/")
    try:
        probe(host)
        result = upload_and_run(host, project, ir, experiment or project.metadata.name, namespace)
    except SubmitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(f"submitted {project.metadata.name}: pipeline {result['pipeline_id']} version "
          f"{result['version_name']} ({result['version_id']}), experiment "
          f"{result['experiment_id']}, run {result['run_id']}")
    print(f"run: {host}/#/runs/details/{result['run_id']}")
    return EXIT_OK


def probe(host: str) -> None:
    """Fail fast with one clear line when the API is unreachable or refuses us.

    ``kfp.Client`` would otherwise retry its health check five times, five seconds apart.
    """
    if not host.startswith(("http://", "https://")):
        raise SubmitError(f"--host must be an http:// or https:// URL, got {host!r}")
    try:
        with urllib.request.urlopen(host + HEALTHZ, timeout=PROBE_TIMEOUT_S) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        raise SubmitError(f"KFP at {host} refused the health check: HTTP {exc.code} "
                          f"{exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SubmitError(f"cannot reach KFP at {host}: {reason}") from None


def upload_and_run(host: str, project, ir: str, experiment: str,
                   namespace: str | None) -> dict[str, Any]:
    """Upload the IR (pipeline or new version), find or create the experiment, start a run.

    Raises:
        SubmitError: the API refused a request, with its status and message.
    """
    import warnings

    from kfp.client import Client
    from kfp_server_api.exceptions import ApiException

    name = project.metadata.name
    version_name = f"{name}-{project.metadata.version}-{_sha(ir)[:12]}"
    try:
        with warnings.catch_warnings(), tempfile.TemporaryDirectory(prefix="mlspec-") as tmp:
            warnings.simplefilter("ignore", FutureWarning)
            path = Path(tmp) / "pipeline.yaml"
            path.write_text(ir, encoding="utf-8")
            client = Client(host=host, namespace=namespace or "kubeflow")
            pipeline_id, version_id = _upload(client, str(path), name, version_name,
                                              project.metadata.description, namespace)
            exp = client.create_experiment(name=experiment, namespace=namespace)
            run = client.run_pipeline(experiment_id=exp.experiment_id,
                                      job_name=f"{name} {version_name}",
                                      pipeline_id=pipeline_id, version_id=version_id)
    except ApiException as exc:
        raise SubmitError(f"KFP at {host} refused the request: HTTP {exc.status} "
                          f"{_api_message(exc)}") from None
    except (OSError, ValueError) as exc:
        raise SubmitError(f"submitting to KFP at {host} failed: {exc}") from None
    return {"pipeline_id": pipeline_id, "version_id": version_id, "version_name": version_name,
            "experiment_id": exp.experiment_id, "run_id": run.run_id}


def _upload(client, path: str, name: str, version_name: str, description: str | None,
            namespace: str | None) -> tuple[str, str]:
    """(pipeline id, version id): a new pipeline, a new version, or the existing same version."""
    pipeline_id = client.get_pipeline_id(name)
    if pipeline_id is None:
        pipeline = client.upload_pipeline(path, pipeline_name=name, description=description,
                                          namespace=namespace)
        versions = client.list_pipeline_versions(pipeline.pipeline_id, page_size=1,
                                                 sort_by="created_at desc")
        return pipeline.pipeline_id, versions.pipeline_versions[0].pipeline_version_id
    existing = _find_version(client, pipeline_id, version_name)
    if existing is not None:
        return pipeline_id, existing
    version = client.upload_pipeline_version(path, pipeline_version_name=version_name,
                                             pipeline_id=pipeline_id, description=description)
    return pipeline_id, version.pipeline_version_id


def _find_version(client, pipeline_id: str, version_name: str) -> str | None:
    flt = json.dumps({"predicates": [{"operation": "EQUALS", "key": "display_name",
                                      "stringValue": version_name}]})
    result = client.list_pipeline_versions(pipeline_id, filter=flt, page_size=1)
    versions = result.pipeline_versions or []
    return versions[0].pipeline_version_id if versions else None


def _api_message(exc) -> str:
    """The server's error message (KFP returns JSON with ``message``), else the reason."""
    try:
        body = json.loads(exc.body or "")
        return str(body.get("message") or body.get("error") or exc.reason)
    except (ValueError, AttributeError, TypeError):
        return str(exc.reason)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
