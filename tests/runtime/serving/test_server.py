"""End to end: the model server on a free port serving the iris model trained by the runtime."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlspec import contract
from tests.runtime.serving.conftest import FEATURES, call

REPO = Path(__file__).resolve().parents[3]
NAME = "iris-classifier"

pytestmark = pytest.mark.slow


def metric_values(base: str, name: str) -> dict[str, float]:
    """Series of ``name`` in /metrics: label text -> value."""
    status, text = call(base, contract.METRICS_PATH)
    assert status == 200
    out = {}
    for line in text.splitlines():
        if line.startswith(name + "{"):
            labels, value = line[len(name):].rsplit(" ", 1)
            out[labels] = float(value)
    return out


def v2_rows(rows: list[list[float]], **extra: object) -> dict:
    flat = [v for row in rows for v in row]
    return {"inputs": [{"name": "input-0", "shape": [len(rows), 4], "datatype": "FP64",
                        "data": flat}], **extra}


# --- the protocol -----------------------------------------------------------------------------
def test_health_and_metadata(server: str) -> None:
    assert call(server, "/v2/health/live") == (200, {"live": True})
    assert call(server, "/v2/health/ready") == (200, {"ready": True})
    status, meta = call(server, "/v2")
    assert status == 200 and meta["name"] == "mlspec"
    status, model = call(server, f"/v2/models/{NAME}")
    assert status == 200
    assert model["name"] == NAME and model["versions"] == ["1"]
    assert [(i["name"], i["datatype"]) for i in model["inputs"]] == [(f, "FP64") for f in FEATURES]
    assert {o["name"] for o in model["outputs"]} == {"predict", "predict_proba"}
    assert call(server, f"/v2/models/{NAME}/ready")[0] == 200
    assert call(server, f"/v2/models/{NAME}/versions/1")[0] == 200
    assert call(server, f"/v1/models/{NAME}") == (200, {"name": NAME, "ready": True})


def test_infer_v2_row_tensor_predicts_iris(server: str, iris: dict) -> None:
    status, out = call(server, f"/v2/models/{NAME}/infer", v2_rows(iris["rows"], id="req-1"))
    assert status == 200, out
    assert out["model_name"] == NAME and out["id"] == "req-1"
    pred = out["outputs"][0]
    assert pred["name"] == "predict" and pred["shape"] == [150] and pred["datatype"] == "INT64"
    correct = sum(p == y for p, y in zip(pred["data"], iris["labels"], strict=True))
    assert correct / 150 > 0.9


def test_infer_v2_per_feature_tensors_match_row_tensor(server: str, iris: dict) -> None:
    rows = iris["rows"][::10]
    inputs = [{"name": f, "shape": [len(rows)], "datatype": "FP64", "data": [r[i] for r in rows]}
              for i, f in enumerate(FEATURES)]
    status, by_feature = call(server, f"/v2/models/{NAME}/versions/1/infer", {"inputs": inputs})
    assert status == 200, by_feature
    _, by_row = call(server, f"/v2/models/{NAME}/infer", v2_rows(rows))
    assert by_feature["outputs"][0]["data"] == by_row["outputs"][0]["data"]


def test_predict_proba_output(server: str, iris: dict) -> None:
    body = v2_rows(iris["rows"][:2], outputs=[{"name": "predict"}, {"name": "predict_proba"}])
    status, out = call(server, f"/v2/models/{NAME}/infer", body)
    assert status == 200
    proba = out["outputs"][1]
    assert proba["name"] == "predict_proba" and proba["shape"] == [2, 3]
    assert abs(sum(proba["data"][:3]) - 1.0) < 1e-9


def test_nullable_feature_accepts_null(server: str) -> None:
    # petal_width is nullable in the iris spec; the others are not.
    status, out = call(server, f"/v2/models/{NAME}/infer", v2_rows([[5.1, 3.5, 1.4, None]]))
    assert status == 200, out


def test_infer_v1_lists_and_dicts(server: str, iris: dict) -> None:
    rows = iris["rows"][:5]
    status, as_lists = call(server, f"/v1/models/{NAME}:predict", {"instances": rows})
    assert status == 200, as_lists
    dicts = [dict(zip(FEATURES, r, strict=True)) for r in rows]
    status, as_dicts = call(server, f"/v1/models/{NAME}:predict", {"instances": dicts})
    assert status == 200
    assert as_lists["predictions"] == as_dicts["predictions"] == iris["labels"][:5]


# --- metrics, feedback, drift -----------------------------------------------------------------
def test_metrics_use_the_contract_names(server: str, iris: dict) -> None:
    before = metric_values(server, contract.REQUESTS_TOTAL)
    ok = f'{{model="{NAME}",version="1",code="200"}}'
    for _ in range(3):
        call(server, f"/v2/models/{NAME}/infer", v2_rows(iris["rows"][:1]))
    call(server, f"/v2/models/{NAME}/infer", raw=b"{")
    after = metric_values(server, contract.REQUESTS_TOTAL)
    assert after[ok] - before.get(ok, 0) == 3
    bad = ok.replace('"200"', '"400"')
    assert after[bad] - before.get(bad, 0) == 1
    status, text = call(server, contract.METRICS_PATH)
    for name in contract.METRIC_LABELS:
        assert f"# TYPE {name} " in text
    info = metric_values(server, contract.MODEL_INFO)
    assert info == {f'{{model="{NAME}",version="1"}}': 1.0}
    buckets = metric_values(server, contract.REQUEST_DURATION + "_bucket")
    assert buckets[f'{{model="{NAME}",version="1",le="+Inf"}}'] >= 4
    predictions = metric_values(server, contract.PREDICTIONS_TOTAL)
    assert {k.split('class="')[1].rstrip('"}') for k in predictions} <= {"0", "1", "2"}


def test_feedback_updates_performance(server: str, iris: dict) -> None:
    rows, labels = iris["rows"][:30], iris["labels"][:30]
    _, out = call(server, f"/v2/models/{NAME}/infer", v2_rows(rows))
    wrong = [(y + 1) % 3 for y in labels]
    status, fb = call(server, "/feedback", {"id": out["id"], "labels": wrong})
    assert status == 200 and fb["accepted"] == 30
    key = f'{{model="{NAME}",version="1",metric="accuracy"}}'
    low = metric_values(server, contract.MODEL_PERFORMANCE)[key]
    status, fb = call(server, "/feedback", {"instances": iris["rows"], "labels": iris["labels"]})
    assert status == 200, fb
    high = metric_values(server, contract.MODEL_PERFORMANCE)[key]
    assert low < 0.5 < 0.8 < high
    assert fb["performance"]["accuracy"] == pytest.approx(high)


def test_online_drift_gauge(server: str, iris: dict) -> None:
    call(server, f"/v2/models/{NAME}/infer", v2_rows(iris["rows"]))
    time.sleep(1.1)  # drift is recomputed at most once a second
    drift = metric_values(server, contract.FEATURE_DRIFT)
    features = {k.split('feature="')[1].split('"')[0] for k in drift}
    assert features == set(FEATURES)
    calm = max(drift.values())
    shifted = [[v + 5.0 for v in row] for row in iris["rows"]]
    for _ in range(4):  # fill the 500-row window with shifted inputs
        call(server, f"/v2/models/{NAME}/infer", v2_rows(shifted))
    time.sleep(1.1)
    moved = metric_values(server, contract.FEATURE_DRIFT)
    assert max(moved.values()) > max(calm, 0.2) * 2


# --- hostile requests -------------------------------------------------------------------------
INFER = f"/v2/models/{NAME}/infer"
ROW = [5.1, 3.5, 1.4, 0.2]
HOSTILE: list[tuple[str, str, bytes | None]] = [
    ("POST", INFER, b"{"),
    ("POST", INFER, b""),
    ("POST", INFER, b"not json at all"),
    ("POST", INFER, b"[1, 2, 3]"),
    ("POST", INFER, b'"inputs"'),
    ("POST", INFER, b"{}"),
    ("POST", INFER, b'{"inputs": []}'),
    ("POST", INFER, b'{"inputs": {"name": "x"}}'),
    ("POST", INFER, b'{"inputs": [1]}'),
    ("POST", INFER, json.dumps({"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64",
                                            "data": ROW[:3]}]}).encode()),
    ("POST", INFER, json.dumps({"inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP64",
                                            "data": ROW}]}).encode()),
    ("POST", INFER, json.dumps({"inputs": [{"name": "x", "shape": [1, -4], "datatype": "FP64",
                                            "data": ROW}]}).encode()),
    ("POST", INFER, json.dumps({"inputs": [{"name": "x", "shape": ["1", 4], "datatype": "FP64",
                                            "data": ROW}]}).encode()),
    ("POST", INFER, json.dumps({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP99",
                                            "data": ROW}]}).encode()),
    ("POST", INFER, json.dumps({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "BYTES",
                                            "data": ["a", "b", "c", "d"]}]}).encode()),
    ("POST", INFER, json.dumps({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64",
                                            "data": ["5.1", "3.5", "1.4", "0.2"]}]}).encode()),
    ("POST", INFER, json.dumps({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64",
                                            "data": [5.1, "x", 1.4, 0.2]}]}).encode()),
    ("POST", INFER, json.dumps({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64",
                                            "data": [[5.1, 3.5], [1.4]]}]}).encode()),
    ("POST", INFER, json.dumps({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64",
                                            "data": {"a": 1}}]}).encode()),
    ("POST", INFER, json.dumps({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64",
                                            "data": [None, 3.5, 1.4, 0.2]}]}).encode()),
    ("POST", INFER, b'{"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64",'
                    b' "data": [NaN, 3.5, 1.4, 0.2]}]}'),
    ("POST", INFER, b'{"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64",'
                    b' "data": [1e999, 3.5, 1.4, 0.2]}]}'),
    ("POST", INFER, json.dumps({"inputs": [{"name": "x", "shape": [0, 4], "datatype": "FP64",
                                            "data": []}]}).encode()),
    ("POST", INFER, json.dumps({"inputs": [{"name": f, "shape": [1], "datatype": "FP64",
                                            "data": [1.0]} for f in FEATURES[:3]]}).encode()),
    ("POST", INFER, json.dumps({"inputs": [{"name": f, "shape": [1], "datatype": "FP64",
                                            "data": [1.0]}
                                           for f in FEATURES + ["extra"]]}).encode()),
    ("POST", INFER, json.dumps({"inputs": [{"name": FEATURES[0], "shape": [1], "datatype": "FP64",
                                            "data": [1.0]}] * 4}).encode()),
    ("POST", INFER, json.dumps({**v2_rows([ROW]), "id": 7}).encode()),
    ("POST", INFER, json.dumps({**v2_rows([ROW]), "outputs": [{"name": "secret"}]}).encode()),
    ("POST", INFER, json.dumps({**v2_rows([ROW]), "outputs": "predict"}).encode()),
    ("POST", INFER, b"[" * 5000 + b"]" * 5000),
    ("POST", INFER, b'{"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": ['
                    + b"1.0," * 20000 + b"1.0]}]}"),  # over the body limit
    ("POST", "/v2/models/nope/infer", json.dumps(v2_rows([ROW])).encode()),
    ("POST", f"/v2/models/{NAME}/versions/9/infer", json.dumps(v2_rows([ROW])).encode()),
    ("GET", INFER, None),
    ("PUT", f"/v2/models/{NAME}", b"{}"),
    ("GET", "/nope", None),
    ("GET", f"/v2/models/{NAME}/infer/extra", None),
    ("POST", "/v2/health/live", b"{}"),
    ("POST", f"/v1/models/{NAME}:predict", b'{"instances": "x"}'),
    ("POST", f"/v1/models/{NAME}:predict", b'{"instances": []}'),
    ("POST", f"/v1/models/{NAME}:predict", b'{"instances": [[1, 2, 3]]}'),
    ("POST", f"/v1/models/{NAME}:predict", b'{"instances": [[1, 2, 3, 4], {"a": 1}]}'),
    ("POST", f"/v1/models/{NAME}:predict", json.dumps(
        {"instances": [dict(zip(FEATURES[:3], ROW, strict=False))]}).encode()),
    ("POST", f"/v1/models/{NAME}:predict", json.dumps(
        {"instances": [{**dict(zip(FEATURES, ROW, strict=True)), "bogus": 1}]}).encode()),
    ("POST", f"/v1/models/{NAME}:predict", json.dumps(
        {"instances": [{**dict(zip(FEATURES, ROW, strict=True)),
                        "sepal_length": "big"}]}).encode()),
    ("POST", "/v1/models/nope:predict", json.dumps({"instances": [ROW]}).encode()),
    ("POST", "/feedback", b"{"),
    ("POST", "/feedback", b"{}"),
    ("POST", "/feedback", b'{"labels": [1]}'),
    ("POST", "/feedback", b'{"ids": ["never-seen"], "labels": [1]}'),
    ("POST", "/feedback", b'{"ids": [1], "labels": [1]}'),
    ("POST", "/feedback", json.dumps({"instances": [ROW], "labels": [1, 2]}).encode()),
    ("POST", "/feedback", json.dumps({"instances": [ROW], "labels": [[1]]}).encode()),
    ("POST", "/feedback", json.dumps({"instances": [ROW], "labels": [None]}).encode()),
    ("POST", "/feedback", json.dumps({"instances": [[1, 2]], "labels": [1]}).encode()),
    ("GET", "/feedback", None),
]


@pytest.mark.parametrize("method,path,body", HOSTILE,
                         ids=[f"{i}-{m}-{p.rsplit('/', 1)[-1][:12]}" for i, (m, p, _) in
                              enumerate(HOSTILE)])
def test_hostile_request_gets_4xx(server: str, method: str, path: str, body: bytes | None) -> None:
    status, out = call(server, path, method=method, raw=body)
    assert 400 <= status < 500, (status, out)
    assert isinstance(out, dict) and isinstance(out.get("error"), str) and out["error"]


def _raw_exchange(base: str, payload: bytes) -> bytes:
    host, port = base.rsplit("//", 1)[1].split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(payload)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize("payload", [
    b"GARBAGE\r\n\r\n",
    b"POST /v2 HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
    b"POST " + INFER.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\n\r\n",
    b"POST " + INFER.encode() + b" HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    + (b"8000\r\n" + b"1" * 0x8000 + b"\r\n") * 4 + b"0\r\n\r\n",
    b"GET /" + b"a" * 10000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /v2 HTTP/1.1\r\n" + b"X-Pad: " + b"p" * 4000 + b"\r\n" * 1 + (
        b"X-More: " + b"q" * 4000 + b"\r\n") * 20 + b"\r\n",
])
def test_malformed_http_gets_4xx_and_server_stays_up(server: str, payload: bytes) -> None:
    answer = _raw_exchange(server, payload)
    status = int(answer.split(b" ", 2)[1])
    assert 400 <= status < 500, answer[:200]
    assert call(server, "/v2/health/live")[0] == 200


def test_pipelined_requests_answered_in_order(server: str) -> None:
    body = json.dumps(v2_rows([ROW])).encode()
    one = (f"POST {INFER} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    health = b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    answer = _raw_exchange(server, one + one + health)
    assert answer.count(b"HTTP/1.1 200 OK") == 3
    assert answer.rstrip().endswith(b'{"live":true}')


# --- load -------------------------------------------------------------------------------------
def test_500_concurrent_requests_all_succeed(server: str, iris: dict) -> None:
    host, port = server.rsplit("//", 1)[1].split(":")

    async def one(i: int) -> tuple[int, list]:
        body = json.dumps(v2_rows([iris["rows"][i % 150]])).encode()
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write((f"POST {INFER} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                      f"Content-Length: {len(body)}\r\n\r\n").encode() + body)
        await writer.drain()
        answer = await reader.read()
        writer.close()
        head, _, payload = answer.partition(b"\r\n\r\n")
        return int(head.split(b" ", 2)[1]), json.loads(payload)["outputs"][0]["data"]

    async def run() -> list:
        return await asyncio.gather(*(one(i) for i in range(500)))

    _, whole = call(server, INFER, v2_rows(iris["rows"]))
    expected = whole["outputs"][0]["data"]
    results = asyncio.run(run())
    assert [status for status, _ in results] == [200] * 500
    # Batched together or not, every answer is its own request's prediction.
    assert [data for _, data in results] == [[expected[i % 150]] for i in range(500)]


REGISTER = '''
import sys, mlflow
from mlflow import MlflowClient
mlflow.set_tracking_uri(sys.argv[1])
with mlflow.start_run() as run:
    mlflow.log_artifacts(sys.argv[2], "model")
for _ in range(2):  # two versions: the alias must pick the second
    mv = mlflow.register_model(f"runs:/{run.info.run_id}/model", "iris-classifier")
MlflowClient().set_registered_model_alias("iris-classifier", "staging", mv.version)
'''


def test_serves_a_registered_model_by_alias(iris: dict, tmp_path: Path) -> None:
    model = iris["model"]
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    done = subprocess.run([sys.executable, "-c", REGISTER, uri, str(model)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    proc = subprocess.Popen([sys.executable, "-m", "mlspec.runtime.serving.server",
                             "models:/iris-classifier@staging", "--tracking-uri", uri,
                             "--host", "127.0.0.1", "--port", "0"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert "version 2 on http://" in line, line + proc.stderr.read()
        base = line.strip().rsplit(" ", 1)[-1]
        status, out = call(base, "/v2/models/iris-classifier/versions/2/infer", {"inputs": [
            {"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [5.1, 3.5, 1.4, 0.2]}]})
        assert status == 200 and out["outputs"][0]["data"] == [0]
    finally:
        proc.terminate()
        proc.wait(10)
    missing = subprocess.run([sys.executable, "-m", "mlspec.runtime.serving.server",
                              "models:/nope@staging", "--tracking-uri", uri], cwd=tmp_path,
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and "nope" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_server_still_healthy_at_the_end(server: str) -> None:
    assert call(server, "/v2/health/ready") == (200, {"ready": True})
