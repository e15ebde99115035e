"""Delivery on a laptop, end to end: a canary rollout decided by real Prometheus on live metrics.

A sqlite registry holds three versions of the iris model, made by the runtime's own steps:
v1 (the champion, alias ``production``), v2 (trained the same way on another seed: good), and
v3 (trained on corrupted labels — every class shifted by one — so it predicts confidently and
wrongly; nothing in the server knows). For each candidate:

``mlspec serve models:/NAME/1 --candidate models:/NAME/N`` with Prometheus (Debian) scraping it
every second; a client thread sends iris rows and posts their true labels to /feedback, as
ground truth arrives in production; the rollout steps the compiled canary plan (10 % → 50 % →
100 %, each step held 6 s) and judges each step's gates. v3's rollout is the runtime's own step
(``python -m mlspec.runtime rollout``) on the ``serving/rollout-plan.yaml`` that ``mlspec compile``
wrote, as a pipeline container would run it; v2's is ``mlspec rollout``.

* v2: every gate passes, traffic ends at 100 % on v2, ``production`` moves to v2, exit 0.
* v3: its accuracy on the feedback fails the performance gate at the first step; the traffic is
  restored to what it was (0 %), ``production`` stays on v1, exit 1, and the report and the
  version's tags name the gate and the measured value.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import program
from tests.e2e.live import Timeline, free_port, get_json, post_json, processes, wait_for

REPO = Path(__file__).resolve().parents[2]
IRIS = REPO / "examples" / "iris" / "mlproject.yaml"
MODEL = "iris-classifier"
BUDGET_S = 240.0
HOLD = "6s"

pytestmark = pytest.mark.slow


def _spec(work: Path) -> tuple[Path, str]:
    """The iris example with a profile ``e2e`` on a sqlite registry in ``work``."""
    tracking_uri = f"sqlite:///{work / 'mlruns.db'}"
    data = yaml.safe_load(IRIS.read_text())
    data["profiles"]["e2e"] = {"registry": {"tracking_uri": tracking_uri}}
    path = work / "mlproject.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path, tracking_uri


def _register(work: Path, spec_path: Path, name: str, corrupt: bool, seed: int) -> str:
    """Train and register one version with the runtime's steps; returns the version."""
    import pandas as pd

    from mlspec.runtime.steps.evaluate import run_evaluate
    from mlspec.runtime.steps.ingest import run_ingest
    from mlspec.runtime.steps.register import run_register
    from mlspec.runtime.steps.split import run_split
    from mlspec.runtime.steps.train import run_train
    from mlspec.spec.loader import load_spec

    project = load_spec(str(spec_path), "e2e").project
    assert project is not None
    spec = project.model_dump(mode="json", exclude={"profiles"})
    spec["model"]["params"]["random_state"] = seed
    folder = work / name
    folder.mkdir()
    dataset = folder / "dataset.parquet"
    run_ingest(spec, str(dataset))
    if corrupt:  # every label shifted by one class: a confident, wrong model
        frame = pd.read_parquet(dataset)
        frame["target"] = (frame["target"] + 1) % 3
        frame.to_parquet(dataset)
    paths = {k: str(folder / v) for k, v in {"train": "train.parquet", "test": "test.parquet",
                                             "model": "model", "metrics": "metrics.json",
                                             "out": "registration.json"}.items()}
    run_split(spec, str(dataset), paths["train"], paths["test"], None)
    run_train(spec, paths["train"], paths["model"])
    run_evaluate(spec, paths["model"], paths["test"], paths["metrics"])
    return run_register(spec, paths["model"], paths["metrics"], None, None, paths["out"])["version"]


def _iris() -> tuple[list[list[float]], list[int]]:
    from sklearn.datasets import load_iris

    data = load_iris()
    return data.data.tolist(), data.target.tolist()


class Client(threading.Thread):
    """Production traffic: iris rows, one per request, and their true labels as feedback."""

    def __init__(self, port: int, interval_s: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.base = f"http://127.0.0.1:{port}"
        self.interval_s = interval_s
        self.rows, self.labels = _iris()
        self.stop = threading.Event()
        self.sent = 0
        self.errors: list[str] = []

    def run(self) -> None:
        i = 0
        while not self.stop.is_set():
            row, label = self.rows[i % len(self.rows)], self.labels[i % len(self.rows)]
            i += 1
            try:
                answer = post_json(f"{self.base}/v2/models/{MODEL}/infer", {"inputs": [
                    {"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": row}]})
                post_json(f"{self.base}/feedback", {"ids": [answer["id"]], "labels": [label]})
                self.sent += 1
            except Exception as exc:  # noqa: BLE001 - recorded, the test fails on any
                self.errors.append(repr(exc))
            time.sleep(self.interval_s)


def _warm_up(port: int, versions: list[str]) -> None:
    """Fill each version's drift and feedback windows before Prometheus looks (a canary at 10 %
    would otherwise be judged on its first handful of rows)."""
    rows, labels = _iris()
    for version in versions:
        url = f"http://127.0.0.1:{port}/v2/models/{MODEL}/versions/{version}/infer"
        for start in range(0, len(rows), 25):
            chunk = rows[start:start + 25]
            answer = post_json(url, {"inputs": [{"name": "input-0", "shape": [len(chunk), 4],
                                                 "datatype": "FP64",
                                                 "data": [v for r in chunk for v in r]}]})
            post_json(f"http://127.0.0.1:{port}/feedback",
                      {"ids": [answer["id"]], "labels": labels[start:start + 25]})


def _command(work: Path, spec: Path, version: str, admin: str, cli: str) -> list[str]:
    """``mlspec rollout`` (the plan rendered from the spec), or the runtime's own ``rollout``
    step on the plan file ``mlspec compile`` wrote, as a pipeline container runs it."""
    report = work / f"rollout-v{version}.json"
    if cli == "mlspec":
        return [sys.executable, "-m", "mlspec", "rollout", str(spec), "--profile", "e2e",
                "--local", admin, "--report", str(report)]
    from mlspec.spec.loader import load_spec

    build = work / "build"
    compiled = subprocess.run([sys.executable, "-m", "mlspec", "compile", str(spec), "--profile",
                               "e2e", "--target", "serving", "-o", str(build)],
                              capture_output=True, text=True, timeout=120)
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr
    project = load_spec(str(spec), "e2e").project
    assert project is not None
    resolved = work / "resolved-spec.json"
    resolved.write_text(json.dumps(project.model_dump(mode="json", exclude={"profiles"})))
    return [sys.executable, "-m", "mlspec.runtime", "rollout", "--spec", str(resolved),
            "--in", f"plan={build / 'serving' / 'rollout-plan.yaml'}", "--out",
            f"report={report}", "--admin", admin]


def _rollout(work: Path, spec: Path, version: str, tracking_uri: str, timeline: Timeline,
             procs, prometheus: str, cli: str) -> tuple[subprocess.CompletedProcess, dict, dict]:
    """Serve v1 + candidate, scrape it, drive traffic, run the rollout; returns its result,
    report and the final traffic state."""
    serve_port, admin_port, prom_port = free_port(), free_port(), free_port()
    command = _command(work, spec, version, f"http://127.0.0.1:{admin_port}", cli)
    procs.start(f"serve-v{version}", [
        sys.executable, "-m", "mlspec", "serve", f"models:/{MODEL}/1", "--candidate",
        f"models:/{MODEL}/{version}", "--tracking-uri", tracking_uri, "--port", str(serve_port),
        "--admin-port", str(admin_port)], work)
    wait_for("the model server", lambda: get_json(
        f"http://127.0.0.1:{admin_port}/admin/traffic"), timeline, procs)
    _warm_up(serve_port, ["1", version])
    config = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
              "scrape_configs": [{"job_name": "mlspec", "static_configs": [
                  {"targets": [f"127.0.0.1:{serve_port}"]}]}]}
    folder = work / f"prometheus-v{version}"
    folder.mkdir()
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
    procs.start(f"prometheus-v{version}", [
        prometheus, f"--config.file={folder / 'prometheus.yml'}",
        f"--storage.tsdb.path={folder / 'data'}", f"--web.listen-address=127.0.0.1:{prom_port}"],
        folder)
    prom = f"http://127.0.0.1:{prom_port}"
    wait_for("two scrapes of the server", lambda: get_json(
        f"{prom}/api/v1/query?query=count_over_time(up[1m])>=2")["data"]["result"],
        timeline, procs)
    client = Client(serve_port)
    client.start()
    try:
        time.sleep(3)  # a few seconds of live traffic before the first step
        report_path = work / f"rollout-v{version}.json"
        done = subprocess.run(
            command + ["--version", version, "--prometheus", prom, "--hold", HOLD],
            cwd=work, capture_output=True, text=True, timeout=max(10.0, timeline.remaining()))
    finally:
        client.stop.set()
        client.join(10)
    assert not client.errors, client.errors[:3]
    assert client.sent > 50
    state = get_json(f"http://127.0.0.1:{admin_port}/admin/traffic")
    return done, json.loads(report_path.read_text()), state


def _version_info(tracking_uri: str, version: str) -> tuple[str | None, dict[str, str]]:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    champion = client.get_model_version_by_alias(MODEL, "production").version
    return str(champion), dict(client.get_model_version(MODEL, version).tags)


def test_a_good_candidate_is_promoted_and_a_bad_one_rolled_back(tmp_path: Path,
                                                                capsys) -> None:
    from mlflow import MlflowClient

    prometheus = program("prometheus")
    timeline = Timeline(BUDGET_S)
    spec, tracking_uri = _spec(tmp_path)
    versions = {name: _register(tmp_path, spec, name, corrupt, seed) for name, corrupt, seed in
                (("champion", False, 0), ("good", False, 1), ("corrupt", True, 2))}
    assert versions == {"champion": "1", "good": "2", "corrupt": "3"}
    MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri) \
        .set_registered_model_alias(MODEL, "production", "1")
    timeline("registered v1 (production), v2 (good), v3 (corrupted labels)")
    logs = tmp_path / "logs"
    logs.mkdir()
    with processes(logs) as procs:
        bad, bad_report, bad_state = _rollout(tmp_path, spec, "3", tracking_uri, timeline,
                                              procs, prometheus, cli="runtime")
        timeline(f"rollout of v3 ended: {bad_report['outcome']}: {bad_report['reason']}")
        champion_after_bad, bad_tags = _version_info(tracking_uri, "3")
        good, good_report, good_state = _rollout(tmp_path, spec, "2", tracking_uri, timeline,
                                                 procs, prometheus, cli="mlspec")
        timeline(f"rollout of v2 ended: {good_report['outcome']}")
    with capsys.disabled():
        print(f"\ntimeline:\n{timeline.text()}")

    # The bad candidate: rolled back at the first step by the accuracy gate, alias untouched.
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert bad_report["outcome"] == "rolled_back" and bad_report["restored"] is True
    assert len(bad_report["steps"]) == 1
    gates = {g["name"]: g for g in bad_report["steps"][0]["gates"]}
    accuracy = gates["performance-accuracy"]
    assert not accuracy["passed"] and accuracy["value"] < 0.85
    assert "gate performance-accuracy failed" in bad_report["reason"]
    assert bad_state["candidate_percent"] == 0  # as it was before the rollout
    assert champion_after_bad == "1"
    assert bad_tags["mlspec.rollout.outcome"] == "rolled_back"
    assert bad_tags["mlspec.rollout.step1.performance-accuracy"].startswith("fail ")

    # The good candidate: every step passed, 100 % on v2, production moved to v2.
    assert good.returncode == 0, good.stdout + good.stderr
    assert good_report["outcome"] == "promoted", good_report["reason"]
    assert [s["traffic_percent"] for s in good_report["steps"]] == [10, 50, 100]
    assert all(g["passed"] for s in good_report["steps"] for g in s["gates"])
    assert good_state["candidate_percent"] == 100
    champion, tags = _version_info(tracking_uri, "2")
    assert champion == "2"
    assert tags["mlspec.rollout.outcome"] == "promoted"
    assert f"promoted {MODEL} version 2; alias production -> version 2" in good.stdout


def _strategy_spec(work: Path, strategy: str, **rollout: object) -> Path:
    """The e2e spec with another rollout strategy (same registry)."""
    data = yaml.safe_load((work / "mlproject.yaml").read_text())
    data["serving"]["rollout"].update(strategy=strategy, **rollout)
    path = work / f"mlproject-{strategy}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_shadow_ab_and_blue_green_on_live_metrics(tmp_path: Path, capsys) -> None:
    """v3 (corrupted labels) as a shadow: its predictions disagree with v1's on the mirrored
    rows, rolled back on the agreement gate. v3 in an A/B split: the test on ground truth finds
    it worse. v2 blue-green: ready, smoke inference, switch, gates pass, promoted."""
    from mlflow import MlflowClient

    prometheus = program("prometheus")
    timeline = Timeline(BUDGET_S)
    spec, tracking_uri = _spec(tmp_path)
    versions = [_register(tmp_path, spec, name, corrupt, seed) for name, corrupt, seed in
                (("champion", False, 0), ("good", False, 1), ("corrupt", True, 2))]
    assert versions == ["1", "2", "3"]
    MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri) \
        .set_registered_model_alias(MODEL, "production", "1")
    timeline("registered v1 (production), v2 (good), v3 (corrupted labels)")
    runs = {}
    (tmp_path / "logs").mkdir()
    with processes(tmp_path / "logs") as procs:
        for strategy, version, extra in (("shadow", "3", {}),
                                         ("ab", "3", {"traffic_percent": 50, "min_samples": 30}),
                                         ("blue-green", "2", {})):
            work = tmp_path / strategy
            work.mkdir()
            path = _strategy_spec(tmp_path, strategy, **extra)
            runs[strategy] = _rollout(work, path, version, tracking_uri, timeline, procs,
                                      prometheus, cli="mlspec")
            timeline(f"{strategy} of v{version}: {runs[strategy][1]['outcome']}: "
                     f"{runs[strategy][1]['reason'][:120]}")
    with capsys.disabled():
        print(f"\ntimeline:\n{timeline.text()}")

    done, report, state = runs["shadow"]
    assert done.returncode == 1, done.stdout + done.stderr
    gates = {g["name"]: g for g in report["steps"][0]["gates"]}
    assert not gates["prediction-agreement"]["passed"]
    assert gates["prediction-agreement"]["value"] < 0.5
    assert gates["error-rate"]["passed"] and gates["latency-p99-seconds"]["passed"]
    assert state["mirror"] is False and state["candidate_percent"] == 0  # as before

    done, report, state = runs["ab"]
    assert done.returncode == 1, done.stdout + done.stderr
    (test,) = [g for g in report["steps"][0]["gates"] if g["name"] == "ab-test"]
    assert not test["passed"] and test["value"] < 0.05
    assert test["arms"]["candidate"]["samples"] >= 30 and test["arms"]["champion"]["samples"] >= 30
    assert "candidate worse than the champion" in report["reason"]
    assert state["candidate_percent"] == 0

    done, report, state = runs["blue-green"]
    assert done.returncode == 0, done.stdout + done.stderr
    assert report["outcome"] == "promoted" and report["smoke"].startswith("[")
    assert all(g["passed"] for g in report["steps"][0]["gates"])
    assert state["candidate_percent"] == 100
    champion, tags = _version_info(tracking_uri, "2")
    assert champion == "2" and tags["mlspec.rollout.strategy"] == "blue-green"
    assert _version_info(tracking_uri, "3")[1]["mlspec.rollout.outcome"] == "rolled_back"
