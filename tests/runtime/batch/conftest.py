"""A registered iris model and batch inputs made from the iris data (one parquet and one csv
partition, with an id column and a few rows that break the data contract)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.runtime.conftest import iris_spec

# Rows of the csv partition whose sepal_length is negative (data.features says min: 0).
BROKEN_ROWS = 3


@pytest.fixture(scope="module")
def registered(iris_run, tmp_path_factory) -> dict[str, Any]:
    """The iris model registered as version 1 with alias staging, in a registry of its own."""
    from mlspec.runtime.steps.gate import run_gate
    from mlspec.runtime.steps.register import run_register

    tmp = tmp_path_factory.mktemp("batch-registry")
    spec = iris_spec(tmp)
    run_gate(spec, iris_run["metrics"], str(tmp / "gate.json"), str(tmp / "passed"))
    run_register(spec, iris_run["model"], iris_run["metrics"], str(tmp / "gate.json"),
                 iris_run["dataset"], str(tmp / "registration.json"))
    return {"dir": tmp, "tracking_uri": spec["registry"]["tracking_uri"]}


def iris_rows():
    import pandas as pd
    from sklearn.datasets import load_iris

    frame = load_iris(as_frame=True).frame.drop(columns="target")
    frame.columns = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    frame.insert(0, "id", range(len(frame)))
    return pd.DataFrame(frame)


def make_inputs(folder: Path) -> Path:
    """scoring/a.parquet (rows 0-99) and scoring/b.csv (rows 100-149, 3 of them broken), plus
    files a listing must skip (_SUCCESS, .hidden.parquet, notes.txt)."""
    rows = iris_rows()
    scoring = folder / "scoring"
    scoring.mkdir(parents=True)
    rows.iloc[:100].to_parquet(scoring / "a.parquet", index=False)
    tail = rows.iloc[100:].copy()
    tail.loc[tail.index[:BROKEN_ROWS], "sepal_length"] = -1.0
    tail.to_csv(scoring / "b.csv", index=False)
    (scoring / "_SUCCESS").write_text("")
    rows.iloc[:5].to_parquet(scoring / ".hidden.parquet", index=False)
    (scoring / "notes.txt").write_text("not data")
    return scoring


def batch_spec(registered: dict[str, Any], folder: Path, **batch: Any) -> dict[str, Any]:
    spec = iris_spec(registered["dir"])
    spec["batch"] = {"input": str(folder / "scoring"), "output": str(folder / "predictions"),
                     "model": "staging", "schedule": None, "chunk_rows": 40, "keys": None,
                     "max_violation_fraction": 0.05, "pushgateway_url": None, **batch}
    return spec
