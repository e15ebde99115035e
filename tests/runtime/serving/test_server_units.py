"""The server's parts in-process: request decoding, metrics exposition, drift window, feedback."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from mlspec import contract
from mlspec.runtime.serving.codec import BadRequest, decode_v1, decode_v2, encode_outputs
from mlspec.runtime.serving.feedback import Feedback
from mlspec.runtime.serving.metrics import Metrics
from mlspec.runtime.serving.model import Column, LoadedModel
from mlspec.runtime.serving.online_drift import OnlineDrift


def model(nullable: tuple[str, ...] = ()) -> LoadedModel:
    cols = tuple(Column(n, "FP64", n in nullable) for n in ("a", "b", "c"))
    return LoadedModel(name="m", version="1", columns=cols, predict=None, classifier=True,
                       flavor="sklearn", platform="sklearn", folder=Path("."))


def tensor(shape: list, data: list, name: str = "input-0", datatype: str = "FP64") -> dict:
    return {"name": name, "shape": shape, "datatype": datatype, "data": data}


def test_decode_v2_layouts_agree() -> None:
    body = {"id": "x", "inputs": [tensor([2, 3], [1, 2, 3, 4, 5, 6])]}
    rows, rid, proba = decode_v2(model(), body)
    assert rid == "x" and not proba
    nested, _, _ = decode_v2(model(), {"inputs": [tensor([2, 3], [[1, 2, 3], [4, 5, 6]])]})
    per_feature, _, _ = decode_v2(model(), {"inputs": [
        tensor([2], [1, 4], "a"), tensor([2, 1], [[2], [5]], "b"), tensor([2], [3, 6], "c")]})
    assert rows.dtype == np.float64
    assert np.array_equal(rows, nested) and np.array_equal(rows, per_feature)


@pytest.mark.parametrize("body,needle", [
    ({"inputs": [tensor([1, 2], [1, 2])]}, "expected [N, 3]"),
    ({"inputs": [tensor([2, 3], [1, 2, 3])]}, "needs 6 values"),
    ({"inputs": [tensor([1, 3], [1, True, "x"])]}, "holds strings"),
    ({"inputs": [tensor([1, 3], [1, None, {"k": 1}])]}, "not a number"),
    ({"inputs": [tensor([1, 3], [None, 1, 2])]}, "'a': null/NaN is not allowed"),
    ({"inputs": [tensor([1, 3], [1e308 * 10, 1, 2])]}, "infinite"),
    ({"inputs": [tensor([1], [1], "a"), tensor([1], [1], "b")]}, "missing input 'c'"),
    ({"inputs": [tensor([1], [1], "a"), tensor([2], [1, 2], "b"), tensor([1], [1], "c")]},
     "rows"),
])
def test_decode_v2_errors_name_the_problem(body: dict, needle: str) -> None:
    with pytest.raises(BadRequest) as err:
        decode_v2(model(), body)
    assert err.value.status == 400 and needle in err.value.message


def test_nullable_column_takes_null() -> None:
    rows, _, _ = decode_v2(model(nullable=("a",)), {"inputs": [tensor([1, 3], [None, 1, 2])]})
    assert math.isnan(rows[0, 0])


def test_decode_v1() -> None:
    lists = decode_v1(model(), {"instances": [[1, 2, 3]]})
    dicts = decode_v1(model(), {"instances": [{"c": 3, "a": 1, "b": 2}]})
    assert np.array_equal(lists, dicts)
    with pytest.raises(BadRequest, match="missing feature 'c'"):
        decode_v1(model(), {"instances": [{"a": 1, "b": 2}]})


def test_encode_outputs() -> None:
    out = encode_outputs(np.array([1, 2]), "INT64")
    assert out == {"name": "predict", "shape": [2], "datatype": "INT64", "data": [1, 2]}
    assert encode_outputs(np.array(["x"], dtype=object), "INT64")["datatype"] == "BYTES"


def test_metrics_exposition() -> None:
    m = Metrics('we"ird', "1")
    m.observe(200, 0.0005)
    m.observe(200, 0.003)
    m.observe(400, 20.0)
    m.count_predictions([0, 1, 1])
    m.performance["accuracy"] = 0.5
    m.drift_source = lambda: {"x": ("psi", 0.25)}
    text = m.render()
    base = 'model="we\\"ird",version="1"'
    assert f'{contract.REQUESTS_TOTAL}{{{base},code="200"}} 2' in text
    assert f'{contract.REQUEST_DURATION}_bucket{{{base},le="0.001"}} 1' in text
    assert f'{contract.REQUEST_DURATION}_bucket{{{base},le="0.005"}} 2' in text
    assert f'{contract.REQUEST_DURATION}_bucket{{{base},le="10"}} 2' in text
    assert f'{contract.REQUEST_DURATION}_bucket{{{base},le="+Inf"}} 3' in text
    assert f'{contract.REQUEST_DURATION}_count{{{base}}} 3' in text
    assert f'{contract.PREDICTIONS_TOTAL}{{{base},class="1"}} 2' in text
    assert f'{contract.FEATURE_DRIFT}{{{base},feature="x",method="psi"}} 0.25' in text
    assert f'{contract.MODEL_PERFORMANCE}{{{base},metric="accuracy"}} 0.5' in text
    assert f"{contract.MODEL_INFO}{{{base}}} 1" in text
    names = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")}
    assert names == set(contract.METRIC_LABELS)


def _profile() -> dict:
    import pandas as pd

    from mlspec.runtime.features import FeatureSpec
    from mlspec.runtime.profile import build_profile

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=2000), "b": rng.normal(size=2000),
                          "c": rng.normal(size=2000)})
    return build_profile(frame, [FeatureSpec(n, "float") for n in "abc"])


def test_drift_window_wraps_and_detects_shift() -> None:
    drift = OnlineDrift(_profile(), model().columns, window=100, min_rows=50, min_interval=0)
    rng = np.random.default_rng(1)
    assert drift.values() == {}  # too few rows yet
    for _ in range(7):  # 7 x 30 rows into a 100-row ring
        drift.add(rng.normal(size=(30, 3)))
    assert drift.filled == 100 and drift.cursor == 10
    calm = drift.values()
    assert set(calm) == {"a", "b", "c"} and max(v for _, v in calm.values()) < 0.5
    shifted = rng.normal(size=(100, 3))
    shifted[:, 1] += 3
    drift.add(shifted)
    moved = drift.values()
    assert moved["b"][1] > 1.0 and moved["a"][1] < 0.5


def test_feedback_scores() -> None:
    fb = Feedback(classifier=True, window=4)
    fb.add([0, 1, 1, 2], ["0", 1, 0, 2])
    assert fb.scores()["accuracy"] == 0.75
    fb.add([5, 5], [6, 6])  # the window keeps the last 4
    assert len(fb) == 4 and fb.scores()["accuracy"] == 0.25
    reg = Feedback(classifier=False)
    reg.add([1.0, 2.0], [1.0, 4.0])
    assert reg.scores()["mae"] == 1.0 and reg.scores()["rmse"] == pytest.approx(math.sqrt(2))
    with pytest.raises(BadRequest):
        reg.add([1.0], ["high"])
    for classifier in (True, False):
        with pytest.raises(ValueError, match="at least 1 pair"):
            Feedback(classifier=classifier, window=0)


def _sklearn_classification(true: list, pred: list) -> dict[str, float]:
    import warnings

    from sklearn import metrics as m

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # windows that lack a class
        return {
            "accuracy": m.accuracy_score(true, pred),
            "balanced_accuracy": m.balanced_accuracy_score(true, pred),
            "f1_macro": m.f1_score(true, pred, average="macro", zero_division=0),
            "f1_weighted": m.f1_score(true, pred, average="weighted", zero_division=0),
            "precision_macro": m.precision_score(true, pred, average="macro", zero_division=0),
            "recall_macro": m.recall_score(true, pred, average="macro", zero_division=0),
        }


@pytest.mark.parametrize("window", [1, 7, 50, 10000])
def test_feedback_classification_scores_equal_sklearn_over_the_window(window) -> None:
    """Running confusion counts give scikit-learn's figures after every post, while pairs
    leave the window and whole classes leave and return."""
    from mlspec.contract import ONLINE_PERFORMANCE_METRICS

    rng = np.random.default_rng(window)
    fb = Feedback(classifier=True, window=window)
    seen: list[tuple[str, str]] = []
    for step in range(40):
        n = int(rng.integers(1, 30))
        classes = ["a", "b", "c", 1, "1"][: 2 + step % 4]  # 1 and "1" are the same class
        pred = [classes[i] for i in rng.integers(0, len(classes), n)]
        true = [classes[i] for i in rng.integers(0, len(classes), n)]
        fb.add(pred, true)
        seen.extend(zip(map(str, pred), map(str, true), strict=True))
        last = seen[-window:]
        expected = _sklearn_classification([y for _, y in last], [p for p, _ in last])
        got = fb.scores()
        assert set(got) == set(ONLINE_PERFORMANCE_METRICS["classification"])
        assert got == pytest.approx(expected, rel=1e-12, abs=1e-15), step
        assert len(fb) == len(last)


@pytest.mark.parametrize("window", [1, 5, 64])
def test_feedback_regression_scores_equal_numpy_over_the_window(window) -> None:
    from mlspec.contract import ONLINE_PERFORMANCE_METRICS

    rng = np.random.default_rng(window)
    fb = Feedback(classifier=False, window=window)
    seen_pred: list[float] = []
    seen_true: list[float] = []
    for _ in range(30):
        n = int(rng.integers(1, 2 * window + 3))  # some posts are longer than the window
        pred, true = rng.normal(size=n).tolist(), rng.normal(size=n).round(1).tolist()
        fb.add(pred, true)
        seen_pred += pred
        seen_true += true
        p, t = np.array(seen_pred[-window:]), np.array(seen_true[-window:])
        err = p - t
        nonzero = t != 0
        expected = {"mse": np.mean(err ** 2), "rmse": np.sqrt(np.mean(err ** 2)),
                    "mae": np.mean(np.abs(err)),
                    "r2": 1 - np.mean(err ** 2) / np.var(t) if np.var(t) > 0 else 0.0,
                    "mape": np.mean(np.abs(err[nonzero] / t[nonzero])) if nonzero.any() else 0.0}
        got = fb.scores()
        assert set(got) == set(ONLINE_PERFORMANCE_METRICS["regression"])
        assert got == pytest.approx(expected, rel=1e-12, abs=1e-15)
        assert len(fb) == len(p)


def test_serve_command_bad_model_is_usage_error(tmp_path: Path, capsys) -> None:
    from mlspec.runtime.serving.server import main, serve_command

    assert serve_command(str(tmp_path / "missing")) == 2
    assert "no such model folder" in capsys.readouterr().err
    assert serve_command(str(tmp_path)) == 2  # a folder without MLmodel
    assert main(["serve"]) == 2  # no model URI
    assert main(["x", "--drift-window", "0"]) == 2


def test_idle_connections_are_swept() -> None:
    from mlspec.runtime.serving import httpserver as serving_http

    class Transport:
        closed = False

        def close(self) -> None:
            self.closed = True

    busy, idle, fresh = (serving_http.HttpProtocol(lambda r: None, 10, lambda: 0.0,
                                                   lambda m: b"") for _ in range(3))
    for conn, last in ((busy, 0.0), (idle, 0.0), (fresh, 99.0)):
        conn.transport, conn.last_active = Transport(), last
        serving_http.CONNECTIONS.add(conn)
    busy.pending.append([None, False])  # still owes an answer: never closed under a client
    try:
        assert serving_http.close_idle(now=100.0, idle=50.0) == 1
        assert idle.transport.closed and not busy.transport.closed and not fresh.transport.closed
    finally:
        serving_http.CONNECTIONS.difference_update({busy, idle, fresh})


class FakeRequest:
    def __init__(self) -> None:
        self.slot = [None, False]
        self.started = 0.0
        self.answers: list[tuple[int, bytes]] = []

    def reply(self, status: int, body: bytes, content_type: bytes = b"") -> None:
        self.slot[0] = body
        self.answers.append((status, body))


def test_batch_answers_each_request_and_never_hangs() -> None:
    from mlspec.runtime.serving.server import Job, ModelServer

    m = model()
    m.predict, m.takes_ndarray = (lambda rows: rows[:, 0].astype(int)), True
    server = ModelServer(m)
    reqs = [FakeRequest() for _ in range(3)]
    server.queue = [Job(r, np.array([[i, 0.0, 0.0]] * (i + 1)), None, False, "v1")
                    for i, r in enumerate(reqs)]
    server._run_batch()
    assert [r.answers[0][0] for r in reqs] == [200, 200, 200]
    assert [len(json.loads(r.answers[0][1])["predictions"]) for r in reqs] == [1, 2, 3]
    m.predict = lambda rows: rows[:, 0].astype(complex)  # a bug: the answer cannot be encoded
    broken = FakeRequest()
    server.queue = [Job(broken, np.zeros((1, 3)), None, False, "v1")]
    server._run_batch()
    assert broken.answers and broken.answers[0][0] == 500
