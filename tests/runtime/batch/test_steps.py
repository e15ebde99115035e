"""The batch steps end to end on a real registry: partitions -> score each -> report."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tests.runtime.batch.conftest import BROKEN_ROWS, batch_spec, make_inputs
from tests.runtime.conftest import assert_clean_failure, run_step, write_spec


def _run_batch(spec_file: str, tmp_path):
    plan = tmp_path / "work" / "plan.json"
    done = run_step("partitions", "--spec", spec_file, "--out", f"plan={plan}",
                    "--out", f"partitions={tmp_path / 'work' / 'parts'}")
    assert done.returncode == 0, done.stderr
    indices = json.loads((tmp_path / "work" / "parts").read_text())
    for index in indices:
        scored = run_step("score", "--spec", spec_file, "--in", f"plan={plan}",
                          "--partition", index)
        assert scored.returncode == 0, scored.stderr
    report = run_step("report", "--spec", spec_file, "--in", f"plan={plan}",
                      "--out", f"report={tmp_path / 'work' / 'report.json'}")
    return json.loads(plan.read_text()), indices, report


def test_a_batch_scores_every_valid_row_once_and_sets_broken_rows_aside(registered, tmp_path):
    make_inputs(tmp_path)
    spec = write_spec(tmp_path, batch_spec(registered, tmp_path))
    plan, indices, report = _run_batch(spec, tmp_path)
    assert report.returncode == 0, report.stderr
    # Hidden, _-prefixed and non-data files are not partitions.
    assert indices == ["0", "1"]
    assert [p["uri"].rsplit("/", 1)[1] for p in plan["partitions"]] == ["a.parquet", "b.csv"]
    assert plan["model"]["uri"] == "models:/iris-classifier/1"
    out = tmp_path / "predictions" / plan["batch_id"]
    parts = sorted(out.glob("part-*.parquet"))
    assert [p.name for p in parts] == ["part-00000.parquet", "part-00001.parquet"]
    frame = pd.concat([pd.read_parquet(p) for p in parts])
    # Every valid row exactly once, keyed by id; the broken rows are not scored.
    assert sorted(frame["id"]) == [i for i in range(150) if not 100 <= i < 100 + BROKEN_ROWS]
    assert list(frame.columns) == ["id", "prediction", "proba_0", "proba_1", "proba_2"]
    assert frame[["proba_0", "proba_1", "proba_2"]].sum(axis=1).round(6).eq(1).all()
    assert (frame.set_index("id")["prediction"].loc[[0, 60, 120]] == [0, 1, 2]).all()
    data = json.loads((tmp_path / "work" / "report.json").read_text())
    assert data["passed"] and data["rows"] == 150 and data["scored"] == 150 - BROKEN_ROWS
    assert data["violations"] == {"sepal_length": {"range": BROKEN_ROWS}}
    assert sum(data["predictions"]["classes"].values()) == 150 - BROKEN_ROWS
    assert {f["name"] for f in data["drift"]["features"]} == {
        "sepal_length", "sepal_width", "petal_length", "petal_width"}
    assert (out / "_SUCCESS").exists()
    assert json.loads((out / "_report.json").read_text()) == data
    metrics = (out / "_metrics.prom").read_text()
    assert ('mlspec_batch_rows{model="iris-classifier",outcome="violation",version="1"} '
            f"{BROKEN_ROWS}") in metrics
    assert "mlspec_batch_last_success_timestamp_seconds" in metrics


def test_too_many_broken_rows_fail_the_batch_without_success_marker(registered, tmp_path):
    make_inputs(tmp_path)
    spec = write_spec(tmp_path, batch_spec(registered, tmp_path, max_violation_fraction=0.01))
    plan, _, report = _run_batch(spec, tmp_path)
    assert_clean_failure(report, contains="break the data contract")
    assert "sepal_length: 3 range" in report.stderr
    out = tmp_path / "predictions" / plan["batch_id"]
    assert not (out / "_SUCCESS").exists()
    # The figures are still published: a failed batch is what the violations alert is for.
    assert "mlspec_batch_last_success" not in (out / "_metrics.prom").read_text()
    assert json.loads((out / "_report.json").read_text())["passed"] is False


def test_the_report_refuses_a_batch_with_an_unscored_partition(registered, tmp_path):
    make_inputs(tmp_path)
    spec_file = write_spec(tmp_path, batch_spec(registered, tmp_path))
    plan = tmp_path / "plan.json"
    assert run_step("partitions", "--spec", spec_file, "--out", f"plan={plan}").returncode == 0
    assert run_step("score", "--spec", spec_file, "--in", f"plan={plan}",
                    "--partition", "0").returncode == 0
    done = run_step("report", "--spec", spec_file, "--in", f"plan={plan}",
                    "--out", f"report={tmp_path / 'r.json'}")
    assert_clean_failure(done, contains="partition 1 has no summary")


@pytest.mark.parametrize(("change", "message"), [
    ({"model": "production"}, "no version of model iris-classifier has the alias 'production'"),
    ({"model": 7}, "has no version 7"),
    ({"input": "/nonexistent/scoring"}, "does not exist"),
])
def test_partitions_fails_clearly(registered, tmp_path, change, message):
    make_inputs(tmp_path)
    spec = write_spec(tmp_path, batch_spec(registered, tmp_path, **change))
    done = run_step("partitions", "--spec", spec, "--out", f"plan={tmp_path / 'p.json'}")
    assert_clean_failure(done, contains=message)
    assert not (tmp_path / "p.json").exists()


def test_a_partition_without_a_feature_column_fails_and_writes_nothing(registered, tmp_path):
    scoring = make_inputs(tmp_path)
    frame = pd.read_parquet(scoring / "a.parquet").drop(columns="petal_width")
    frame.to_parquet(scoring / "a.parquet", index=False)
    spec_file = write_spec(tmp_path, batch_spec(registered, tmp_path))
    plan = tmp_path / "plan.json"
    assert run_step("partitions", "--spec", spec_file, "--out", f"plan={plan}").returncode == 0
    done = run_step("score", "--spec", spec_file, "--in", f"plan={plan}", "--partition", "0")
    assert_clean_failure(done, contains="has no column 'petal_width'")
    out = tmp_path / "predictions" / json.loads(plan.read_text())["batch_id"]
    assert not list(out.glob("*part-00000*")), list(out.iterdir())
    bad = run_step("score", "--spec", spec_file, "--in", f"plan={plan}", "--partition", "9")
    assert_clean_failure(bad, contains="the plan has partitions 0 to 1")


def test_explicit_keys_are_the_only_columns_copied(registered, tmp_path):
    make_inputs(tmp_path)
    spec = write_spec(tmp_path, batch_spec(registered, tmp_path, keys=["id", "petal_width"]))
    plan, _, report = _run_batch(spec, tmp_path)
    assert report.returncode == 0, report.stderr
    part = tmp_path / "predictions" / plan["batch_id"] / "part-00000.parquet"
    assert list(pd.read_parquet(part).columns)[:3] == ["id", "petal_width", "prediction"]
