"""The monitoring loop end to end, with the real programs, on 127.0.0.1 only.

mlspec run (train + register v1) → mlspec serve → Prometheus (Debian) scraping it every second
and evaluating the compiled rules.yaml → normal traffic: no drift alert → drifted traffic: the
drift alert fires → Alertmanager (Debian), configured from the compiled alertmanager.yaml, posts
it to ``mlspec trigger serve`` → the trigger runs ``mlspec run`` → the registry has version 2.

Bounded (every wait shares one deadline), and every process is started in its own session and
killed with its group in ``finally``. The test prints a timeline of what happened when.
"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from mlspec.compile.targets import monitoring
from tests.conftest import program
from tests.e2e.live import Timeline, free_port, get_json, post_json, processes, wait_for

REPO = Path(__file__).resolve().parents[2]
IRIS = REPO / "examples" / "iris" / "mlproject.yaml"
BUDGET_S = 170.0
MODEL = "iris-classifier"
# The iris example's `test` profile, with a drift window short enough for a test (20s: the alert
# must hold for 5s); the rest of the spec is the example as it is.
E2E_PROFILE = {"monitoring": {"drift": {"window": "20s"}, "performance": {"window": "1m"}}}

pytestmark = pytest.mark.slow


def _spec(workdir: Path) -> Path:
    data = yaml.safe_load(IRIS.read_text())
    base = (data.get("profiles") or {}).get("test", {})
    data.setdefault("profiles", {})["e2e"] = _merge(base, E2E_PROFILE)
    path = workdir / "mlproject.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _project(spec: Path):
    from mlspec.spec.loader import load_spec

    loaded = load_spec(str(spec), "e2e")
    assert loaded.project is not None
    return loaded.project


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for key, value in over.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(
            out.get(key), dict) else value
    return out


def _iris_rows(shift: float, count: int, seed: int) -> tuple[dict[str, list[float]], list[int]]:
    """Rows drawn from the iris data, every feature moved by ``shift``, and their labels."""
    import numpy as np
    from sklearn.datasets import load_iris

    iris = load_iris()
    picked = np.random.default_rng(seed).integers(0, len(iris.data), count)
    rows = iris.data[picked] + shift
    names = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    columns = {name: rows[:, i].round(2).tolist() for i, name in enumerate(names)}
    return columns, iris.target[picked].tolist()


def _send(port: int, columns: dict[str, list[float]], batch: int = 25) -> list[tuple[str, int]]:
    """Infer in batches; the response ids with the first row of each batch."""
    size = len(next(iter(columns.values())))
    url = f"http://127.0.0.1:{port}/v2/models/{MODEL}/infer"
    answered = []
    for start in range(0, size, batch):
        inputs = [{"name": name, "shape": [len(values[start:start + batch])], "datatype": "FP64",
                   "data": values[start:start + batch]} for name, values in columns.items()]
        answer = post_json(url, {"inputs": inputs})
        assert answer["model_name"] == MODEL
        answered.append((answer["id"], start))
    return answered


def _feedback(port: int, answered: list[tuple[str, int]], labels: list[int],
              batch: int = 25) -> None:
    """Ground truth for earlier responses, by response id."""
    for request_id, start in answered:
        post_json(f"http://127.0.0.1:{port}/feedback",
              {"ids": [request_id], "labels": labels[start:start + batch]})


def _query(prom: int, expr: str) -> list[dict]:
    url = f"http://127.0.0.1:{prom}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    return get_json(url)["data"]["result"]


def _drift_alerts(prom: int) -> list[dict]:
    alerts = get_json(f"http://127.0.0.1:{prom}/api/v1/alerts")["data"]["alerts"]
    return [a for a in alerts if a["labels"].get("alertname") == monitoring.ALERT_DRIFT]


def _drift_values(prom: int) -> dict[str, float]:
    result = get_json(f"http://127.0.0.1:{prom}/api/v1/query?query=mlspec_feature_drift")
    return {r["metric"]["feature"]: round(float(r["value"][1]), 3)
            for r in result["data"]["result"]}


def _versions(tracking_uri: str) -> list[int]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    found = client.search_model_versions(f"name='{MODEL}'")
    return sorted(int(v.version) for v in found)


def test_drift_alert_reaches_the_trigger_and_retrains(tmp_path: Path, capsys) -> None:
    prometheus = program("prometheus")
    alertmanager = program("prometheus-alertmanager", "alertmanager")
    timeline = Timeline(BUDGET_S)
    mlspec = [sys.executable, "-m", "mlspec"]
    spec = _spec(tmp_path)
    tracking_uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    logs = tmp_path / "logs"
    logs.mkdir()
    try:
        with processes(logs) as procs:
            # 1. Compile the monitoring target with the short-window profile.
            build = tmp_path / "build"
            compiled = subprocess.run(
                [*mlspec, "compile", str(spec), "--profile", "e2e", "--target", "monitoring",
                 "-o", str(build)], capture_output=True, text=True, timeout=60, cwd=tmp_path)
            assert compiled.returncode == 0, compiled.stdout + compiled.stderr
            rules = build / "monitoring" / "rules.yaml"
            timeline("compiled the monitoring target (profile e2e)")

            # 2. Start the trigger, Alertmanager and Prometheus (they need no model)...
            serve_port, trigger_port, am_port, prom_port = (free_port() for _ in range(4))
            procs.start("trigger", [*mlspec, "trigger", "serve", "--spec", str(spec), "--profile",
                                    "e2e", "--port", str(trigger_port), "--workdir", str(tmp_path)],
                        tmp_path)
            am_config = yaml.safe_load((build / "monitoring" / "alertmanager.yaml").read_text())
            (route,) = am_config["route"]["routes"]
            route.update(group_wait="1s", group_interval="5s")
            for receiver in am_config["receivers"]:
                for hook in receiver.get("webhook_configs", []):
                    # The compiled URL is the in-cluster retraining trigger; here it is ours.
                    hook["url"] = f"http://127.0.0.1:{trigger_port}/alerts"
            (tmp_path / "alertmanager.yaml").write_text(yaml.safe_dump(am_config))
            procs.start("alertmanager", [
                alertmanager, f"--config.file={tmp_path / 'alertmanager.yaml'}",
                f"--storage.path={tmp_path / 'am-data'}",
                f"--web.listen-address=127.0.0.1:{am_port}", "--cluster.listen-address="],
                tmp_path)
            prom_config = {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(rules)],
                "alerting": {"alertmanagers": [
                    {"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]},
                "scrape_configs": [{"job_name": "mlspec", "metrics_path": "/metrics",
                                    "static_configs": [{"targets": [f"127.0.0.1:{serve_port}"]}]}],
            }
            (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(prom_config))
            procs.start("prometheus", [
                prometheus, f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'prom-data'}",
                f"--web.listen-address=127.0.0.1:{prom_port}"], tmp_path)

            # 3. ...while the model trains and registers as version 1 (the compiled pipeline,
            # run locally), then serve it.
            train = procs.start("train", [*mlspec, "run", str(spec), "--profile", "e2e"], tmp_path)
            assert train.wait(timeout=max(1.0, timeline.remaining())) == 0, procs.tail("train")
            timeline("trained and registered version 1 (mlspec run)")
            procs.start("serve", [*mlspec, "serve", f"models:/{MODEL}/1", "--tracking-uri",
                                  tracking_uri, "--port", str(serve_port), "--name", MODEL],
                        tmp_path)
            wait_for("the trigger", lambda: get_json(f"http://127.0.0.1:{trigger_port}/healthz"),
                  timeline, procs)
            wait_for("Alertmanager", lambda: get_json(f"http://127.0.0.1:{am_port}/api/v2/status"),
                  timeline, procs)
            wait_for("Prometheus to load the rules", lambda: get_json(
                f"http://127.0.0.1:{prom_port}/api/v1/rules")["data"]["groups"], timeline, procs)
            wait_for("the model server", lambda: get_json(
                f"http://127.0.0.1:{serve_port}/v2/health/ready") is not None, timeline, procs)
            wait_for("Prometheus to scrape the server", lambda: get_json(
                f"http://127.0.0.1:{prom_port}/api/v1/query?query=up")["data"]["result"][0]["value"][1]
                == "1", timeline, procs)
            timeline("server, trigger, Alertmanager and Prometheus up")

            # 4. Normal traffic: drift is measured, and stays under the threshold.
            columns, labels = _iris_rows(0.0, 300, seed=1)
            answered = _send(serve_port, columns)
            _feedback(serve_port, answered, labels)
            timeline("sent 300 rows of normal traffic and their ground truth to /feedback")
            normal = wait_for("drift values in Prometheus",
                           lambda: len(_drift_values(prom_port)) == 4 and _drift_values(prom_port),
                           timeline, procs)
            timeline(f"drift measured on normal traffic: {normal}")
            # Normal traffic goes on for longer than the alert's `for` (5s) plus a few
            # evaluations, and no drift alert shows up, pending or firing.
            trickle, _ = _iris_rows(0.0, 200, seed=3)
            quiet_until, sent = time.monotonic() + 8, 0
            while time.monotonic() < quiet_until:
                assert _drift_alerts(prom_port) == [], timeline.text()
                _send(serve_port, {k: v[sent % 200:sent % 200 + 5] for k, v in trickle.items()})
                sent += 5
                time.sleep(0.25)
            timeline(f"no drift alert (pending or firing) over 8s of normal traffic (+{sent} rows)")
            # The other recording rules work on the real server's series too.
            names = monitoring.names_for(_project(spec))
            signals = {}
            for record in (names.requests_rate, names.error_ratio, names.latency_p99,
                           names.performance):
                found = _query(prom_port, record)
                assert len(found) == 1 and found[0]["metric"]["model"] == MODEL, (record, found)
                signals[record] = round(float(found[0]["value"][1]), 4)
            assert signals[names.requests_rate] > 0 and signals[names.error_ratio] == 0
            assert signals[names.latency_p99] > 0  # its speed is bench/serve_bench.py's to measure
            assert signals[names.performance] >= 0.85  # accuracy from /feedback
            timeline(f"recording rules on normal traffic: {signals}")

            # 5. Drifted traffic: every feature moves far off the training data.
            _send(serve_port, _iris_rows(6.0, 1000, seed=2)[0])
            timeline("sent 1000 rows of drifted traffic (+6 on every feature)")
            wait_for("a pending drift alert", lambda: _drift_alerts(prom_port), timeline, procs)
            timeline(f"drift alert pending; drift now {_drift_values(prom_port)}")
            firing = wait_for("a firing drift alert", lambda: [
                a for a in _drift_alerts(prom_port) if a["state"] == "firing"], timeline, procs)
            timeline("drift alert firing for features "
                     + ", ".join(sorted(a["labels"]["feature"] for a in firing)))
            assert all(a["labels"]["mlspec_retrain"] == "true" for a in firing)

            # 6. Alertmanager → trigger → mlspec run → a new registered version.
            trigger_url = f"http://127.0.0.1:{trigger_port}/status"
            wait_for("Alertmanager to deliver to the trigger",
                  lambda: get_json(trigger_url)["runs"], timeline, procs)
            timeline("trigger received the alert and started a retraining run")
            run = wait_for("the retraining run to finish",
                        lambda: (get_json(trigger_url)["last"] or {}).get("finished_at")
                        and get_json(trigger_url)["last"], timeline, procs, interval=0.5)
            assert run["ok"], f"retraining failed: {run}\n{Path(run['log']).read_text()[-2000:]}"
            assert any(r.startswith(monitoring.ALERT_DRIFT) for r in run["reason"])
            timeline(f"retraining run finished in {run['seconds']}s: registered version "
                     f"{run['registration']['version']}")
            assert _versions(tracking_uri) == [1, 2]
            assert len(get_json(trigger_url)["runs"]) == 1  # debounced: one run for the burst
            timeline("registry has versions 1 and 2")
    finally:
        with capsys.disabled():
            print(f"\nmonitoring loop timeline ({tmp_path}):\n{timeline.text()}")
