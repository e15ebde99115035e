"""The retraining trigger over real HTTP on 127.0.0.1.

The retraining command is swapped for a short sleeping subprocess here, to test payload checks,
routing and debouncing quickly; tests/e2e/test_monitoring_loop.py runs the real ``mlspec run``.
"""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from mlspec import contract
from mlspec.commands import trigger

REPO = Path(__file__).resolve().parents[2]
IRIS = REPO / "examples" / "iris" / "mlproject.yaml"


class SleepingRetrainer(trigger.Retrainer):
    """Runs ``sleep`` instead of ``mlspec run`` (the real run is covered end to end)."""

    seconds: float = 0.6

    def command(self) -> list[str]:
        return [sys.executable, "-c", f"import time; time.sleep({self.seconds})"]


@pytest.fixture
def served(tmp_path: Path):
    retrainer = SleepingRetrainer(spec=IRIS, project="iris-classifier", workdir=tmp_path)
    server = trigger.make_server(retrainer, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    yield retrainer, server.server_address[1]
    server.shutdown()
    server.server_close()
    retrainer.stop()


def _request(port: int, method: str, path: str, body: bytes | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        conn.close()


def _alert(status: str = "firing", project: str = "iris-classifier", retrain: bool = True,
           name: str = "MLSpecFeatureDrift") -> dict:
    labels = {"alertname": name, contract.PROJECT_LABEL: project, "feature": "petal_width"}
    if retrain:
        labels[contract.RETRAIN_LABEL] = "true"
    return {"status": status, "labels": labels, "annotations": {"summary": "s"},
            "startsAt": "2026-01-01T00:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus/graph", "fingerprint": "abc"}


def _payload(*alerts: dict) -> bytes:
    return json.dumps({"version": "4", "groupKey": "{}:{}", "status": "firing",
                       "receiver": "mlspec-retrain", "groupLabels": {}, "commonLabels": {},
                       "commonAnnotations": {}, "externalURL": "http://am", "truncatedAlerts": 0,
                       "alerts": list(alerts)}).encode()


def _wait_idle(port: int, timeout: float = 10.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = _request(port, "GET", "/status")[1]
        if not status["running"]:
            return status
        time.sleep(0.05)
    raise AssertionError("the run did not finish")


@pytest.mark.parametrize("body, fragment", [
    (b"not json", "not JSON"),
    (b"[1, 2]", "JSON object"),
    (json.dumps({"version": "3", "alerts": []}).encode(), "version"),
    (json.dumps({"version": "4"}).encode(), "alerts"),
    (json.dumps({"version": "4", "alerts": ["x"]}).encode(), "alerts[0]"),
    (json.dumps({"version": "4", "alerts": [{"status": "odd", "labels": {}}]}).encode(), "status"),
    (json.dumps({"version": "4", "alerts": [{"status": "firing", "labels": {"a": 1}}]}).encode(),
     "labels"),
    (b"\xff\xfe", "not JSON"),
])
def test_garbage_gets_400_and_the_server_stays_up(served, body: bytes, fragment: str) -> None:
    retrainer, port = served
    status, answer = _request(port, "POST", "/alerts", body)
    assert status == 400 and fragment in answer["error"]
    assert _request(port, "GET", "/healthz") == (200, {"ok": True})
    assert retrainer.runs == []


def test_http_errors(served) -> None:
    _, port = served
    assert _request(port, "GET", "/nowhere")[0] == 404
    assert _request(port, "POST", "/nowhere", b"{}")[0] == 404
    assert _request(port, "GET", "/alerts")[0] == 405
    # The size is refused from the header, before any body is read.
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.putrequest("POST", "/alerts")
    conn.putheader("Content-Length", str(trigger.MAX_BODY + 1))
    conn.endheaders()
    assert conn.getresponse().status == 413
    conn.close()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.putrequest("POST", "/alerts")
    conn.endheaders()
    assert conn.getresponse().status == 411
    conn.close()


@pytest.mark.parametrize("alert", [
    _alert(status="resolved"), _alert(project="another-project"), _alert(retrain=False),
], ids=["resolved", "other-project", "no-retrain-label"])
def test_alerts_that_do_not_ask_for_retraining_start_nothing(served, alert: dict) -> None:
    retrainer, port = served
    status, answer = _request(port, "POST", "/alerts", _payload(alert))
    assert (status, answer["accepted"]) == (200, False)
    assert retrainer.runs == []


def test_one_run_at_a_time_alerts_coalesce_then_a_new_run(served) -> None:
    retrainer, port = served
    assert _request(port, "POST", "/", _payload(_alert()))[1] == \
        {"accepted": True, "run": 1, "outcome": "started"}
    # Alertmanager re-sends (or more features drift) while the run is going: folded into it.
    for _ in range(3):
        assert _request(port, "POST", "/alerts", _payload(_alert(), _alert()))[1]["outcome"] == \
            "coalesced"
    status = _wait_idle(port)
    assert len(status["runs"]) == 1
    assert status["last"]["ok"] is True and status["last"]["coalesced"] == 6
    assert status["alerts_received"] == 7
    assert status["last"]["reason"] == ["MLSpecFeatureDrift(petal_width)"]
    # After the run, a new alert starts a new run.
    assert _request(port, "POST", "/alerts", _payload(_alert()))[1]["outcome"] == "started"
    assert len(_wait_idle(port)["runs"]) == 2


def test_a_failing_run_is_reported(served) -> None:
    retrainer, port = served
    retrainer.command = lambda: [sys.executable, "-c", "raise SystemExit(3)"]  # type: ignore
    _request(port, "POST", "/alerts", _payload(_alert()))
    last = _wait_idle(port)["last"]
    assert (last["ok"], last["exit_code"], last["registration"]) == (False, 3, None)


def test_bearer_token(tmp_path: Path) -> None:
    retrainer = SleepingRetrainer(spec=IRIS, project="iris-classifier", workdir=tmp_path)
    server = trigger.make_server(retrainer, "127.0.0.1", 0, token="s3cret")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        assert _request(port, "POST", "/alerts", _payload(_alert(retrain=False)))[0] == 401
        ok = _request(port, "POST", "/alerts", _payload(_alert(retrain=False)),
                      {"Authorization": "Bearer s3cret"})
        assert ok[0] == 200
    finally:
        server.shutdown()
        server.server_close()


def test_cli_rejects_a_bad_spec_and_a_missing_one(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: mlspec/v1\nkind: MLProject\n")
    mlspec = [sys.executable, "-m", "mlspec", "trigger", "serve", "--port", "0", "--spec"]
    result = subprocess.run([*mlspec, str(bad)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "error MLS102" in result.stderr  # every diagnostic, lint too
    assert "Traceback" not in result.stderr
    missing = subprocess.run([*mlspec, str(tmp_path / "nope.yaml")], capture_output=True,
                             text=True, timeout=60)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    unknown = subprocess.run([*mlspec, str(IRIS), "--profile", "nope"], capture_output=True,
                             text=True, timeout=60)
    assert unknown.returncode == 2 and "Traceback" not in unknown.stderr
    assert "unknown profile 'nope'" in unknown.stderr
