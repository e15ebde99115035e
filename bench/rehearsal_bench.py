"""Benchmark: the Tekton rehearsal (`mlspec run --engine tekton`) beside `mlspec run` (kfp.local).

The same spec (the iris example on a real ``mlflow server`` at 127.0.0.1 with proxied artifacts,
as a cluster would use it) through both engines, interleaved, each a fresh process: the
rehearsal compiles for Tekton and runs every TaskRun's steps as processes in fresh folders;
``mlspec run`` compiles for KFP and runs kfp.local's subprocess runner. Both end with a new
registered version on the server. Prints the median and minimum wall time of each and the ratio
rehearsal / kfp.local (the rehearsal starts one Python process per step; kfp.local one per task).

    .venv/bin/python bench/rehearsal_bench.py [--repeats 3] [--spec examples/iris/mlproject.yaml]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import yaml

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_server(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    server = subprocess.Popen(
        [str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1", "--backend-store-uri", f"sqlite:///{folder / 'backend.db'}",
         "--artifacts-destination", str(folder / "artifacts")],
        cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2):
                return server, url
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("mlflow server did not start within 60 s")


def _timed(args: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--spec", default=str(REPO / "examples" / "iris" / "mlproject.yaml"))
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        server, url = _start_server(root)
        try:
            data = yaml.safe_load(Path(options.spec).read_text())
            data.setdefault("profiles", {})["bench"] = {
                "registry": {"tracking_uri": url, "credentials_secret": "mlflow-credentials"}}
            (root / "mlproject.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
            (root / "creds.env").write_text("MLFLOW_TRACKING_USERNAME=bench\n")
            mlspec = str(BIN / "mlspec")
            runs = {
                "rehearsal (tekton)": [mlspec, "run", "mlproject.yaml", "--profile", "bench",
                                       "--engine", "tekton", "--secret-env",
                                       "mlflow-credentials=creds.env"],
                "mlspec run (kfp.local)": [mlspec, "run", "mlproject.yaml", "--profile", "bench"],
            }
            times: dict[str, list[float]] = {name: [] for name in runs}
            for repeat in range(options.repeats):
                for name, args in runs.items():
                    times[name].append(_timed(args, root))
                    print(f"  repeat {repeat + 1}/{options.repeats}  {name:24} "
                          f"{times[name][-1]:6.1f} s", file=sys.stderr)
        finally:
            server.terminate()
            server.wait(timeout=20)
    print(f"{'engine':24} {'median s':>9} {'min s':>7}")
    for name, values in times.items():
        print(f"{name:24} {statistics.median(values):9.1f} {min(values):7.1f}")
    rehearsal, kfp = (statistics.median(v) for v in times.values())
    print(f"ratio rehearsal / kfp.local: {rehearsal / kfp:.2f}")


if __name__ == "__main__":
    main()
