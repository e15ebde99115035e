"""The Kubernetes API calls mlspec makes, through the official ``kubernetes`` client.

One small surface for every caller (the deploy and rollout steps in a pod, ``mlspec submit`` and
``mlspec rollout`` on a workstation): read an object, create or replace it, server-side apply it,
or change it with a merge patch that carries the ``resourceVersion`` it was computed from, so a
concurrent writer makes the API answer 409 and the change is recomputed on the fresh object
(bounded retries) instead of overwriting what the other writer did.

Credentials come from the kubeconfig (``KUBECONFIG`` read when called) or, without one, from the
pod's service account. Every failure is one :class:`KubeError` whose message says what was
refused and why; :class:`NotFound` and :class:`Conflict` let callers branch.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

REQUEST_TIMEOUT_S = 30
FIELD_MANAGER = "mlspec"
CONFLICT_RETRIES = 5
APPLY_CONTENT_TYPE = "application/apply-patch+yaml"  # JSON is YAML: the body is sent as JSON
MERGE_CONTENT_TYPE = "application/merge-patch+json"


class KubeError(Exception):
    """The API could not be reached or refused a request."""


class NotFound(KubeError):
    pass


class Conflict(KubeError):
    pass


@dataclass(frozen=True)
class Kind:
    """Where the API serves a kind: core (``group`` empty) or a named group."""

    group: str
    version: str
    plural: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str, name: str | None = None) -> str:
        root = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        tail = f"/{name}" if name else ""
        return f"{root}/namespaces/{namespace}/{self.plural}{tail}"


KINDS: dict[str, Kind] = {
    "ConfigMap": Kind("", "v1", "configmaps"),
    "ServiceAccount": Kind("", "v1", "serviceaccounts"),
    "Service": Kind("", "v1", "services"),
    "Task": Kind("tekton.dev", "v1", "tasks"),
    "Pipeline": Kind("tekton.dev", "v1", "pipelines"),
    "PipelineRun": Kind("tekton.dev", "v1", "pipelineruns"),
    "InferenceService": Kind("serving.kserve.io", "v1beta1", "inferenceservices"),
    "InferenceGraph": Kind("serving.kserve.io", "v1alpha1", "inferencegraphs"),
    "VirtualService": Kind("networking.istio.io", "v1", "virtualservices"),
    "TrainJob": Kind("trainer.kubeflow.org", "v1alpha1", "trainjobs"),
}


def api_client():
    """An ``ApiClient`` from the kubeconfig (``KUBECONFIG``), else the in-cluster account.

    Raises:
        KubeError: no usable credentials.
    """
    try:
        from kubernetes import client, config
        from kubernetes.config.config_exception import ConfigException
    except ImportError:
        raise KubeError("the kubernetes client is not installed: pip install "
                        "'mlspec[kube]'") from None
    kubeconfig = os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
    paths = [p for p in kubeconfig.split(os.pathsep) if p]
    if any(os.path.exists(p) for p in paths):
        try:
            return config.new_client_from_config(config_file=kubeconfig)
        except (ConfigException, OSError, ValueError, TypeError) as exc:
            raise KubeError(f"cannot use kubeconfig {kubeconfig}: {exc}") from None
    try:
        configuration = client.Configuration()
        config.load_incluster_config(client_configuration=configuration)
    except ConfigException:
        raise KubeError(f"no Kubernetes credentials: no kubeconfig at {kubeconfig} (set "
                        "KUBECONFIG) and not running in a cluster") from None
    return client.ApiClient(configuration)


def kind_of(body: dict[str, Any]) -> str:
    """The kind of ``body``, one this module knows, with the apiVersion it is served at."""
    kind = body.get("kind")
    if kind not in KINDS:
        raise KubeError(f"mlspec does not send {kind!r} objects (it sends: "
                        f"{', '.join(sorted(KINDS))})")
    if body.get("apiVersion") != KINDS[kind].api_version:
        raise KubeError(f"{kind} {body.get('metadata', {}).get('name')!r} has apiVersion "
                        f"{body.get('apiVersion')!r}; mlspec sends {KINDS[kind].api_version}")
    return kind


class Kube:
    """The calls, each failure one :class:`KubeError` (see the module)."""

    def __init__(self, client=None) -> None:
        self._client = client if client is not None else api_client()
        self.host = self._client.configuration.host

    def close(self) -> None:
        self._client.close()

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        try:
            return self._call("GET", kind, namespace, name)
        except NotFound:
            return None

    def create(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", kind_of(body), namespace, None, body)

    def replace(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._call("PUT", kind_of(body), namespace, body["metadata"]["name"], body)

    def apply(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply ``body`` as field manager ``mlspec`` (``force``: mlspec owns the
        fields it writes); creates the object when it does not exist."""
        return self._call("PATCH", kind_of(body), namespace, body["metadata"]["name"], body,
                          content_type=APPLY_CONTENT_TYPE,
                          query=[("fieldManager", FIELD_MANAGER), ("force", "true")])

    def patch(self, kind: str, namespace: str, name: str,
              change: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
        """Merge-patch the object with ``change(current)``, guarded by the current
        ``resourceVersion``; on 409 (someone wrote in between) read it again and recompute.

        Raises:
            NotFound: the object does not exist.
            KubeError: refused, or still conflicting after the retries.
        """
        for _ in range(CONFLICT_RETRIES):
            current = self._call("GET", kind, namespace, name)
            patch = change(current)
            patch.setdefault("metadata", {})["resourceVersion"] = (
                current.get("metadata", {}).get("resourceVersion"))
            try:
                return self._call("PATCH", kind, namespace, name, patch,
                                  content_type=MERGE_CONTENT_TYPE)
            except Conflict:
                continue
        raise KubeError(f"{kind.lower()}/{name} kept changing while it was being patched "
                        f"({CONFLICT_RETRIES} conflicts in a row); try again")

    def _call(self, method: str, kind: str, namespace: str, name: str | None,
              body: dict[str, Any] | None = None, content_type: str = "application/json",
              query: list[tuple[str, str]] | None = None) -> dict[str, Any]:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        spec = KINDS[kind]
        try:
            return self._client.call_api(
                spec.path(namespace, name), method, query_params=query or [],
                header_params={"Accept": "application/json", "Content-Type": content_type},
                body=body, response_type="object", auth_settings=["BearerToken"],
                _return_http_data_only=True, _preload_content=True,
                _request_timeout=REQUEST_TIMEOUT_S)
        except ApiException as exc:
            raise refusal(exc, method, kind, namespace,
                          name or (body or {}).get("metadata", {}).get("name")) from None
        except (HTTPError, OSError) as exc:
            raise KubeError(f"cannot reach the Kubernetes API at {self.host}: "
                            f"{_reason(exc)}") from None


# Who installs each API group, for the 404 that means "not installed".
PROVIDERS = {"tekton.dev": "Tekton Pipelines", "serving.kserve.io": "KServe",
             "networking.istio.io": "Istio"}
_VERBS = {"GET": "get", "POST": "create", "PUT": "replace", "PATCH": "patch"}


def refusal(exc, method: str, kind: str, namespace: str, name: str | None) -> KubeError:
    """The error for the API's answer ``exc`` to ``method`` on ``kind``/``name``."""
    verb = _VERBS.get(method, method.lower())
    what = f"{kind.lower()}/{name}" if name else kind.lower()
    message = status_message(exc)
    spec = KINDS[kind]
    if exc.status == 404 and (not spec.group or _names_an_object(exc)):
        return NotFound(message)
    if exc.status == 409:
        return Conflict(message)
    if exc.status in (401, 403):
        return KubeError(f"the Kubernetes API refused to {verb} {what} in namespace "
                         f"{namespace!r} (HTTP {exc.status}): {message}; check that the account "
                         "may do this (kubectl auth can-i)")
    if exc.status == 404:
        return KubeError(f"the Kubernetes API does not serve {spec.plural}.{spec.group}/"
                         f"{spec.version} (HTTP 404): is {PROVIDERS.get(spec.group, spec.group)} "
                         f"installed? {message}")
    return KubeError(f"the Kubernetes API refused to {verb} {what} in namespace {namespace!r} "
                     f"(HTTP {exc.status}): {message}")


def _names_an_object(exc) -> bool:
    """A 404 about a missing object (a Status naming it), not about an unserved resource."""
    try:
        return bool(json.loads(exc.body or "").get("details", {}).get("name"))
    except (ValueError, AttributeError, TypeError):
        return False


def status_message(exc) -> str:
    """The ``message`` of the API server's Status body, else the HTTP reason."""
    try:
        return str(json.loads(exc.body or "").get("message") or exc.reason)
    except (ValueError, AttributeError, TypeError):
        return str(exc.reason)


def _reason(exc: Exception) -> str:
    from mlspec.runtime.errors import first_line

    reason = getattr(exc, "reason", None)  # the API's own short reason, when it gives one
    return first_line(Exception(reason) if reason else exc)
