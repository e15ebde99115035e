"""Submit the compiled Tekton pipeline with the official ``kubernetes`` client.

What is sent is exactly what ``mlspec compile`` writes (``mlspec.compile.targets.tekton.render``):

1. the spec ConfigMap (always: the run reads its spec from it; its name is its content hash and
   it is immutable, so one that exists already is the same and is left alone);
2. with ``--apply-definitions``: the runner ServiceAccount, the Tasks and the Pipeline, each
   created, or replaced (GET for the ``resourceVersion``, then PUT) when it exists; without it,
   the Pipeline must already be there (a clear error otherwise);
3. the PipelineRun (``generateName``): its name, assigned by the API server, is printed.

Triggers, the CronJob and RBAC are cluster set-up for ``kubectl apply -k``, not part of a submit.
Credentials come from the kubeconfig (``KUBECONFIG`` honoured, read when the command runs) or,
without one, from the in-cluster service account.
"""

from __future__ import annotations

import sys
from typing import Any

from mlspec.errors import UsageError

EXIT_OK, EXIT_FAILED = 0, 1


class SubmitError(Exception):
    """The Kubernetes API could not be reached or refused a request (exit code 1)."""


# The kinds a submit sends (where the API serves them: mlspec.runtime.kube.KINDS).
SUBMITTED_KINDS = ("ConfigMap", "ServiceAccount", "Task", "Pipeline", "PipelineRun")
# Applied with --apply-definitions, in this order (Tasks before the Pipeline that uses them).
DEFINITIONS = ("ServiceAccount", "Task", "Pipeline")


def check_options(options) -> None:
    """Tekton needs no option beyond the spec (the kubeconfig says where the cluster is)."""


def submit_spec(loaded, options) -> int:
    """The backend entry point of ``mlspec submit --target tekton`` (see
    mlspec.commands.submit)."""
    return submit_tekton(loaded, namespace=options.namespace,
                         apply_definitions=options.apply_definitions)


def submit_tekton(loaded, namespace: str | None = None, apply_definitions: bool = False) -> int:
    """Render ``loaded``'s project for Tekton and start a PipelineRun: returns the exit code.

    Args:
        loaded: a valid ``mlspec.spec.loader.LoadedSpec``.
        namespace: where to submit; default: the spec's ``namespace``.
        apply_definitions: create or replace the Tasks, Pipeline and runner ServiceAccount first.

    Raises:
        UsageError: no kubeconfig and not running in a cluster.
    """
    from mlspec.commands.checked import render_checked

    project = loaded.project
    files = render_checked(loaded, "tekton")
    if files is None:
        return EXIT_FAILED
    namespace = namespace or project.namespace
    objects = objects_of([f.content for f in training_files(files)], namespace)
    api = KubeApi(_api_client())
    try:
        name = submit(api, objects, namespace, apply_definitions)
    except SubmitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        api.close()
    print(name)
    return EXIT_OK


def training_files(files: list) -> list:
    """The training pipeline's files: with a batch section the render also holds the batch
    pipeline's (``tekton/batch-*.yaml``), which its schedule or a ``kubectl create -f`` starts."""
    from mlspec.compile.targets.tekton import BATCH_PREFIX, OUT_DIR

    return [f for f in files if not f.path.startswith(f"{OUT_DIR}/{BATCH_PREFIX}")]


def objects_of(contents: list[str], namespace: str) -> dict[str, list[dict[str, Any]]]:
    """The rendered documents of the kinds a submit sends, by kind, placed in ``namespace``."""
    import yaml

    from mlspec.runtime.kube import KINDS

    out: dict[str, list[dict[str, Any]]] = {kind: [] for kind in SUBMITTED_KINDS}
    for content in contents:
        for doc in yaml.safe_load_all(content):
            if (doc and doc.get("kind") in out
                    and doc["apiVersion"] == KINDS[doc["kind"]].api_version):
                doc["metadata"]["namespace"] = namespace
                out[doc["kind"]].append(doc)
    return out


def submit(api: KubeApi, objects: dict[str, list[dict[str, Any]]], namespace: str,
           apply_definitions: bool) -> str:
    """Send the objects in order; returns the PipelineRun's name.

    Raises:
        SubmitError: a request was refused or the API could not be reached.
    """
    (run,) = objects["PipelineRun"]
    pipeline_name = run["spec"]["pipelineRef"]["name"]
    for configmap in objects["ConfigMap"]:
        if api.get("ConfigMap", namespace, configmap["metadata"]["name"]) is None:
            api.create("ConfigMap", namespace, configmap)
    if apply_definitions:
        runner = run["spec"]["taskRunTemplate"]["serviceAccountName"]
        for kind in DEFINITIONS:
            # Of the service accounts, only the one the run uses (the listener's is set-up).
            for obj in (o for o in objects[kind]
                        if kind != "ServiceAccount" or o["metadata"]["name"] == runner):
                action = api.apply(kind, namespace, obj)
                print(f"{kind.lower()}/{obj['metadata']['name']} {action}", file=sys.stderr)
    elif api.get("Pipeline", namespace, pipeline_name) is None:
        raise SubmitError(f"pipeline {pipeline_name!r} does not exist in namespace "
                          f"{namespace!r}; run with --apply-definitions, or apply the compiled "
                          "tekton/ folder first")
    created = api.create("PipelineRun", namespace, run)
    return created["metadata"]["name"]


def _api_client():
    """An ``ApiClient`` from the kubeconfig, else in-cluster config (``mlspec.runtime.kube``)."""
    from mlspec.runtime.kube import KubeError, api_client

    try:
        return api_client()
    except KubeError as exc:
        raise UsageError(str(exc)) from None


class KubeApi:
    """The few calls a submit makes (``mlspec.runtime.kube``), each failure a ``SubmitError``."""

    def __init__(self, api_client) -> None:
        from mlspec.runtime.kube import Kube

        self._kube = Kube(api_client)
        self.host = self._kube.host

    def close(self) -> None:
        self._kube.close()

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        return self._guarded(lambda: self._kube.get(kind, namespace, name))

    def create(self, kind: str, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._guarded(lambda: self._kube.create(namespace, body))

    def apply(self, kind: str, namespace: str, body: dict[str, Any]) -> str:
        """Create ``body``, or replace the existing object with it; returns what was done."""
        from mlspec.runtime.kube import Conflict

        name = body["metadata"]["name"]
        for _ in range(3):  # a concurrent writer can win a round; then read and try again
            current = self.get(kind, namespace, name)
            try:
                if current is None:
                    self._guarded(lambda: self._kube.create(namespace, body), Conflict)
                    return "created"
                version = current["metadata"].get("resourceVersion")
                replacement = {**body, "metadata": {**body["metadata"],
                                                    "resourceVersion": version}}
                self._guarded(lambda r=replacement: self._kube.replace(namespace, r), Conflict)
                return "configured"
            except Conflict:
                continue
        raise SubmitError(f"{kind.lower()}/{name} kept changing while it was being applied; "
                          "try again")

    @staticmethod
    def _guarded(call, passing: type[Exception] | None = None):
        from mlspec.runtime.kube import KubeError

        try:
            return call()
        except KubeError as exc:
            if passing is not None and isinstance(exc, passing):
                raise
            raise SubmitError(str(exc)) from None