"""``mlspec submit --target kfp`` against a real HTTP server implementing the KFP v2beta1 API.

The server keeps pipelines, versions, experiments and runs in memory and records every request,
so the tests check what the kfp client really sent (the uploaded IR included).
"""

from __future__ import annotations

import itertools
import json
import socket
import threading
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
import yaml

from mlspec.commands.submit import submit_command
from mlspec.errors import UsageError
from tests.conftest import REPO

IRIS = REPO / "examples" / "iris" / "mlproject.yaml"
API = "/apis/v2beta1"


class FakeKfp:
    """In-memory state of the fake KFP API server."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.pipelines: dict[str, dict] = {}
        self.versions: dict[str, list[dict]] = {}
        self.experiments: dict[str, dict] = {}
        self.runs: list[dict] = []
        self.ids = itertools.count(1)
        self.refuse: dict[str, tuple[int, str]] = {}  # path suffix -> (status, message)

    def new_id(self, kind: str) -> str:
        return f"{kind}-{next(self.ids)}"

    def calls(self) -> list[tuple[str, str]]:
        return [(r["method"], r["path"]) for r in self.requests]


def _matches(flt: str | None, item: dict) -> bool:
    if not flt:
        return True
    return all(item.get(p["key"]) == p.get("stringValue") for p in json.loads(flt)["predicates"])


def _handler(state: FakeKfp):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep pytest output clean
            pass

        def _reply(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _record(self) -> tuple[str, dict, bytes]:
            url = urlparse(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            entry = {"method": self.command, "path": url.path, "query": query}
            ctype = self.headers.get("Content-Type", "")
            if ctype.startswith("multipart/form-data"):
                msg = BytesParser(policy=HTTP).parsebytes(
                    b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + body)
                entry["files"] = {part.get_param("name", header="content-disposition"):
                                  part.get_payload(decode=True).decode()
                                  for part in msg.iter_parts()}
            elif body:
                entry["json"] = json.loads(body)
            state.requests.append(entry)
            return url.path, query, body

        def _refused(self, path: str) -> bool:
            for suffix, (status, message) in state.refuse.items():
                if path.endswith(suffix):
                    self._reply(status, {"error": message, "message": message, "code": 7})
                    return True
            return False

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            path, query, _ = self._record()
            if self._refused(path):
                return
            if path == f"{API}/healthz":
                self._reply(200, {"multi_user": False})
            elif path == f"{API}/pipelines":
                found = [p for p in state.pipelines.values() if _matches(query.get("filter"), p)]
                self._reply(200, {"pipelines": found, "total_size": len(found)} if found else {})
            elif path.startswith(f"{API}/pipelines/") and path.endswith("/versions"):
                pid = path.split("/")[-2]
                found = [v for v in state.versions.get(pid, []) if _matches(query.get("filter"), v)]
                if query.get("sort_by") == "created_at desc":
                    found = found[::-1]
                found = found[: int(query.get("page_size", 100))]
                self._reply(200, {"pipeline_versions": found, "total_size": len(found)})
            elif path == f"{API}/experiments":
                found = [e for e in state.experiments.values()
                         if _matches(query.get("filter"), e)]
                self._reply(200, {"experiments": found, "total_size": len(found)} if found else {})
            else:
                self._reply(404, {"error": "not found", "message": "not found"})

        def do_POST(self) -> None:  # noqa: N802
            path, query, _ = self._record()
            if self._refused(path):
                return
            files = state.requests[-1].get("files", {})
            if path == f"{API}/pipelines/upload":
                pid = state.new_id("pipeline")
                state.pipelines[pid] = {"pipeline_id": pid, "display_name": query["name"]}
                state.versions[pid] = [{"pipeline_id": pid, "pipeline_version_id": state.new_id(
                    "version"), "display_name": query["name"], "spec": files["uploadfile"]}]
                self._reply(200, state.pipelines[pid])
            elif path == f"{API}/pipelines/upload_version":
                pid = query["pipelineid"]
                version = {"pipeline_id": pid, "pipeline_version_id": state.new_id("version"),
                           "display_name": query["name"], "spec": files["uploadfile"]}
                state.versions[pid].append(version)
                self._reply(200, version)
            elif path == f"{API}/experiments":
                body = state.requests[-1]["json"]
                eid = state.new_id("experiment")
                state.experiments[eid] = {"experiment_id": eid,
                                          "display_name": body["display_name"]}
                self._reply(200, state.experiments[eid])
            elif path == f"{API}/runs":
                run = {**state.requests[-1]["json"], "run_id": state.new_id("run")}
                state.runs.append(run)
                self._reply(200, run)
            else:
                self._reply(404, {"error": "not found", "message": "not found"})

    return Handler


@pytest.fixture
def kfp_server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    import kfp

    # Never read or write the developer's ~/.config/kfp/context.json.
    monkeypatch.setattr(kfp.Client, "_LOCAL_KFP_CONTEXT", str(tmp_path / "kfp-context.json"))
    state = FakeKfp()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()
    server.server_close()


def _submit(host: str, spec: Path = IRIS, **kwargs) -> int:
    """Submit the spec's prod profile: the one with a tracking server, as a cluster needs."""
    kwargs.setdefault("profile", "prod")
    return submit_command(str(spec), "kfp", host=host, **kwargs)


def test_a_file_registry_is_refused_with_the_fix_and_nothing_is_sent(kfp_server, capsys) -> None:
    # The default profile keeps the embedded sqlite:///mlruns.db (right for mlspec run).
    assert _submit(kfp_server.url, profile=None) == 1
    err = capsys.readouterr().err
    assert "registry.tracking_uri 'sqlite:///mlruns.db' is a file" in err
    assert "mlflow server" in err and "--artifacts-destination" in err and "http(s)://" in err
    assert "nothing submitted" in err and "Traceback" not in err
    assert kfp_server.requests == []


def _variant(tmp_path: Path, old: str, new: str) -> Path:
    spec = tmp_path / "mlproject.yaml"
    text = IRIS.read_text()
    assert old in text
    spec.write_text(text.replace(old, new))
    return spec


def test_first_submit_uploads_pipeline_creates_experiment_and_run(kfp_server, capsys) -> None:
    assert _submit(kfp_server.url, experiment="nightly") == 0
    calls = kfp_server.calls()
    assert calls[0] == ("GET", f"{API}/healthz")
    assert ("POST", f"{API}/pipelines/upload") in calls
    assert ("POST", f"{API}/experiments") in calls
    assert calls[-1] == ("POST", f"{API}/runs")
    (pipeline,) = kfp_server.pipelines.values()
    assert pipeline["display_name"] == "iris-classifier"
    uploaded = kfp_server.versions[pipeline["pipeline_id"]][0]["spec"]
    ir = yaml.safe_load_all(uploaded).__next__()
    assert ir["pipelineInfo"]["name"] == "iris-classifier"
    assert set(ir["root"]["dag"]["tasks"]) >= {"ingest", "train", "gate"}
    (experiment,) = kfp_server.experiments.values()
    assert experiment["display_name"] == "nightly"
    (run,) = kfp_server.runs
    assert run["experiment_id"] == experiment["experiment_id"]
    (version,) = kfp_server.versions[pipeline["pipeline_id"]]
    assert run["pipeline_version_reference"] == {
        "pipeline_id": pipeline["pipeline_id"],
        "pipeline_version_id": version["pipeline_version_id"],
    }
    out = capsys.readouterr().out
    assert f"run {run['run_id']}" in out


def test_existing_pipeline_gets_a_new_version_and_reuses_experiment(kfp_server, tmp_path) -> None:
    assert _submit(kfp_server.url) == 0
    changed = _variant(tmp_path, "n_estimators: 100", "n_estimators: 50")
    kfp_server.requests.clear()
    assert _submit(kfp_server.url, spec=changed) == 0
    calls = kfp_server.calls()
    assert ("POST", f"{API}/pipelines/upload") not in calls
    assert ("POST", f"{API}/pipelines/upload_version") in calls
    assert ("POST", f"{API}/experiments") not in calls, "the experiment exists already"
    (pid,) = kfp_server.pipelines
    versions = kfp_server.versions[pid]
    assert len(versions) == 2
    assert versions[1]["display_name"].startswith("iris-classifier-1.0.0-")
    assert '"n_estimators":50' in versions[1]["spec"]
    assert kfp_server.runs[-1]["pipeline_version_reference"]["pipeline_version_id"] == \
        versions[1]["pipeline_version_id"]
    # The same IR again: its version is found and reused, nothing is uploaded.
    kfp_server.requests.clear()
    assert _submit(kfp_server.url, spec=changed) == 0
    assert not [c for c in kfp_server.calls() if "upload" in c[1]]
    assert len(kfp_server.versions[pid]) == 2
    assert len(kfp_server.runs) == 3


def test_unreachable_host_is_a_clear_error(capsys) -> None:
    with socket.socket() as sock:  # a free port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert _submit(f"http://127.0.0.1:{port}") == 1
    err = capsys.readouterr().err
    assert err.startswith("error: cannot reach KFP at http://127.0.0.1:")
    assert "Traceback" not in err


@pytest.mark.parametrize("suffix,status", [("/healthz", 403), ("/pipelines/upload", 500),
                                           ("/runs", 400)])
def test_refusals_are_reported_with_status_and_message(kfp_server, capsys, suffix, status) -> None:
    kfp_server.refuse[suffix] = (status, "permission denied for pipelines")
    assert _submit(kfp_server.url) == 1
    err = capsys.readouterr().err
    assert "refused" in err and f"HTTP {status}" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not kfp_server.runs


def test_usage_errors() -> None:
    with pytest.raises(UsageError, match="needs --host"):
        submit_command(str(IRIS), "kfp", host=None)
    with pytest.raises(UsageError, match="did you mean 'kfp'"):
        submit_command(str(IRIS), "kpf", host="http://x")


def test_cli_exit_codes(tmp_path: Path) -> None:
    import subprocess

    mlspec = REPO / ".venv" / "bin" / "mlspec"
    done = subprocess.run([str(mlspec), "submit", str(IRIS), "--target", "kfp"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "--host" in done.stderr
    bad = _variant(tmp_path, "task: classification", "task: clustering")
    done = subprocess.run([str(mlspec), "submit", str(bad), "--target", "kfp",
                           "--host", "http://127.0.0.1:9"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 1 and "nothing submitted" in done.stderr
    # An unreadable spec: exit 2, its one diagnostic, no second "cannot read" line.
    done = subprocess.run([str(mlspec), "submit", str(tmp_path / "missing.yaml"), "--target",
                           "kfp", "--host", "http://127.0.0.1:9"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2 and "MLS001" in done.stderr, done.stderr
    assert done.stderr.count("cannot read") == 1, done.stderr


def test_a_value_kfp_cannot_carry_is_reported_not_raised(capsys) -> None:
    """submit renders through output.render_checked, as compile does: a renderer's refusal
    (MLS701, a data uri with a line break, when lint is bypassed) is a diagnostic, not a
    traceback."""
    from mlspec.commands.checked import render_checked
    from mlspec.spec.loader import load_spec

    loaded = load_spec(str(IRIS), None)
    assert render_checked(loaded, "kfp")
    bad = loaded.project.model_copy(deep=True)
    bad.data.source.uri = "data.csv\nimage: evil"
    loaded.project = bad
    assert render_checked(loaded, "kfp") is None
    assert "MLS701" in capsys.readouterr().err
