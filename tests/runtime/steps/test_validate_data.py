"""validate-data: the contract and the checks, with counts and example rows; bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlspec.runtime.errors import StepError
from tests.runtime.conftest import assert_clean_failure, iris_spec, run_step, write_spec


def _frame(n=120):
    rng = np.random.default_rng(0)
    return pd.DataFrame({
        "sepal_length": rng.uniform(4, 8, n), "sepal_width": rng.uniform(2, 4, n),
        "petal_length": rng.uniform(1, 7, n), "petal_width": rng.uniform(0.1, 2.5, n),
        "target": rng.integers(0, 3, n)})


def _report(tmp_path, frame, **changes):
    from mlspec.runtime.spec import load_project
    from mlspec.runtime.steps.validate_data import validate_frame

    return validate_frame(load_project(iris_spec(tmp_path, **changes)), frame)


def _violation(report, check, column=None):
    found = [v for v in report["violations"] if v["check"] == check
             and (column is None or v["column"] == column)]
    assert found, report["violations"]
    return found[0]


def test_clean_data_passes(tmp_path):
    report = _report(tmp_path, _frame())
    assert report["passed"] and report["violations"] == [] and report["rows"] == 120


def test_range_violation_has_count_and_rows(tmp_path):
    frame = _frame()
    frame.loc[[3, 7, 9], "sepal_length"] = 99.0
    v = _violation(_report(tmp_path, frame), "range", "sepal_length")
    assert v["count"] == 3 and v["rows"] == [3, 7, 9] and "max=30" in v["message"]


def test_nulls_where_not_nullable(tmp_path):
    frame = _frame()
    frame.loc[[5], "sepal_width"] = np.nan
    frame.loc[[6], "petal_width"] = np.nan  # petal_width is nullable in the example
    report = _report(tmp_path, frame)
    v = _violation(report, "nullable", "sepal_width")
    assert v["rows"] == [5]
    assert not [x for x in report["violations"] if x["column"] == "petal_width"]


def test_wrong_types(tmp_path):
    frame = _frame().astype({"sepal_length": object})
    frame.loc[4, "sepal_length"] = "big"
    v = _violation(_report(tmp_path, frame), "type", "sepal_length")
    assert v["rows"] == [4] and "'big'" in v["message"]


def test_category_values_min_rows_duplicates(tmp_path):
    frame = _frame(20)
    frame["colour"] = ["red"] * 19 + ["purple"]
    frame = pd.concat([frame, frame.iloc[:5]], ignore_index=True)
    report = _report(tmp_path, frame,
                     data__features={"colour": {"type": "category", "values": ["red", "blue"]}},
                     data__checks={"min_rows": 100, "max_null_fraction": 0.05,
                                   "max_duplicate_fraction": 0.1})
    assert _violation(report, "values", "colour")["count"] == 1
    assert _violation(report, "min_rows")["count"] == 25
    assert _violation(report, "max_duplicate_fraction")["rows"] == [20, 21, 22, 23, 24]


def test_all_nan_column(tmp_path):
    frame = _frame()
    frame["petal_width"] = np.nan
    v = _violation(_report(tmp_path, frame), "all_null", "petal_width")
    assert v["count"] == 120


def test_missing_target_and_feature(tmp_path):
    report = _report(tmp_path, _frame().drop(columns=["target", "sepal_width"]))
    assert _violation(report, "target")["column"] == "target"
    assert _violation(report, "column", "sepal_width")


def test_failed_contract_writes_report_then_fails(tmp_path):
    from mlspec.runtime.io import write_dataset
    from mlspec.runtime.steps.validate_data import run_validate_data

    frame = _frame()
    frame.loc[0, "sepal_length"] = -1.0
    write_dataset(frame, tmp_path / "d.parquet")
    with pytest.raises(StepError, match="data contract failed: column 'sepal_length'"):
        run_validate_data(iris_spec(tmp_path), str(tmp_path / "d.parquet"),
                          str(tmp_path / "r.json"))
    assert json.loads((tmp_path / "r.json").read_text())["passed"] is False


# --- bad inputs from the command line: a clear error, a non-zero exit, no traceback ----------
@pytest.fixture
def spec_path(tmp_path):
    return write_spec(tmp_path, iris_spec(tmp_path))


def test_empty_file(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    spec = write_spec(tmp_path, iris_spec(tmp_path, data__source__uri=str(tmp_path / "empty.csv")))
    done = run_step("ingest", "--spec", spec, "--out", "dataset=d.parquet", cwd=tmp_path)
    assert_clean_failure(done, contains="empty")


def test_missing_source_and_unknown_dataset(tmp_path):
    spec = write_spec(tmp_path, iris_spec(tmp_path, data__source__uri="nope.csv"))
    assert_clean_failure(run_step("ingest", "--spec", spec, "--out", "dataset=d.parquet",
                                  cwd=tmp_path), contains="not found")
    spec = write_spec(tmp_path, iris_spec(tmp_path, data__source__uri="sklearn://titanic"))
    assert_clean_failure(run_step("ingest", "--spec", spec, "--out", "dataset=d.parquet",
                                  cwd=tmp_path), contains="known: breast_cancer")


def test_remote_source_without_backend_is_clear(tmp_path):
    spec = write_spec(tmp_path, iris_spec(tmp_path, data__source__uri="s3://bucket/x.parquet"))
    done = run_step("ingest", "--spec", spec, "--out", "dataset=d.parquet", cwd=tmp_path)
    assert_clean_failure(done, contains="s3://bucket/x.parquet")


def test_csv_source_and_contract_failure_cli(tmp_path):
    frame = _frame().astype({"sepal_length": object})
    frame.loc[2, "sepal_length"] = "oops"
    frame.to_csv(tmp_path / "data.csv", index=False)
    spec = write_spec(tmp_path, iris_spec(tmp_path, data__source__uri=str(tmp_path / "data.csv")))
    assert run_step("ingest", "--spec", spec, "--out", "dataset=d.parquet",
                    cwd=tmp_path).returncode == 0
    done = run_step("validate-data", "--spec", spec, "--in", "dataset=d.parquet",
                    "--out", "report=r.json", cwd=tmp_path)
    assert_clean_failure(done, contains="should be float")


def test_train_bad_inputs_cli(tmp_path):
    frame = _frame()
    frame.drop(columns=["target"]).to_parquet(tmp_path / "no_target.parquet")
    nan = frame.copy()
    nan["sepal_width"] = np.nan
    nan.to_parquet(tmp_path / "nan.parquet")
    text = frame.astype({"petal_length": str})
    text.loc[1, "petal_length"] = "long"
    text.to_parquet(tmp_path / "text.parquet")
    spec = write_spec(tmp_path, iris_spec(tmp_path))
    for data, message in (("no_target.parquet", "target column 'target' not in the data"),
                          ("nan.parquet", "all null"),
                          ("text.parquet", "should be float but has text")):
        done = run_step("train", "--spec", spec, "--in", f"train={data}", "--out", "model=m",
                        cwd=tmp_path)
        assert_clean_failure(done, contains=message)


def test_unreadable_model_folder(tmp_path, iris_run):
    spec = write_spec(tmp_path, iris_spec(tmp_path))
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "MLmodel").write_text("flavors: {sklearn: {pickled_model: x.pkl}}")
    (tmp_path / "junk" / "mlspec_model.json").write_text('{"framework": "sklearn"}')
    for folder, message in (("missing", "model folder not found"),
                            (str(iris_run["dir"]), "not an MLflow model folder"),
                            ("junk", "cannot load the model")):
        done = run_step("evaluate", "--spec", spec, "--in", f"model={folder}",
                        "--in", f"test={iris_run['test']}", "--out", "metrics=m.json",
                        cwd=tmp_path)
        assert_clean_failure(done, contains=message)


def test_http_source_through_fsspec(tmp_path):
    """A remote source over HTTP (a real server on 127.0.0.1) goes through fsspec."""
    import functools
    import http.server
    import threading

    pytest.importorskip("fsspec", reason="the remote extra (fsspec) is not installed")
    pytest.importorskip("aiohttp", reason="fsspec's http backend needs aiohttp")
    from mlspec.runtime.io import read_dataset
    from mlspec.runtime.steps.ingest import run_ingest

    _frame().to_csv(tmp_path / "data.csv", index=False)
    _frame().to_parquet(tmp_path / "data.parquet", index=False)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        uri = f"http://127.0.0.1:{server.server_address[1]}/data.csv"
        run_ingest(iris_spec(tmp_path, data__source__uri=uri), str(tmp_path / "d.parquet"))
        assert len(read_dataset(tmp_path / "d.parquet")) == 120
        run_ingest(iris_spec(tmp_path, data__source__uri=uri.replace(".csv", ".parquet")),
                   str(tmp_path / "p.parquet"))
        assert read_dataset(tmp_path / "p.parquet").equals(read_dataset(tmp_path / "d.parquet"))
        with pytest.raises(StepError, match="not found or not reachable"):
            run_ingest(iris_spec(tmp_path, data__source__uri=uri.replace("data", "nope")),
                       str(tmp_path / "e.parquet"))
    finally:
        server.shutdown()


def test_parquet_reaches_arrow_as_a_local_path(tmp_path, monkeypatch):
    """Arrow must read its own file, never a Python file object: buffers that object hands
    Arrow can be freed on an Arrow thread while the interpreter exits, which aborts the step
    after it succeeded (apache/arrow#34314; seen in CI as exit -6 after 'validate-data:
    passed'). Local files go by path; remote ones are spooled to a local file first."""
    import io

    from mlspec.runtime import io as runtime_io

    _frame().to_parquet(tmp_path / "data.parquet", index=False)
    given = []
    real = pd.read_parquet
    monkeypatch.setattr(pd, "read_parquet", lambda source, **kw: given.append(source)
                        or real(source, **kw))
    local = runtime_io.read_table(tmp_path / "data.parquet")
    remote = runtime_io._spool_and_parse_parquet(
        io.BytesIO((tmp_path / "data.parquet").read_bytes()), "s3://bucket/data.parquet")
    assert local.equals(remote) and len(local) == 120
    assert len(given) == 2 and all(isinstance(source, Path) for source in given), given
