"""Fixtures for the model server's tests: an iris model made by the runtime's own steps, and a
real server process serving it on a free port."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
SPEC = REPO / "examples" / "iris" / "mlproject.yaml"
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
MAX_BODY = 64 * 1024


def _runtime(*args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "mlspec.runtime", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def iris(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The iris data and a model folder made by the runtime's ingest and train steps."""
    import pandas as pd

    work = tmp_path_factory.mktemp("iris-serve")
    data, model = work / "data.parquet", work / "model"
    _runtime("ingest", "--spec", str(SPEC), "--out", f"dataset={data}")
    _runtime("train", "--spec", str(SPEC), "--in", f"train={data}", "--out", f"model={model}")
    frame = pd.read_parquet(data)
    return {"model": model, "rows": frame[FEATURES].to_numpy().tolist(),
            "labels": frame["target"].tolist()}


@pytest.fixture(scope="module")
def server(iris: dict):
    """Base URL of a server started with ``--port 0`` (it prints the port it got)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlspec.runtime.serving.server", str(iris["model"]), "--host",
         "127.0.0.1", "--port", "0", "--max-body", str(MAX_BODY), "--drift-window", "500"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if "http://" not in line:
        proc.kill()
        pytest.fail(f"server did not start: {line}{proc.stderr.read()}")
    base = line.strip().rsplit(" ", 1)[-1]
    yield base
    proc.terminate()
    assert proc.wait(10) == 0  # SIGTERM is a clean shutdown


def call(base: str, path: str, body: object = None, method: str | None = None,
         raw: bytes | None = None) -> tuple[int, object]:
    """An HTTP exchange with a server under test: (status, JSON body or text)."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    req = urllib.request.Request(base + path, data=data, method=method or (
        "POST" if data is not None else "GET"), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            status, text = resp.status, resp.read()
    except urllib.error.HTTPError as err:
        status, text = err.code, err.read()
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text.decode()
