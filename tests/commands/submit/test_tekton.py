"""``mlspec submit --target tekton`` against a local stand-in for the Kubernetes API server.

The server (a thread on 127.0.0.1, a free port) keeps objects per namespace, answers like the
API server (201 with the created object and a ``generateName`` suffix, 404/409 ``Status``
bodies, ``resourceVersion`` checks on PUT, 403 where told to refuse) and records every call.
The client finds it through a kubeconfig file named by ``KUBECONFIG``, with a bearer token the
server checks.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlspec.commands.submit.tekton import submit_tekton
from mlspec.compile.build import render_target
from mlspec.errors import UsageError
from mlspec.spec.loader import load_spec
from tests.conftest import REPO

SPEC = REPO / "examples" / "iris" / "mlproject.yaml"
TOKEN = "test-token-123"
_PATH = re.compile(r"^/(?:api/v1|apis/(?P<group>[^/]+)/(?P<version>[^/]+))/namespaces/"
                   r"(?P<ns>[^/]+)/(?P<plural>[^/]+)(?:/(?P<name>[^/]+))?$")


class FakeKube:
    """Objects by (namespace, plural, name); every request as (method, path, body)."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.calls: list[tuple[str, str, Any]] = []
        self.forbid: set[tuple[str, str]] = set()  # (method, plural) answered with 403
        self.conflict_once: set[str] = set()  # plurals whose next POST gets a 409
        self.unserved: set[str] = set()  # plurals answered with 404 (CRD not installed)
        self.version = 100
        self.suffix = 0

    def handle(self, method: str, path: str, body: Any, auth: str | None) -> tuple[int, Any]:
        self.calls.append((method, path, body))
        if auth != f"Bearer {TOKEN}":
            return 401, _status(401, "Unauthorized", "no valid bearer token")
        match = _PATH.match(path.split("?")[0])
        if not match:
            return 404, _status(404, "NotFound", f"the server could not find {path}")
        ns, plural, name = match["ns"], match["plural"], match["name"]
        if plural in self.unserved:  # what kube-apiserver says for an API group it lacks
            return 404, "404 page not found"
        if (method, plural) in self.forbid:
            return 403, _status(403, "Forbidden", f'{plural} is forbidden: User "ci" cannot '
                                f'{method.lower()} resource "{plural}" in namespace "{ns}"')
        key = (ns, plural, name or "")
        if method == "GET":
            if key not in self.objects:
                return 404, _status(404, "NotFound", f'{plural} "{name}" not found',
                                    {"name": name, "kind": plural})
            return 200, self.objects[key]
        if method == "POST":
            return self._create(ns, plural, body)
        if method == "PUT":
            current = self.objects.get(key)
            if current is None:
                return 404, _status(404, "NotFound", f'{plural} "{name}" not found',
                                    {"name": name, "kind": plural})
            if body["metadata"].get("resourceVersion") != current["metadata"]["resourceVersion"]:
                return 409, _status(409, "Conflict", "the object has been modified")
            return 200, self._store(ns, plural, name, body)
        return 405, _status(405, "MethodNotAllowed", method)

    def _create(self, ns: str, plural: str, body: dict[str, Any]) -> tuple[int, Any]:
        meta = body["metadata"]
        if plural in self.conflict_once:
            self.conflict_once.discard(plural)
            self._store(ns, plural, meta["name"], {**body, "metadata": {**meta}})
            return 409, _status(409, "AlreadyExists", f'{plural} "{meta["name"]}" already exists')
        if meta.get("namespace", ns) != ns:
            return 400, _status(400, "BadRequest", "the namespace of the object does not match")
        name = meta.get("name")
        if not name:
            self.suffix += 1
            name = f"{meta['generateName']}x{self.suffix:04d}"
        if (ns, plural, name) in self.objects:
            return 409, _status(409, "AlreadyExists", f'{plural} "{name}" already exists')
        return 201, self._store(ns, plural, name, body)

    def _store(self, ns: str, plural: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        self.version += 1
        stored = json.loads(json.dumps(body))
        stored["metadata"].update(name=name, namespace=ns, resourceVersion=str(self.version))
        self.objects[(ns, plural, name)] = stored
        return stored

    def summary(self) -> list[tuple[str, str]]:
        """(method, path) of every call, without the query string."""
        return [(m, p.split("?")[0]) for m, p, _ in self.calls]


def _status(code: int, reason: str, message: str,
            details: dict[str, str] | None = None) -> dict[str, Any]:
    status = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message,
              "reason": reason, "code": code}
    if details:
        status["details"] = details
    return status


@pytest.fixture
def kube(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    fake = FakeKube()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            code, answer = fake.handle(self.command, self.path, body,
                                       self.headers.get("Authorization"))
            text = isinstance(answer, str)
            data = answer.encode() if text else json.dumps(answer).encode()
            self.send_response(code)
            self.send_header("Content-Type", "text/plain" if text else "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(_kubeconfig(f"http://127.0.0.1:{server.server_address[1]}"))
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    yield fake
    server.shutdown()
    server.server_close()


def _kubeconfig(server: str) -> str:
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "test",
        "clusters": [{"name": "test", "cluster": {"server": server}}],
        "users": [{"name": "ci", "user": {"token": TOKEN}}],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": "ci"}}],
    })


def _loaded():
    loaded = load_spec(str(SPEC))
    assert loaded.project is not None
    return loaded


def _rendered(namespace: str = "ml-demo") -> dict[str, list[dict[str, Any]]]:
    project = _loaded().project
    files = render_target(project, "tekton")
    from mlspec.commands.submit.tekton import objects_of, training_files

    assert any(f.path.startswith("tekton/batch-") for f in files)  # iris has a batch section
    return objects_of([f.content for f in training_files(files)], namespace)


T = "/apis/tekton.dev/v1/namespaces/ml-demo"
C = "/api/v1/namespaces/ml-demo"


# --- the tests --------------------------------------------------------------------------------
def test_apply_definitions_creates_everything_then_the_run(kube: FakeKube,
                                                           capsys: pytest.CaptureFixture) -> None:
    assert submit_tekton(_loaded(), apply_definitions=True) == 0
    out = capsys.readouterr().out.strip()
    objects = _rendered()
    (configmap,) = objects["ConfigMap"]
    cm = configmap["metadata"]["name"]
    tasks = [t["metadata"]["name"] for t in objects["Task"]]
    expected = [("GET", f"{C}/configmaps/{cm}"), ("POST", f"{C}/configmaps"),
                ("GET", f"{C}/serviceaccounts/iris-classifier-runner"),
                ("POST", f"{C}/serviceaccounts")]
    for name in tasks:
        expected += [("GET", f"{T}/tasks/{name}"), ("POST", f"{T}/tasks")]
    expected += [("GET", f"{T}/pipelines/iris-classifier"), ("POST", f"{T}/pipelines"),
                 ("POST", f"{T}/pipelineruns")]
    assert kube.summary() == expected
    assert not [k for k in kube.objects if "-batch" in k[2]]  # the batch pipeline is not sent
    # The run the server created is the rendered PipelineRun, and its name is what was printed.
    (run_key,) = [k for k in kube.objects if k[1] == "pipelineruns"]
    assert out == run_key[2] and out.startswith("iris-classifier-")
    sent = kube.calls[-1][2]
    assert sent == objects["PipelineRun"][0]
    assert sent["spec"]["workspaces"][1]["configMap"]["name"] == cm
    assert kube.objects[("ml-demo", "tasks", tasks[0])]["spec"] == objects["Task"][0]["spec"]


def test_a_second_submit_replaces_definitions_and_leaves_the_spec_configmap(
        kube: FakeKube, capsys: pytest.CaptureFixture) -> None:
    assert submit_tekton(_loaded(), apply_definitions=True) == 0
    first = {k: v["metadata"]["resourceVersion"] for k, v in kube.objects.items()}
    kube.calls.clear()
    assert submit_tekton(_loaded(), apply_definitions=True) == 0
    methods = [m for m, _ in kube.summary()]
    assert methods.count("PUT") == 1 + 7 + 1  # service account, 7 tasks, pipeline
    assert all(p.split("/")[-2] != "configmaps" for m, p in kube.summary() if m != "GET")
    for method, path, body in kube.calls:
        if method == "PUT":  # optimistic concurrency: the version the GET returned
            key = ("ml-demo", path.split("/")[-2], path.split("/")[-1])
            assert body["metadata"]["resourceVersion"] == first[key]
    assert len([k for k in kube.objects if k[1] == "pipelineruns"]) == 2
    assert "configured" in capsys.readouterr().err


def test_without_definitions_the_pipeline_must_exist(kube: FakeKube,
                                                     capsys: pytest.CaptureFixture) -> None:
    assert submit_tekton(_loaded()) == 1
    err = capsys.readouterr().err
    assert "pipeline 'iris-classifier' does not exist in namespace 'ml-demo'" in err
    assert "--apply-definitions" in err and "Traceback" not in err
    assert ("POST", f"{T}/pipelineruns") not in kube.summary()


def test_without_definitions_only_the_configmap_and_the_run_are_created(
        kube: FakeKube, capsys: pytest.CaptureFixture) -> None:
    assert submit_tekton(_loaded(), apply_definitions=True) == 0
    kube.calls.clear()
    assert submit_tekton(_loaded()) == 0
    assert [m for m, _ in kube.summary()] == ["GET", "GET", "POST"]
    assert kube.summary()[-1] == ("POST", f"{T}/pipelineruns")


def test_namespace_option_moves_everything(kube: FakeKube, capsys: pytest.CaptureFixture) -> None:
    assert submit_tekton(_loaded(), namespace="team-b", apply_definitions=True) == 0
    assert all("/namespaces/team-b/" in p for _, p in kube.summary())
    assert all(body["metadata"]["namespace"] == "team-b"
               for m, _, body in kube.calls if m == "POST")
    assert {k[0] for k in kube.objects} == {"team-b"}


def test_forbidden_gives_a_clear_error(kube: FakeKube, capsys: pytest.CaptureFixture) -> None:
    kube.forbid.add(("POST", "pipelineruns"))
    assert submit_tekton(_loaded(), apply_definitions=True) == 1
    err = capsys.readouterr().err
    assert "refused to create pipelinerun" in err and "'ml-demo'" in err and "HTTP 403" in err
    assert 'cannot post resource "pipelineruns"' in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 + 1 + 7 + 1  # 9 applied lines + the error


def test_a_create_race_is_resolved_by_replacing(kube: FakeKube,
                                                capsys: pytest.CaptureFixture) -> None:
    kube.conflict_once.add("pipelines")
    assert submit_tekton(_loaded(), apply_definitions=True) == 0
    pipeline_calls = [(m, p) for m, p in kube.summary() if "/pipelines" in p]
    assert [m for m, _ in pipeline_calls] == ["GET", "POST", "GET", "PUT"]


def test_tekton_not_installed(kube: FakeKube, capsys: pytest.CaptureFixture) -> None:
    kube.unserved.add("pipelineruns")
    kube.unserved.add("pipelines")
    assert submit_tekton(_loaded()) == 1
    err = capsys.readouterr().err
    assert "does not serve pipelines.tekton.dev/v1 (HTTP 404): is Tekton Pipelines installed?" \
        in err and "Traceback" not in err


def test_bad_token_is_a_clear_error(kube: FakeKube, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture) -> None:
    config = yaml.safe_load(Path(os.environ["KUBECONFIG"]).read_text())
    config["users"][0]["user"]["token"] = "wrong"
    bad = tmp_path / "bad-kubeconfig"
    bad.write_text(yaml.safe_dump(config))
    monkeypatch.setenv("KUBECONFIG", str(bad))
    assert submit_tekton(_loaded()) == 1
    assert "HTTP 401" in capsys.readouterr().err


def test_unreachable_api_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(_kubeconfig(f"http://127.0.0.1:{port}"))
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    assert submit_tekton(_loaded()) == 1
    err = capsys.readouterr().err
    assert f"cannot reach the Kubernetes API at http://127.0.0.1:{port}" in err
    assert "Traceback" not in err


def test_no_credentials_is_a_usage_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(UsageError, match="no Kubernetes credentials"):
        submit_tekton(_loaded())


def test_the_cli_submits(kube: FakeKube) -> None:
    mlspec = REPO / ".venv" / "bin" / "mlspec"
    done = subprocess.run([str(mlspec), "submit", str(SPEC), "--target", "tekton",
                           "--apply-definitions", "--namespace", "ci", "--profile", "prod"],
                          capture_output=True, text=True, timeout=120, env=os.environ.copy())
    assert done.returncode == 0, done.stdout + done.stderr
    (run_key,) = [k for k in kube.objects if k[1] == "pipelineruns"]
    assert done.stdout.strip() == run_key[2] and run_key[0] == "ci"
    # The prod profile's credentials arrive as a Secret reference on the registry's steps.
    tasks = {k[2]: v for k, v in kube.objects.items() if k[1] == "tasks"}
    refs = {name: [src["secretRef"]["name"] for step in task["spec"]["steps"]
                   for src in step.get("envFrom", [])] for name, task in tasks.items()}
    assert {name for name, found in refs.items() if found} >= {"iris-classifier-register"}
    assert all(found in ([], ["mlflow-credentials"]) for found in refs.values()), refs


def test_the_cli_refuses_a_file_registry_and_sends_nothing(kube: FakeKube) -> None:
    mlspec = REPO / ".venv" / "bin" / "mlspec"
    done = subprocess.run([str(mlspec), "submit", str(SPEC), "--target", "tekton",
                           "--apply-definitions", "--namespace", "ci"],
                          capture_output=True, text=True, timeout=120, env=os.environ.copy())
    assert done.returncode == 1, done.stdout + done.stderr
    assert "is a file, which does not survive a cluster" in done.stderr
    assert "--artifacts-destination" in done.stderr and "Traceback" not in done.stderr
    assert kube.calls == []


def test_a_value_the_output_cannot_carry_submits_nothing(kube: FakeKube, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture) -> None:
    spec = tmp_path / "mlproject.yaml"
    spec.write_text(SPEC.read_text().replace("labels: {team: demo}",
                                             'labels: {team: "data science"}'))
    loaded = load_spec(str(spec))
    assert submit_tekton(loaded, apply_definitions=True) == 1
    err = capsys.readouterr().err
    assert "MLS801" in err and "data science" in err and ":9:" in err
    assert kube.calls == []
