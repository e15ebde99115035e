"""The server on models the iris model does not cover: mixed string/number inputs through a
scikit-learn pipeline (DataFrame path), and a plain pyfunc model with an integer input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.runtime.serving.conftest import call

REPO = Path(__file__).resolve().parents[3]

pytestmark = pytest.mark.slow

SAVE = '''
import sys, numpy as np, pandas as pd, mlflow.pyfunc, mlflow.sklearn
from mlflow.models import infer_signature
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

out = sys.argv[1]
X = pd.DataFrame({"color": ["red", "blue", "green"] * 20, "size": np.arange(60, dtype=float)})
y = X["size"] * 2 + (X["color"] == "red") * 10
pipe = make_pipeline(make_column_transformer((OneHotEncoder(), ["color"]),
                                             remainder="passthrough"), LinearRegression()).fit(X, y)
mlflow.sklearn.save_model(pipe, out + "/mixed", signature=infer_signature(X, pipe.predict(X)),
                          pip_requirements=[], serialization_format="cloudpickle")

class Sign(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return (model_input["a"] > 0).astype(int).to_numpy()

df = pd.DataFrame({"a": [1.0, -1.0], "b": [2, 3]})
mlflow.pyfunc.save_model(out + "/sign", python_model=Sign(),
                         signature=infer_signature(df, np.array([1, 0])), pip_requirements=[])
'''


def _start(model: Path):
    proc = subprocess.Popen([sys.executable, "-m", "mlspec.runtime.serving.server", str(model),
                             "--host", "127.0.0.1", "--port", "0"], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if "http://" not in line:
        proc.kill()
        pytest.fail(f"server did not start: {line}{proc.stderr.read()}")
    return proc, line.strip().rsplit(" ", 1)[-1]


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory):
    work = tmp_path_factory.mktemp("flavors")
    done = subprocess.run([sys.executable, "-c", SAVE, str(work)], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    started = {name: _start(work / name) for name in ("mixed", "sign")}
    yield {name: base for name, (_, base) in started.items()}
    for proc, _ in started.values():
        proc.terminate()
        proc.wait(10)


def test_mixed_inputs_v1_and_v2(servers: dict) -> None:
    base = servers["mixed"]
    status, meta = call(base, "/v2/models/mixed")
    assert [(i["name"], i["datatype"]) for i in meta["inputs"]] == [("color", "BYTES"),
                                                                    ("size", "FP64")]
    status, v1 = call(base, "/v1/models/mixed:predict",
                      {"instances": [{"color": "red", "size": 3}, {"color": "blue", "size": 1.5}]})
    assert status == 200 and [round(p) for p in v1["predictions"]] == [16, 3]
    status, v2 = call(base, "/v2/models/mixed/infer", {"inputs": [
        {"name": "color", "shape": [2], "datatype": "BYTES", "data": ["red", "green"]},
        {"name": "size", "shape": [2], "datatype": "FP64", "data": [1, 2]}]})
    assert status == 200 and [round(p) for p in v2["outputs"][0]["data"]] == [12, 4]


@pytest.mark.parametrize("data,status,needle", [
    (["purple", 1], 422, "unknown categories"),  # the model refuses it: not the client's syntax
    ([3, 1], 400, "expected strings"),
    (["red", "big"], 400, "is not a number"),
    (["red", None], 400, "not allowed"),
])
def test_mixed_bad_values(servers: dict, data: list, status: int, needle: str) -> None:
    got, out = call(servers["mixed"], "/v2/models/mixed/infer", {"inputs": [
        {"name": "row", "shape": [1, 2], "datatype": "BYTES", "data": data}]})
    assert got == status and needle in out["error"], out
    assert call(servers["mixed"], "/v2/health/live")[0] == 200


def test_pyfunc_model_and_integer_inputs(servers: dict) -> None:
    base = servers["sign"]
    status, out = call(base, "/v2/models/sign/infer", {"inputs": [
        {"name": "x", "shape": [2, 2], "datatype": "FP64", "data": [1, 2, -1, 3]}]})
    assert status == 200 and out["outputs"][0] == {
        "name": "predict", "shape": [2], "datatype": "INT64", "data": [1, 0]}
    status, out = call(base, "/v2/models/sign/infer", {"inputs": [
        {"name": "x", "shape": [1, 2], "datatype": "FP64", "data": [1, 2.5]}]})
    assert status == 400 and "whole numbers" in out["error"]

