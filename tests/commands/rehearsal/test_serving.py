"""``mlspec serve --manifest``: an InferenceService's predictor container as a local process."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from mlspec.commands.rehearsal.serving import load_predictor, rebind
from mlspec.errors import UsageError
from tests.conftest import REPO

MLSPEC = REPO / ".venv" / "bin" / "mlspec"

# A stand-in model server: answers its readiness probe and tells what environment it got.
SERVER = '''
import argparse, json, os
from http.server import BaseHTTPRequestHandler, HTTPServer
p = argparse.ArgumentParser()
p.add_argument("--host"); p.add_argument("--port", type=int)
a = p.parse_args()
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"env": dict(os.environ), "cwd": os.getcwd(),
                           "bind": [a.host, a.port]}).encode()
        self.send_response(200); self.end_headers(); self.wfile.write(body)
    def log_message(self, *args):
        pass
HTTPServer((a.host, a.port), H).serve_forever()
'''


def _service(container: dict, name: str = "iris", volumes: list | None = None) -> dict:
    predictor: dict = {"containers": [container]}
    if volumes:
        predictor["volumes"] = volumes
    return {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
            "metadata": {"name": name, "namespace": "ml"}, "spec": {"predictor": predictor}}


def _container(**extra) -> dict:
    # The code goes inline: a file under the test's /tmp folder would be hidden by the /tmp
    # volume, as it would be in the container.
    return {"name": "kserve-container", "image": "ghcr.io/x/runtime:1",
            "command": ["python", "-c", SERVER],
            "args": ["--host", "0.0.0.0", "--port", "8080"],
            "env": [{"name": "HOME", "value": "/tmp"}, {"name": "TMPDIR", "value": "/tmp"}],
            "ports": [{"containerPort": 8080, "name": "http1"}],
            "readinessProbe": {"httpGet": {"path": "/v2/health/ready", "port": 8080}},
            "volumeMounts": [{"mountPath": "/tmp", "name": "tmp"}],
            "securityContext": {"readOnlyRootFilesystem": True}, **extra}


def test_rebind_rewrites_the_host_and_port_the_manifest_passes() -> None:
    container = {"args": ["serve", "m", "--host", "0.0.0.0", "--port=8080"],
                 "env": [{"name": "PORT", "value": "8080"}],
                 "ports": [{"containerPort": 8080}]}
    out = rebind(container, "127.0.0.1", 9001)
    assert out["args"] == ["serve", "m", "--host", "127.0.0.1", "--port=9001"]
    assert out["env"] == [{"name": "PORT", "value": "9001"}]
    assert rebind(container, "127.0.0.1", None)["args"][-1] == "--port=8080"
    with pytest.raises(UsageError, match="says its port nowhere"):
        rebind({"args": ["serve"], "ports": [{"containerPort": 8080}]}, "127.0.0.1", 9001)


def test_the_predictor_is_picked_from_the_manifest(tmp_path: Path) -> None:
    manifest = tmp_path / "isvc.yaml"
    other = {"kind": "VirtualService", "metadata": {"name": "vs"}}
    manifest.write_text(yaml.safe_dump_all([other, _service({"name": "a"}, "one"),
                                            _service({"name": "b"}, "two")]))
    assert load_predictor(manifest, None)[1]["name"] == "a"
    assert load_predictor(manifest, "two")[1]["name"] == "b"
    with pytest.raises(UsageError, match="no InferenceService named 'three'"):
        load_predictor(manifest, "three")
    model_format = {"kind": "InferenceService", "metadata": {"name": "m"},
                    "spec": {"predictor": {"model": {"modelFormat": {"name": "sklearn"}}}}}
    manifest.write_text(yaml.safe_dump(model_format))
    with pytest.raises(UsageError, match="no containers"):
        load_predictor(manifest, None)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_json(url: str, process: subprocess.Popen, seconds: float = 30) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return json.loads(response.read())
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"{url} never answered")


def _lines_until(process: subprocess.Popen, wanted: str, seconds: float = 30) -> list[str]:
    """The process's output lines up to the first holding ``wanted`` (read in a thread)."""
    lines: list[str] = []
    found = threading.Event()

    def read() -> None:
        for line in process.stdout:
            lines.append(line)
            if wanted in line:
                found.set()
                return

    threading.Thread(target=read, daemon=True).start()
    found.wait(seconds)
    return lines


def test_serve_manifest_runs_the_container_as_a_local_process(tmp_path: Path) -> None:
    manifest = tmp_path / "isvc.yaml"
    manifest.write_text(yaml.safe_dump(_service(_container(),
                                               volumes=[{"name": "tmp", "emptyDir": {}}])))
    port = _free_port()
    env = dict(os.environ, MLFLOW_TRACKING_URI="http://leak.example")
    process = subprocess.Popen([str(MLSPEC), "serve", "--manifest", str(manifest), "--port",
                                str(port)], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        seen = _wait_json(f"http://127.0.0.1:{port}/v2/health/ready", process)
        assert seen["bind"] == ["127.0.0.1", port]
        assert "MLFLOW_TRACKING_URI" not in seen["env"]
        folder = next((tmp_path / ".mlspec" / "serve").glob("iris-*")).resolve()
        tmp = folder / "volumes" / "tmp"
        assert seen["env"]["HOME"] == seen["env"]["TMPDIR"] == str(tmp)  # /tmp is the emptyDir
        assert seen["env"]["PATH"].split(os.pathsep)[0] == str(Path(sys.executable).parent)
        assert Path(seen["cwd"]) == folder / "root"
        child = int((folder / "pid").read_text())
        # mlspec probes readiness itself (every 0.2 s): wait for its line before stopping it.
        lines = _lines_until(process, f"ready: http://127.0.0.1:{port}")
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        output, _ = process.communicate(timeout=20)
    assert process.returncode == 0, output
    assert any(f"ready: http://127.0.0.1:{port}" in line for line in lines), lines
    with pytest.raises(ProcessLookupError):
        os.kill(child, 0)


def test_serve_needs_a_model_or_a_manifest(tmp_path: Path) -> None:
    done = subprocess.run([str(MLSPEC), "serve"], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 2 and "give MODEL_URI" in done.stderr
    done = subprocess.run([str(MLSPEC), "serve", "m", "--manifest", "x.yaml"], cwd=tmp_path,
                          capture_output=True, text=True)
    assert done.returncode == 2 and "--manifest takes the model" in done.stderr


def test_a_compiled_deploy_template_is_served_only_pinned(tmp_path: Path) -> None:
    """``serving/inferenceservice.yaml`` names models:/NAME/unpinned; --model-version pins it
    the way the deploy step does, and nothing else in the container changes."""
    from mlspec.commands.rehearsal.serving import load_predictor, pinned
    from mlspec.compile.build import render_target
    from mlspec.errors import UsageError
    from mlspec.spec.loader import load_spec

    project = load_spec(str(REPO / "examples" / "iris" / "mlproject.yaml"), None).project
    files = {f.path: f.content for f in render_target(project, "serving")}
    manifest = tmp_path / "isvc.yaml"
    manifest.write_text(files["serving/inferenceservice.yaml"])
    service, container, _ = load_predictor(manifest, None)
    with pytest.raises(UsageError, match="give --model-version N"):
        pinned(service, container, None, str(manifest))
    service2, container2 = pinned(service, container, 4, str(manifest))
    assert container2["args"][1] == "models:/iris-classifier/4"
    assert {**container2, "args": container["args"]} == container
    assert service2["metadata"]["annotations"]["mlspec.dev/model-uri"] == \
        "models:/iris-classifier/4"
    with pytest.raises(UsageError, match="already pinned"):
        pinned(service2, container2, 5, str(manifest))
    done = subprocess.run([str(MLSPEC), "serve", "--manifest", str(manifest)], cwd=tmp_path,
                          capture_output=True, text=True)
    assert done.returncode == 2 and "deploy template" in done.stderr, done.stderr


def test_the_server_refuses_the_unpinned_placeholder(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "mlspec.runtime", "serve",
                           "models:/iris-classifier/unpinned", "--port", str(_free_port())],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "deploy template's placeholder" in done.stderr and "Traceback" not in done.stderr
