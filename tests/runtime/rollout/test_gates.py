"""Rollout gates: the verdict rules, then real Prometheus (Debian) answering real PromQL.

The Prometheus tests start ``prometheus`` on 127.0.0.1 scraping a small exporter (a thread in
this process serving fixed metrics in the exposition format) every second, and ask it the gates
of the rollout plan mlspec compiles for the iris example, plus gates made to pass and to fail.
The failure paths are real too: a port nobody listens on, a server that accepts and never
answers, a server that answers 503 with text.
"""

from __future__ import annotations

import json
import math
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from mlspec.runtime.rollout.gates import Gate, Prometheus, judge, judge_all, judge_samples
from tests.conftest import program
from tests.e2e.live import exporter, free_port, processes

REPO = Path(__file__).resolve().parents[3]
IRIS = REPO / "examples" / "iris" / "mlproject.yaml"
MODEL = "iris-classifier"

# What the exporter serves: a model server's metrics that saw no new traffic (counters flat).
METRICS = f"""\
# TYPE mlspec_requests_total counter
mlspec_requests_total{{model="{MODEL}",version="1",code="200"}} 120
# TYPE mlspec_feature_drift gauge
mlspec_feature_drift{{model="{MODEL}",version="1",feature="petal_length",method="psi"}} 0.05
mlspec_feature_drift{{model="{MODEL}",version="1",feature="sepal_width",method="psi"}} 0.31
# TYPE mlspec_model_performance gauge
mlspec_model_performance{{model="{MODEL}",version="1",metric="accuracy"}} 0.93
"""


# --- the verdict rules ------------------------------------------------------------------------
def _samples(*values: float) -> list:
    return [((("version", str(i)),), value) for i, value in enumerate(values)]


def test_every_sample_must_be_within_bounds() -> None:
    gate = Gate("drift", "q", max=0.2)
    assert judge_samples(gate, _samples(0.1, 0.15)).passed
    failed = judge_samples(gate, _samples(0.1, 0.3))
    assert not failed.passed and failed.value == 0.3
    assert failed.reason == "0.3 > max 0.2 (version='1')"
    low = judge_samples(Gate("acc", "q", min=0.9), _samples(0.95, 0.8))
    assert not low.passed and low.value == 0.8 and "< min 0.9" in low.reason
    assert judge_samples(Gate("b", "q", min=0, max=1), _samples(0, 1)).passed  # inclusive


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_a_value_that_is_not_a_measurement_fails(value: float) -> None:
    result = judge_samples(Gate("g", "q", min=-1e9, max=1e9), _samples(value))
    assert not result.passed and "is not a measurement" in result.reason
    assert json.dumps(result.to_json(), allow_nan=False)  # the report stays strict JSON


def test_no_data_fails() -> None:
    result = judge_samples(Gate("g", "q", max=1), [])
    assert not result.passed and result.reason.startswith("no data") and result.value is None


@pytest.mark.parametrize("entry, message", [
    ({"name": "g", "query": "q"}, "neither min nor max"),
    ({"name": "g", "query": "q", "max": math.nan}, "finite"),
    ({"name": "g", "query": "q", "min": True}, "finite"),
    ({"name": "g", "query": "", "max": 1}, "needs a name and a query"),
])
def test_a_bad_gate_in_a_plan_is_refused(entry: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Gate.from_plan(entry)


# --- real Prometheus --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    binary = program("prometheus")
    work = tmp_path_factory.mktemp("prometheus")
    with exporter(lambda: METRICS) as exporter_port:
        port = free_port()
        config = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                  "scrape_configs": [{"job_name": "model-server", "static_configs": [
                      {"targets": [f"127.0.0.1:{exporter_port}"]}]}]}
        (work / "prometheus.yml").write_text(yaml.safe_dump(config))
        with processes(work) as procs:
            procs.start("prometheus", [binary, f"--config.file={work / 'prometheus.yml'}",
                                       f"--storage.tsdb.path={work / 'data'}",
                                       f"--web.listen-address=127.0.0.1:{port}"], work)
            client = Prometheus(f"http://127.0.0.1:{port}")
            _wait_for_samples(client, procs)
            yield client


def _wait_for_samples(client: Prometheus, procs, seconds: float = 60) -> None:
    """Until a rate over the exporter's counter has two scrapes to work with."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        procs.check_alive()
        try:
            if client.query('count_over_time(up{job="model-server"}[1m]) >= 3'):
                return
        except Exception:  # noqa: BLE001 - not up yet
            pass
        time.sleep(0.3)
    raise AssertionError(f"Prometheus never scraped the exporter:\n{procs.tail('prometheus')}")


def _compiled_gates() -> list[Gate]:
    """The first canary step's gates of the rollout plan compiled from the iris example."""
    from mlspec.compile.build import render_target
    from mlspec.spec.loader import load_spec

    loaded = load_spec(str(IRIS), None)
    files = {f.path: f.content for f in render_target(loaded.project, "serving")}
    plan = yaml.safe_load(yaml.safe_load(files["serving/rollout-plan.yaml"])["data"]["plan.yaml"])
    return [Gate.from_plan(g) for g in plan["steps"][0]["gates"]]


@pytest.mark.slow
def test_the_compiled_plan_s_gates_on_real_prometheus(prometheus: Prometheus) -> None:
    results = {r.gate.name: r for r in judge_all(_compiled_gates(), prometheus)}
    assert set(results) == {"error-rate", "latency-p99-seconds", "feature-drift",
                            "performance-accuracy"}
    # No 5xx among flat counters: an error rate of 0 passes.
    assert results["error-rate"].passed and results["error-rate"].value == 0
    # The latency histogram was never exported: no data, so the gate fails, never passes.
    assert not results["latency-p99-seconds"].passed
    assert results["latency-p99-seconds"].reason.startswith("no data")
    # The worst feature drifts 0.31 > 0.2: the drift gate fails with that value.
    assert not results["feature-drift"].passed and results["feature-drift"].value == 0.31
    assert results["performance-accuracy"].passed
    assert results["performance-accuracy"].value == pytest.approx(0.93)


@pytest.mark.slow
def test_prometheus_answers_that_fail_closed(prometheus: Prometheus) -> None:
    nan = judge(Gate("nan", "0/0", max=1), prometheus)  # a scalar NaN
    assert not nan.passed and "is not a measurement" in nan.reason
    bad = judge(Gate("bad", "sum(", max=1), prometheus)
    assert not bad.passed and bad.reason.startswith("Prometheus refused the query: bad_data")
    missing = judge(Gate("missing", 'mlspec_requests_total{model="other"}', max=1), prometheus)
    assert not missing.passed and missing.reason.startswith("no data")
    vector = judge(Gate("vector", 'label_replace(vector(1), "a", "b", "", "")', max=1), prometheus)
    assert vector.passed and vector.value == 1
    strings = judge(Gate("string", '"a string"', max=1), prometheus)
    assert not strings.passed and "not a number" in strings.reason


@pytest.mark.slow
def test_an_unreachable_prometheus_fails_the_gate() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connection refused
        result = judge(Gate("g", "up", max=1), Prometheus(f"http://127.0.0.1:{port}"))
    assert not result.passed and "cannot be reached" in result.reason


@pytest.mark.slow
def test_a_prometheus_that_never_answers_times_out_and_fails() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()  # accepts connections, reads nothing, answers nothing
        port = sock.getsockname()[1]
        started = time.monotonic()
        result = judge(Gate("g", "up", max=1), Prometheus(f"http://127.0.0.1:{port}",
                                                          timeout_s=0.5))
        elapsed = time.monotonic() - started
    assert not result.passed and "did not answer within 0.5 s" in result.reason
    assert elapsed < 5


@pytest.mark.slow
def test_an_http_error_without_prometheus_json_fails() -> None:
    with exporter(lambda: "unavailable", status=503) as port:
        result = judge(Gate("g", "up", max=1), Prometheus(f"http://127.0.0.1:{port}"))
        assert not result.passed and result.reason == "Prometheus answered HTTP 503"


def test_the_url_must_be_http() -> None:
    with pytest.raises(ValueError, match="http"):
        Prometheus("prometheus:9090")
