#!/usr/bin/env python
"""Serving benchmark: mlspec's server vs tuned MLServer and KServe's model server, side by side.

Same scikit-learn model (a 20-feature LogisticRegression), same load generator (wrk with a Lua
script POSTing one Open Inference Protocol v2 body), same host (127.0.0.1), one run:

- ``mlserver``: MLServer + mlserver-sklearn in ``bench/.venv-mlserver`` (created on first use),
  tuned (``debug: false``, ``parallel_workers: 0``);
- ``kserve``: KServe's own Python model server (PyPI ``kserve``, its ``ModelServer`` on
  FastAPI/uvicorn) in ``bench/.venv-kserve``, serving the same joblib file through a
  ``kserve.Model`` as a KServe user writes one (``get_predict_input`` / ``get_predict_response``,
  the helpers KServe's scikit-learn server uses; that server itself is not on PyPI). Latency
  logging and gRPC off. KServe hard-codes ``0.0.0.0``; the script binds it to 127.0.0.1 by
  overriding uvicorn's ``host``, nothing else;
- ``floor``: a bare ASGI app under uvicorn (uvloop + httptools) that only parses the body and
  calls ``predict`` - no validation, no metrics: the floor any server pays;
- ``mlspec``: ``python -m mlspec.runtime.serving.server`` with metrics and online drift on (the
  model folder carries a reference profile);
- ``mlspec-split``: the same server hosting a champion and a candidate (the same folder
  registered twice in a sqlite registry), split 90/10 (``--candidate --traffic-percent 10``),
  both with metrics and drift on.

Prints req/s, p50/p99 latency and errors per server, and ratios against MLServer and KServe.
Run with the project venv: ``.venv/bin/python bench/serve_bench.py [--quick] [--rounds N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PY = Path(sys.executable)
MLSERVER_VENV = HERE / ".venv-mlserver"
MLSERVER_PACKAGES = ["mlserver", "mlserver-sklearn", "uvloop==0.21.0", "uvicorn", "httptools"]
KSERVE_VENV = HERE / ".venv-kserve"
KSERVE_PACKAGES = ["kserve==0.21.0", "joblib"]
PEERS = ("mlserver", "kserve")
N_FEATURES = 20
MODEL_NAME = "lr"

FLOOR_APP = '''
import joblib, numpy as np
try:
    import orjson; loads, dumps = orjson.loads, orjson.dumps
except ImportError:
    import json; loads = json.loads; dumps = lambda o: json.dumps(o).encode()
MODEL = joblib.load(%(model)r)

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    if scope["method"] == "GET":  # readiness probe of the benchmark
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    tensor = loads(body)["inputs"][0]
    rows = np.asarray(tensor["data"], dtype=np.float64).reshape(tensor["shape"])
    out = MODEL.predict(rows)
    payload = dumps({"model_name": "lr", "outputs": [{"name": "predict", "shape": [len(out)],
                     "datatype": "INT64", "data": out.tolist()}]})
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": payload})
'''

KSERVE_APP = '''
import argparse

import joblib
import kserve.protocol.rest.server as rest
import uvicorn
from kserve import Model, ModelServer
from kserve.utils.utils import get_predict_input, get_predict_response


class LocalConfig(uvicorn.Config):
    """KServe's REST server passes host="0.0.0.0"; a benchmark listens on 127.0.0.1 only."""

    def __init__(self, *args, **kwargs):
        kwargs["host"] = "127.0.0.1"
        super().__init__(*args, **kwargs)


rest.uvicorn.Config = LocalConfig


class JoblibModel(Model):
    def __init__(self, name, path):
        super().__init__(name)
        self.path = path
        self.load()

    def load(self):
        self.model = joblib.load(self.path)
        self.ready = True
        return self.ready

    def predict(self, payload, headers=None):
        rows = get_predict_input(payload)
        return get_predict_response(payload, self.model.predict(rows), self.name)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--http_port", type=int, required=True)
    args, _ = parser.parse_known_args()
    ModelServer(http_port=args.http_port, enable_grpc=False,
                enable_latency_logging=False).start([JoblibModel(args.name, args.model)])
'''

WRK_LUA = '''
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = %(body)s
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT {\\"requests\\": %%d, \\"duration_us\\": %%d, \\"p50_us\\": %%d, \\"p99_us\\": %%d, " ..
    "\\"connect\\": %%d, \\"read\\": %%d, \\"write\\": %%d, " ..
    "\\"status\\": %%d, \\"timeout\\": %%d}\\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.status, e.timeout))
end
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_venv(venv: Path, packages: list[str]) -> Path:
    """Create a peer's own venv with ``packages`` (once; a changed list re-installs)."""
    bin_dir = venv / "bin"
    stamp = venv / ".complete"
    wanted = " ".join(packages) + "\n"
    if (bin_dir / "python").exists() and stamp.exists() and stamp.read_text() == wanted:
        return bin_dir
    import sklearn

    print(f"creating {venv} (one time) ...", flush=True)
    base = Path(getattr(sys, "_base_executable", sys.executable))
    subprocess.run([str(base), "-m", "venv", str(venv)], check=True)
    # Same scikit-learn as the project so every server loads the very same fitted model.
    subprocess.run([str(bin_dir / "pip"), "install", "-q", *packages,
                    f"scikit-learn=={sklearn.__version__}"], check=True)
    stamp.write_text(wanted)
    return bin_dir


def train_model(work: Path) -> tuple[Path, Path, list[float]]:
    """A 20-feature LogisticRegression: an MLflow folder (with reference profile) and a joblib."""
    import joblib
    import mlflow.sklearn
    import numpy as np
    import pandas as pd
    from mlflow.models import infer_signature
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    from mlspec.runtime.features import FeatureSpec
    from mlspec.runtime.profile import PROFILE_FILE, build_profile

    X, y = make_classification(n_samples=2000, n_features=N_FEATURES, n_informative=10,
                               random_state=0)
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(N_FEATURES)])
    model = LogisticRegression(max_iter=1000).fit(frame, y)
    folder = work / "mlflow-model"
    mlflow.sklearn.save_model(model, str(folder), signature=infer_signature(frame, y),
                              pip_requirements=[])
    profile = build_profile(frame, [FeatureSpec(c, "float") for c in frame.columns])
    (folder / PROFILE_FILE).write_text(json.dumps(profile))
    joblib_path = work / "mlserver" / "model.joblib"
    joblib_path.parent.mkdir()
    # MLServer loads a plain joblib; fit on an ndarray so it does not warn on every request.
    joblib.dump(LogisticRegression(max_iter=1000).fit(X, y), joblib_path)
    return folder, joblib_path, [round(float(v), 6) for v in np.asarray(X[0])]


def register_two_versions(work: Path, model_dir: Path) -> str:
    """The same model folder (reference profile included) registered twice in a sqlite
    registry, as versions 1 and 2: the champion and the candidate of ``mlspec-split``."""
    import mlflow

    from mlspec.runtime.registry import point_mlflow_at

    tracking_uri = f"sqlite:///{work / 'registry.db'}"
    point_mlflow_at(tracking_uri)  # this process only: the servers started later get --tracking-uri
    for _ in range(2):
        with mlflow.start_run() as run:
            mlflow.log_artifacts(str(model_dir), "model")
        mlflow.register_model(f"runs:/{run.info.run_id}/model", MODEL_NAME)
    return tracking_uri


def wait_ready(port: int, proc: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/health/ready", timeout=1):
                return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError("server did not become ready")


def check_answer(port: int, body: bytes) -> None:
    """One real request: a 200 with a prediction, so a benchmark never times an error path."""
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v2/models/{MODEL_NAME}/infer",
                                 data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        out = json.loads(resp.read())
    assert out["outputs"][0]["data"][0] in (0, 1), out


def start(name: str, work: Path, model_dir: Path, joblib_path: Path,
          bins: dict[str, Path], registry: str | None) -> tuple[subprocess.Popen, int]:
    port = free_port()
    log = open(work / f"{name}.log", "w")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if name == "mlspec":
        cmd = [str(PY), "-m", "mlspec.runtime.serving.server", str(model_dir),
               "--host", "127.0.0.1", "--port", str(port), "--name", MODEL_NAME]
        env["PYTHONPATH"] = str(REPO)
        cwd = REPO
    elif name == "mlspec-split":
        cmd = [str(PY), "-m", "mlspec.runtime.serving.server", f"models:/{MODEL_NAME}/1",
               "--candidate", f"models:/{MODEL_NAME}/2", "--traffic-percent", "10",
               "--tracking-uri", str(registry), "--host", "127.0.0.1", "--port", str(port),
               "--admin-port", "0"]
        env["PYTHONPATH"] = str(REPO)
        cwd = work
    elif name == "floor":
        (work / "floor_app.py").write_text(FLOOR_APP % {"model": str(joblib_path)})
        cmd = [str(bins["mlserver"] / "python"), "-m", "uvicorn", "floor_app:app", "--host",
               "127.0.0.1", "--port", str(port), "--loop", "uvloop", "--http", "httptools",
               "--no-access-log", "--log-level", "warning"]
        cwd = work
    elif name == "kserve":
        (work / "kserve_app.py").write_text(KSERVE_APP)
        cmd = [str(bins["kserve"] / "python"), "kserve_app.py", "--model", str(joblib_path),
               "--name", MODEL_NAME, "--http_port", str(port)]
        cwd = work
    else:
        folder = joblib_path.parent
        (folder / "settings.json").write_text(json.dumps({
            "debug": False, "parallel_workers": 0, "host": "127.0.0.1", "http_port": port,
            "grpc_port": free_port(), "metrics_port": free_port()}))
        (folder / "model-settings.json").write_text(json.dumps({
            "name": MODEL_NAME, "implementation": "mlserver_sklearn.SKLearnModel",
            "parameters": {"uri": "./model.joblib", "version": "v1"}}))
        cmd = [str(bins["mlserver"] / "mlserver"), "start", str(folder)]
        cwd = folder
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        wait_ready(port, proc)
    except Exception:
        stop(proc)
        raise RuntimeError(f"{name} did not start; see {work / (name + '.log')}") from None
    return proc, port


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


class Scraper:
    """Scrapes /metrics every second during a run, as Prometheus would (more often, in fact),
    so the online drift is really computed while the load runs."""

    def __init__(self, port: int) -> None:
        import threading

        self.port = port
        self.count = 0
        self.drift_series = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as r:
                text = r.read().decode()
            self.count += 1
            self.drift_series = sum(1 for x in text.splitlines()
                                    if x.startswith("mlspec_feature_drift{"))


def wrk(port: int, script: Path, seconds: int, connections: int, threads: int) -> dict:
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s",
         "-s", str(script), f"http://127.0.0.1:{port}/v2/models/{MODEL_NAME}/infer"],
        capture_output=True, text=True, check=True)
    line = next(x for x in out.stdout.splitlines() if x.startswith("RESULT "))
    r = json.loads(line[len("RESULT "):])
    errors = r["connect"] + r["read"] + r["write"] + r["status"] + r["timeout"]
    return {"rps": r["requests"] / (r["duration_us"] / 1e6), "p50_ms": r["p50_us"] / 1000,
            "p99_ms": r["p99_us"] / 1000, "errors": errors, "requests": r["requests"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="5 s runs instead of 20 s")
    ap.add_argument("--seconds", type=int, default=None)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=1, help="Interleaved rounds; medians reported")
    ap.add_argument("--servers", default="mlserver,kserve,floor,mlspec,mlspec-split")
    ap.add_argument("--json", help="Also write the figures here")
    args = ap.parse_args()
    seconds = args.seconds or (5 if args.quick else 20)
    if shutil.which("wrk") is None:
        print("error: wrk is not installed (apt-get install -y wrk)", file=sys.stderr)
        return 2
    servers = [s for s in args.servers.split(",") if s]
    bins = {}
    if {"mlserver", "floor"} & set(servers):
        bins["mlserver"] = ensure_venv(MLSERVER_VENV, MLSERVER_PACKAGES)
    if "kserve" in servers:
        bins["kserve"] = ensure_venv(KSERVE_VENV, KSERVE_PACKAGES)
    work = Path(tempfile.mkdtemp(prefix="mlspec-bench-"))
    model_dir, joblib_path, row = train_model(work)
    body = json.dumps({"inputs": [{"name": "input-0", "shape": [1, N_FEATURES],
                                   "datatype": "FP64", "data": row}]})
    registry = register_two_versions(work, model_dir) if "mlspec-split" in servers else None
    script = work / "infer.lua"
    script.write_text(WRK_LUA % {"body": json.dumps(body)})
    results: dict[str, list[dict]] = {s: [] for s in servers}
    for round_no in range(args.rounds):
        for name in servers:
            proc, port = start(name, work, model_dir, joblib_path, bins, registry)
            scraper = Scraper(port) if name.startswith("mlspec") else None
            try:
                check_answer(port, body.encode())
                wrk(port, script, 2, args.connections, args.threads)  # warm-up
                if scraper:
                    scraper.start()
                r = wrk(port, script, seconds, args.connections, args.threads)
            finally:
                if scraper:
                    scraper.stop()
                stop(proc)
            if scraper:
                r["scrapes"] = scraper.count
                r["drift_series"] = scraper.drift_series
            results[name].append(r)
            print(f"round {round_no + 1} {name:9s} {r['rps']:9.0f} req/s  p50 {r['p50_ms']:6.2f} ms"
                  f"  p99 {r['p99_ms']:6.2f} ms  errors {r['errors']}", flush=True)
    summary = {name: {k: statistics.median(r[k] for r in runs) for k in runs[0]}
               for name, runs in results.items()}
    print(f"\nconcurrency {args.connections}, {seconds} s per run, {args.rounds} round(s), "
          f"wrk -t{args.threads}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
    print(f"{'server':10s} {'req/s':>9s} {'p50 ms':>8s} {'p99 ms':>8s} {'errors':>7s}")
    for name, r in summary.items():
        print(f"{name:10s} {r['rps']:9.0f} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f} "
              f"{r['errors']:7.0f}")
    if "mlspec" in summary and "scrapes" in summary["mlspec"]:
        r = summary["mlspec"]
        print(f"mlspec: /metrics scraped {r['scrapes']:.0f} times during the run, "
              f"{r['drift_series']:.0f} mlspec_feature_drift series in the last scrape")
    if "mlspec" in summary and "mlspec-split" in summary:
        share = summary["mlspec-split"]["rps"] / summary["mlspec"]["rps"]
        print(f"mlspec-split (champion + candidate, 90/10) / mlspec (one model): {share:.1%} "
              "of the single-model req/s")
    for peer in (p for p in PEERS if p in summary):
        base = summary[peer]
        for name, r in summary.items():
            if name not in PEERS and name != "mlspec-split":
                print(f"{name} / {peer}: {r['rps'] / base['rps']:.2f}x req/s, "
                      f"p99 {r['p99_ms'] / base['p99_ms']:.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps({"seconds": seconds, "rounds": args.rounds,
                                               "connections": args.connections,
                                               "results": results, "median": summary}, indent=1))
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
