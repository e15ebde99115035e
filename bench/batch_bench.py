"""Batch scoring benchmark: mlspec's ``score`` vs MLflow's pyfunc and a pandas read-everything
baseline, on the same model and the same parquet file, in one run.

The data: ``--rows`` rows (default 10 million) x 20 float features plus an id column, one parquet
file with row groups of 100,000 rows, ~2 % of the rows breaking the data contract (a negative
value where ``min: 0``). The model: the mlspec train step's own scikit-learn pipeline (imputer
and scaler, then ``--estimator``, default logistic regression) fitted on 50,000 rows and saved as
an MLflow model folder, which all three load.

- mlspec: ``mlspec.runtime.batch.score.score_file`` as the score step runs it: Arrow batches of
  ``chunk_rows``, the contract check per row, predictions and class probabilities with the id
  column written to parquet, drift counts; violating rows set aside.
- MLflow: ``mlflow.pyfunc.load_model(folder).predict(pandas.read_parquet(file))``, the whole
  file at once (predictions only, nothing written, no contract check).
- pandas: ``pandas.read_parquet`` everything, then the scikit-learn pipeline's ``predict``.

Each runs in a fresh process (so its peak RSS is its own, read from ``ru_maxrss`` of the child);
times count from the first read to the last prediction (mlspec: to the published file), without
interpreter start-up and model loading. ``--repeat`` rounds run the three interleaved; figures
are medians.

Run: ``.venv/bin/python bench/batch_bench.py [--rows N] [--repeat R] [--chunk-rows C]``
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

N_FEATURES = 20
TRAIN_ROWS = 50_000
ROW_GROUP = 100_000
BROKEN_SHARE = 0.02

RUNNERS = {
    "mlspec": r"""
import json, sys, time
sys.path.insert(0, sys.argv[5])
from mlspec.runtime.batch.model import read_profile
from mlspec.runtime.batch.score import score_file
from mlspec.runtime.model_io import load_model
from mlspec.runtime.spec import load_project
project = load_project(sys.argv[3])
model = load_model(sys.argv[1]); profile = read_profile(sys.argv[1])
start = time.perf_counter()
summary = score_file(project, model, profile, sys.argv[2], sys.argv[4],
                     chunk_rows=project.batch.chunk_rows)
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "rows": summary["rows"], "scored": summary["scored"]}))
""",
    "mlflow": r"""
import json, sys, time, warnings
warnings.filterwarnings("ignore")
import mlflow.pyfunc, pandas as pd
model = mlflow.pyfunc.load_model(sys.argv[1])
start = time.perf_counter()
frame = pd.read_parquet(sys.argv[2])
predictions = model.predict(frame.drop(columns=["id"]))
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "rows": len(frame), "scored": len(predictions)}))
""",
    "pandas": r"""
import json, sys, time, warnings
warnings.filterwarnings("ignore")
import mlflow.sklearn, pandas as pd
model = mlflow.sklearn.load_model(sys.argv[1])
start = time.perf_counter()
frame = pd.read_parquet(sys.argv[2])
predictions = model.predict(frame.drop(columns=["id"]))
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "rows": len(frame), "scored": len(predictions)}))
""",
}


def make_data(folder: Path, rows: int, seed: int = 0) -> Path:
    """The scoring file, written row group by row group (never all in memory)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    path = folder / "scoring.parquet"
    writer = None
    for start in range(0, rows, ROW_GROUP):
        n = min(ROW_GROUP, rows - start)
        columns = {"id": pa.array(np.arange(start, start + n, dtype=np.int64))}
        values = rng.gamma(2.0, 1.0, size=(n, N_FEATURES))
        broken = rng.random(n) < BROKEN_SHARE
        values[broken, 0] = -1.0
        for j in range(N_FEATURES):
            columns[f"f{j}"] = pa.array(values[:, j])
        table = pa.table(columns)
        writer = writer or pq.ParquetWriter(str(path), table.schema)
        writer.write_table(table)
    if writer is not None:
        writer.close()
    return path


def make_spec(folder: Path, estimator: str, chunk_rows: int) -> Path:
    features = {f"f{j}": {"type": "float", "min": 0} for j in range(N_FEATURES)}
    spec = {
        "apiVersion": "mlspec/v1", "kind": "MLProject", "metadata": {"name": "batch-bench"},
        "data": {"source": {"uri": str(folder / "train.parquet")}, "target": "label",
                 "features": features},
        "model": {"task": "classification", "estimator": estimator, "params": {}},
        "registry": {"tracking_uri": f"sqlite:///{folder / 'mlruns.db'}"},
        "batch": {"input": str(folder / "scoring.parquet"), "output": str(folder / "out"),
                  "chunk_rows": chunk_rows, "max_violation_fraction": 0.1},
    }
    path = folder / "spec.json"
    path.write_text(json.dumps(spec))
    return path


def train(folder: Path, spec: Path) -> Path:
    import numpy as np
    import pandas as pd

    from mlspec.runtime.steps.train import run_train

    rng = np.random.default_rng(1)
    values = rng.gamma(2.0, 1.0, size=(TRAIN_ROWS, N_FEATURES))
    frame = pd.DataFrame(values, columns=[f"f{j}" for j in range(N_FEATURES)])
    frame["label"] = (values[:, :3].sum(axis=1) + rng.normal(0, 1, TRAIN_ROWS) > 6).astype(int)
    frame.to_parquet(folder / "train.parquet", index=False)
    model = folder / "model"
    run_train(str(spec), str(folder / "train.parquet"), str(model))
    return model


def run_one(name: str, model: Path, data: Path, spec: Path, out: Path) -> dict:
    """One runner in a fresh process: its figures and its peak RSS."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    done = subprocess.run([sys.executable, "-c", RUNNERS[name], str(model), str(data),
                           str(spec), str(out), str(ROOT)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{name} failed:\n{done.stderr[-3000:]}")
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    result = json.loads(done.stdout.strip().splitlines()[-1])
    # ru_maxrss of RUSAGE_CHILDREN is the largest child so far: only a new maximum is exact,
    # so each runner also reports when it is below an earlier one.
    result["peak_rss_mb"] = peak_kb / 1024 if peak_kb > before else None
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--chunk-rows", type=int, default=100_000)
    parser.add_argument("--estimator", default="sklearn.linear_model.LogisticRegression")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mlspec-batch-bench-") as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        data = make_data(folder, args.rows)
        size_mb = data.stat().st_size / 2**20
        print(f"data: {args.rows:,} rows x {N_FEATURES} features, {size_mb:,.0f} MB parquet "
              f"({time.perf_counter() - started:.1f} s to write)", flush=True)
        spec = make_spec(folder, args.estimator, args.chunk_rows)
        model = train(folder, spec)
        print(f"model: {args.estimator} in the train step's pipeline", flush=True)
        figures: dict[str, list[dict]] = {name: [] for name in RUNNERS}
        for round_ in range(args.repeat):
            # Peak RSS is only measurable for a new maximum: the smallest runs first.
            for name in ("mlspec", "pandas", "mlflow"):
                result = run_one(name, model, data, spec, folder / "out" / f"{round_}.parquet")
                figures[name].append(result)
                print(f"  round {round_ + 1} {name}: {result['seconds']:.2f} s", flush=True)
        report(figures, args.rows)


def report(figures: dict[str, list[dict]], rows: int) -> None:
    seconds = {n: statistics.median(r["seconds"] for r in runs) for n, runs in figures.items()}
    rss = {n: max((r["peak_rss_mb"] or 0) for r in runs) or None for n, runs in figures.items()}
    print(f"\n{'':8} {'seconds':>9} {'rows/s':>12} {'peak RSS':>10}  scored")
    for name, runs in figures.items():
        shown = f"{rss[name]:,.0f} MB" if rss[name] else "n/a"
        print(f"{name:8} {seconds[name]:9.2f} {rows / seconds[name]:12,.0f} {shown:>10}  "
              f"{runs[0]['scored']:,} of {runs[0]['rows']:,}")
    print(f"\nmlspec vs MLflow pyfunc: {seconds['mlflow'] / seconds['mlspec']:.2f}x the rows/s "
          "(goal >= 3x)")
    print(f"mlspec vs pandas read-all: {seconds['pandas'] / seconds['mlspec']:.2f}x the rows/s")
    if rss["mlspec"]:
        print(f"mlspec peak RSS {rss['mlspec']:,.0f} MB (goal < 1024 MB)")


if __name__ == "__main__":
    main()
