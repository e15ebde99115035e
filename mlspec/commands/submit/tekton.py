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

import json
import os
import sys
from dataclasses import dataclass
from typing import Any

from mlspec.errors import UsageError

EXIT_OK, EXIT_FAILED = 0, 1
REQUEST_TIMEOUT_S = 30


class SubmitError(Exception):
    """The Kubernetes API could not be reached or refused a request (exit code 1)."""


@dataclass(frozen=True)
class Kind:
    """Where the API serves a kind: core (``group`` empty) or a custom resource."""

    group: str
    version: str
    plural: str

    @property
    def api(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


KINDS = {
    "ConfigMap": Kind("", "v1", "configmaps"),
    "ServiceAccount": Kind("", "v1", "serviceaccounts"),
    "Task": Kind("tekton.dev", "v1", "tasks"),
    "Pipeline": Kind("tekton.dev", "v1", "pipelines"),
    "PipelineRun": Kind("tekton.dev", "v1", "pipelineruns"),
}
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
    objects = objects_of([f.content for f in files], namespace)
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


def objects_of(contents: list[str], namespace: str) -> dict[str, list[dict[str, Any]]]:
    """The rendered documents of the kinds a submit sends, by kind, placed in ``namespace``."""
    import yaml

    out: dict[str, list[dict[str, Any]]] = {kind: [] for kind in KINDS}
    for content in contents:
        for doc in yaml.safe_load_all(content):
            if doc and doc.get("kind") in KINDS and doc["apiVersion"] == KINDS[doc["kind"]].api:
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
    """An ``ApiClient`` from the kubeconfig (``KUBECONFIG`` read now), else in-cluster config."""
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    kubeconfig = os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
    paths = [p for p in kubeconfig.split(os.pathsep) if p]
    if any(os.path.exists(p) for p in paths):
        try:
            return config.new_client_from_config(config_file=kubeconfig)
        except (ConfigException, OSError, ValueError, TypeError) as exc:
            raise UsageError(f"cannot use kubeconfig {kubeconfig}: {exc}") from None
    try:
        configuration = client.Configuration()
        config.load_incluster_config(client_configuration=configuration)
    except ConfigException:
        raise UsageError("no Kubernetes credentials: no kubeconfig at "
                         f"{kubeconfig} (set KUBECONFIG) and not running in a cluster") from None
    return client.ApiClient(configuration)


class KubeApi:
    """The few calls a submit makes, with every failure turned into one clear ``SubmitError``."""

    def __init__(self, api_client) -> None:
        from kubernetes import client

        self._client = api_client
        self._core = client.CoreV1Api(api_client)
        self._custom = client.CustomObjectsApi(api_client)
        self.host = api_client.configuration.host

    def close(self) -> None:
        self._client.close()

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        try:
            return self._call("get", kind, namespace, name=name)
        except _NotFound:
            return None

    def create(self, kind: str, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._call("create", kind, namespace, body=body)

    def apply(self, kind: str, namespace: str, body: dict[str, Any]) -> str:
        """Create ``body``, or replace the existing object with it; returns what was done."""
        name = body["metadata"]["name"]
        for _ in range(3):  # a concurrent writer can win a round; then read and try again
            current = self.get(kind, namespace, name)
            try:
                if current is None:
                    self.create(kind, namespace, body)
                    return "created"
                version = current["metadata"].get("resourceVersion")
                replacement = {**body, "metadata": {**body["metadata"],
                                                    "resourceVersion": version}}
                self._call("replace", kind, namespace, name=name, body=replacement)
                return "configured"
            except _Conflict:
                continue
        raise SubmitError(f"{kind.lower()}/{name} kept changing while it was being applied; "
                          "try again")

    def _call(self, verb: str, kind: str, namespace: str, name: str | None = None,
              body: dict[str, Any] | None = None) -> dict[str, Any]:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        spec = KINDS[kind]
        try:
            result = self._invoke(verb, spec, namespace, name, body)
        except ApiException as exc:
            raise _refusal(exc, verb, kind, namespace,
                           name or (body or {}).get("metadata", {}).get("name")) from None
        except (HTTPError, OSError) as exc:
            raise SubmitError(f"cannot reach the Kubernetes API at {self.host}: "
                              f"{_reason(exc)}") from None
        return result if isinstance(result, dict) else self._client.sanitize_for_serialization(
            result)

    def _invoke(self, verb: str, spec: Kind, namespace: str, name: str | None,
                body: dict[str, Any] | None) -> Any:
        opts = {"_request_timeout": REQUEST_TIMEOUT_S}
        if not spec.group:  # core kinds: typed API, named by kind
            singular = {"configmaps": "config_map", "serviceaccounts": "service_account"}[
                spec.plural]
            method = getattr(self._core, f"{_CORE_VERBS[verb]}_namespaced_{singular}")
            args = [a for a in (name, namespace, body) if a is not None]
            return method(*args, **opts)
        method = getattr(self._custom, f"{_CUSTOM_VERBS[verb]}_namespaced_custom_object")
        args = [spec.group, spec.version, namespace, spec.plural]
        if name is not None:
            args.append(name)
        if body is not None:
            args.append(body)
        return method(*args, **opts)


_CORE_VERBS = {"get": "read", "create": "create", "replace": "replace"}
_CUSTOM_VERBS = {"get": "get", "create": "create", "replace": "replace"}


class _NotFound(SubmitError):
    pass


class _Conflict(SubmitError):
    pass


def _refusal(exc, verb: str, kind: str, namespace: str, name: str | None) -> SubmitError:
    what = f"{kind.lower()}/{name}" if name else kind.lower()
    message = _status_message(exc)
    if exc.status == 404 and verb == "get" and _names_an_object(exc):
        return _NotFound(message)
    if exc.status == 409:
        return _Conflict(message)
    if exc.status in (401, 403):
        return SubmitError(f"the Kubernetes API refused to {verb} {what} in namespace "
                           f"{namespace!r} (HTTP {exc.status}): {message}; check that your "
                           "account may do this (kubectl auth can-i)")
    if exc.status == 404 and KINDS[kind].group:
        return SubmitError(f"the Kubernetes API does not serve {KINDS[kind].plural}."
                           f"{KINDS[kind].group}/{KINDS[kind].version} (HTTP 404): is Tekton "
                           f"Pipelines installed? {message}")
    return SubmitError(f"the Kubernetes API refused to {verb} {what} in namespace "
                       f"{namespace!r} (HTTP {exc.status}): {message}")


def _names_an_object(exc) -> bool:
    """A 404 about a missing object (a Status naming it), not about an unserved resource."""
    try:
        return bool(json.loads(exc.body or "").get("details", {}).get("name"))
    except (ValueError, AttributeError, TypeError):
        return False


def _status_message(exc) -> str:
    """The ``message`` of the API server's Status body, else the HTTP reason."""
    try:
        return str(json.loads(exc.body or "").get("message") or exc.reason)
    except (ValueError, AttributeError, TypeError):
        return str(exc.reason)


def _reason(exc: Exception) -> str:
    from mlspec.runtime.errors import first_line

    reason = getattr(exc, "reason", None)  # the API's own short reason, when it gives one
    return first_line(Exception(reason) if reason else exc)
