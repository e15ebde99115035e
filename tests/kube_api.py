"""A local HTTP server speaking the Kubernetes API for the kinds mlspec deploys.

No API server can run here, so the deploy and rollout tests talk to this one through the
official client (a kubeconfig pointing at it). It implements what those calls rely on:

* ``GET`` of a namespaced object (404 with a Status naming it when absent);
* ``PATCH`` with ``application/merge-patch+json`` (RFC 7386), refused with 409 when the patch
  carries a ``metadata.resourceVersion`` that is no longer current, as the API server does;
* ``PATCH`` with ``application/apply-patch+yaml`` (server-side apply; ``fieldManager`` required):
  creates the object, or replaces its fields with the applied ones (one manager, ``force``, so
  a simplification of field ownership that equals it for mlspec's use), keeping ``status``;
* ``POST`` and ``PUT`` (create, replace with a resourceVersion check).

Every write bumps ``resourceVersion``. ``sent`` keeps every object body the client sent (to be
checked with ``../shared/oracles/validate-manifests``), ``requests`` every (method, path, content
type). ``interfere(n)`` makes the next ``n`` merge patches lose a race: another writer bumps the
object between the client's GET and its PATCH, so the client must re-read and retry.
"""

from __future__ import annotations

import copy
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

_PATH = re.compile(r"^/(?:api/v1|apis/(?P<group>[^/]+)/(?P<version>[^/]+))"
                   r"/namespaces/(?P<ns>[^/]+)/(?P<plural>[^/]+)(?:/(?P<name>[^/]+))?$")


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


class FakeKubeApi:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.sent: list[dict[str, Any]] = []
        self.requests: list[tuple[str, str, str]] = []
        self.patches: list[dict[str, Any]] = []
        self._version = 100
        self._interfere = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # --- set-up -------------------------------------------------------------------------
    def put(self, plural: str, obj: dict[str, Any]) -> None:
        """Store ``obj`` as if it existed before the test."""
        meta = obj["metadata"]
        self.objects[(meta["namespace"], plural, meta["name"])] = self._stamp(copy.deepcopy(obj))

    def interfere(self, times: int) -> None:
        self._interfere = times

    def stored(self, namespace: str, plural: str, name: str) -> dict[str, Any] | None:
        return self.objects.get((namespace, plural, name))

    # --- the API --------------------------------------------------------------------------
    def handle(self, method: str, path: str, query: dict[str, list[str]], content_type: str,
               body: Any) -> tuple[int, Any]:
        match = _PATH.match(path)
        if not match:
            return _status(404, "NotFound", f"the server could not find {path}")
        ns, plural, name = match["ns"], match["plural"], match["name"]
        key = (ns, plural, name)
        with self._lock:
            self.requests.append((method, path, content_type))
            current = self.objects.get(key)
            if method == "GET":
                return (200, current) if current else _missing(plural, name)
            if method == "POST":
                self.sent.append(copy.deepcopy(body))
                key = (ns, plural, body["metadata"]["name"])
                if key in self.objects:
                    return _status(409, "AlreadyExists", f"{plural} {key[2]!r} already exists")
                self.objects[key] = self._stamp(body)
                return 201, self.objects[key]
            if method == "PUT":
                self.sent.append(copy.deepcopy(body))
                if current is None:
                    return _missing(plural, name)
                if body["metadata"].get("resourceVersion") != \
                        current["metadata"]["resourceVersion"]:
                    return _conflict(plural, name)
                self.objects[key] = self._stamp(body)
                return 200, self.objects[key]
            if method == "PATCH" and content_type.startswith("application/apply-patch"):
                return self._apply(key, current, query, body)
            if method == "PATCH" and content_type.startswith("application/merge-patch"):
                return self._merge(key, current, body)
        return _status(405, "MethodNotAllowed", f"{method} {content_type} is not served here")

    def _apply(self, key, current, query, body) -> tuple[int, Any]:
        if not query.get("fieldManager"):
            return _status(400, "BadRequest", "PATCH of type apply requires fieldManager")
        self.sent.append(copy.deepcopy(body))
        if body.get("metadata", {}).get("name") != key[2]:
            return _status(400, "BadRequest", "the name of the object does not match the URL")
        obj = copy.deepcopy(body)
        if current is not None and "status" in current:
            obj["status"] = current["status"]
        code = 200 if current is not None else 201
        self.objects[key] = self._stamp(obj, current)
        return code, self.objects[key]

    def _merge(self, key, current, patch) -> tuple[int, Any]:
        if current is None:
            return _missing(key[1], key[2])
        if self._interfere > 0:  # another writer got in between the client's GET and PATCH
            self._interfere -= 1
            self.objects[key] = current = self._stamp(current, current)
        self.patches.append(copy.deepcopy(patch))
        wanted = (patch.get("metadata") or {}).get("resourceVersion")
        if wanted is not None and wanted != current["metadata"]["resourceVersion"]:
            return _conflict(key[1], key[2])
        merged = merge_patch(current, patch)
        self.objects[key] = self._stamp(merged, current)
        return 200, self.objects[key]

    def _stamp(self, obj: dict[str, Any], before: dict[str, Any] | None = None) -> dict:
        self._version += 1
        meta = obj.setdefault("metadata", {})
        meta["resourceVersion"] = str(self._version)
        meta["uid"] = (before or {}).get("metadata", {}).get("uid") or f"uid-{self._version}"
        meta["generation"] = int((before or {}).get("metadata", {}).get("generation", 0)) + 1
        return obj

    # --- serving ----------------------------------------------------------------------------
    def start(self) -> str:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                content_type = self.headers.get("Content-Type") or ""
                body = (yaml.safe_load(raw) if "yaml" in content_type else json.loads(raw)) \
                    if raw else None
                code, answer = api.handle(self.command, parts.path, parse_qs(parts.query),
                                          content_type, body)
                data = json.dumps(answer).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = _serve

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def kubeconfig(server: str, path: Path) -> Path:
    """A kubeconfig for ``server`` with a bearer token, written to ``path``."""
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "test",
        "clusters": [{"name": "test", "cluster": {"server": server}}],
        "users": [{"name": "test", "user": {"token": "test-token"}}],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test"}}],
    }))
    return path


def _status(code: int, reason: str, message: str, name: str | None = None,
            kind: str | None = None) -> tuple[int, Any]:
    status: dict[str, Any] = {"apiVersion": "v1", "kind": "Status", "status": "Failure",
                              "message": message, "reason": reason, "code": code}
    if name:
        status["details"] = {"name": name, "kind": kind}
    return code, status


def _missing(plural: str, name: str | None) -> tuple[int, Any]:
    return _status(404, "NotFound", f'{plural} "{name}" not found', name, plural)


def _conflict(plural: str, name: str | None) -> tuple[int, Any]:
    return _status(409, "Conflict", f'Operation cannot be fulfilled on {plural} "{name}": the '
                   "object has been modified; please apply your changes to the latest version "
                   "and try again", name, plural)
