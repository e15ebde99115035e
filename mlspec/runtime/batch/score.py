"""``score``: one partition through the model, in chunks of ``batch.chunk_rows`` rows.

Memory is bounded by the chunk, not the partition: Arrow reads the file batch by batch (only
the feature and key columns), each chunk is checked against the data contract, its valid rows
are scored, and the predictions (the key columns, ``prediction`` and, for a classifier,
``proba_CLASS`` per class) are appended to one parquet file that is published whole at the
end (``mlspec.runtime.batch.locations.published``). Rows that break the contract are never
scored: they are counted by feature and kind. The chunks' features also feed a drift
accumulator (``mlspec.runtime.drift.streaming``), whose state goes into the summary.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from typing import Any

import numpy as np

from mlspec.runtime.batch.contract import add_counts, contract_rules, violations
from mlspec.runtime.batch.locations import join, local_copy, published, write_text
from mlspec.runtime.batch.model import download_model
from mlspec.runtime.batch.plan import read_plan, require_batch
from mlspec.runtime.errors import StepError, first_line
from mlspec.runtime.io import write_json
from mlspec.runtime.model_io import LoadedModel, load_model
from mlspec.runtime.spec import load_project

PREDICTION, PROBABILITY_PREFIX = "prediction", "proba_"
SUMMARIES = "_summaries"
PROGRESS_EVERY_S = 10.0


def part_name(index: int) -> str:
    return f"part-{index:05d}"


def run_score(spec, in_plan: str, partition: str, out_summary: str | None = None
              ) -> dict[str, Any]:
    """Score partition ``partition`` (its index in the plan) with the plan's model version."""
    project = load_project(spec)
    batch = require_batch(project)
    plan = read_plan(in_plan)
    try:
        item = plan["partitions"][int(partition)]
    except (ValueError, IndexError):
        raise StepError(f"--partition {partition!r}: the plan has partitions 0 to "
                        f"{len(plan['partitions']) - 1}") from None
    folder = tempfile.mkdtemp(prefix="mlspec-score-model-")
    try:
        model = load_model(download_model(project, plan["model"]["uri"], folder))
        name = part_name(item["index"])
        summary = score_file(project, model, plan["profile"], item["uri"],
                             join(plan["output"], f"{name}.parquet"),
                             chunk_rows=batch.chunk_rows, keys=batch.keys, label=name)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    summary.update({"index": item["index"], "batch_id": plan["batch_id"],
                    "model": plan["model"]})
    import json

    write_text(join(plan["output"], SUMMARIES, f"{name}.json"),
               json.dumps(summary, indent=2, sort_keys=True, allow_nan=False) + "\n")
    if out_summary:
        write_json(summary, out_summary)
    return summary


def score_file(project, model: LoadedModel, profile: dict[str, Any], source: str,
               destination: str,
               chunk_rows: int, keys: list[str] | None = None, label: str = "score"
               ) -> dict[str, Any]:
    """Score the data file ``source`` into the parquet file ``destination``; the summary."""
    import pyarrow.parquet as pq

    from mlspec.runtime.drift.streaming import DriftAccumulator

    started = time.monotonic()
    features = model.features
    rules = contract_rules(project, features)
    drift = DriftAccumulator(profile, [f.name for f in features],
                             project.monitoring.drift.method)
    tally = _Tally(model)
    with local_copy(source) as path, published(destination) as local:
        dataset = _dataset(path, source)
        key_columns = _key_columns(project, dataset.schema.names, features, keys, source)
        writer = None
        last_report = started
        try:
            for record_batch in dataset.to_batches(
                    columns=_read_columns(features, key_columns), batch_size=chunk_rows):
                table = _score_chunk(record_batch, model, rules, key_columns, drift, tally)
                if writer is None:
                    writer = pq.ParquetWriter(str(local), table.schema)
                writer.write_table(table)
                if time.monotonic() - last_report > PROGRESS_EVERY_S:
                    last_report = time.monotonic()
                    _progress(label, tally.rows, last_report - started)
            if writer is None:  # an empty partition: an empty file, with the key columns
                writer = pq.ParquetWriter(str(local), dataset.schema)
        finally:
            if writer is not None:
                writer.close()
    seconds = time.monotonic() - started
    return {"partition": source, "output": destination, "rows": tally.rows,
            "scored": tally.scored, "violation_rows": tally.rows - tally.scored,
            "violations": tally.violations, "predictions": tally.predictions(),
            "drift": drift.to_dict(), "seconds": round(seconds, 3),
            "rows_per_second": round(tally.rows / seconds, 1) if seconds > 0 else None}


def _read_columns(features, key_columns: list[str]) -> list[str]:
    """Features, then keys that are not features (a key may also be a model input)."""
    names = [f.name for f in features]
    return names + [k for k in key_columns if k not in names]


def _dataset(path: str, source: str):
    import pyarrow.dataset as ds

    fmt = "csv" if path.lower().endswith(".csv") else "parquet"
    try:
        return ds.dataset(path, format=fmt)
    except Exception as exc:  # noqa: BLE001 - Arrow raises many types for bad files
        raise StepError(f"cannot read {source} as {fmt}: {first_line(exc)}") from None


def _key_columns(project, names: list[str], features, keys: list[str] | None,
                 source: str) -> list[str]:
    """The columns copied beside the predictions; StepError when a feature or key is missing."""
    wanted = {f.name for f in features}
    missing = [n for n in [f.name for f in features] + list(keys or []) if n not in names]
    if missing:
        raise StepError(f"{source} has no column{'s' if len(missing) > 1 else ''} "
                        f"{', '.join(map(repr, missing))} (columns: {', '.join(names[:20])})")
    if keys is not None:
        return list(keys)
    return [n for n in names if n not in wanted and n != project.data.target]


def _score_chunk(record_batch, model: LoadedModel, rules, key_columns: list[str], drift,
                 tally: _Tally):
    import pyarrow as pa

    from mlspec.runtime.preprocess import feature_frame

    frame = record_batch.to_pandas()
    bad, counts = violations(frame, rules)
    add_counts(tally.violations, counts)
    good = frame[~bad] if bad.any() else frame
    tally.rows += len(frame)
    tally.scored += len(good)
    columns = {name: pa.array(good[name].to_numpy(), from_pandas=True) for name in key_columns}
    if len(good):
        X = feature_frame(good, model.features)
        try:
            proba = model.predict_proba(X) if tally.classifier else None
            prediction = np.asarray(model.predict(X))
        except (ValueError, TypeError) as exc:
            raise StepError(f"the model cannot predict on this data: {first_line(exc)}") from None
        drift.add(good)
    else:
        prediction = np.asarray([], dtype=tally.prediction_dtype)
        proba = np.empty((0, len(tally.classes))) if tally.classifier else None
    tally.add(prediction)
    columns[PREDICTION] = pa.array(prediction)
    if proba is not None:
        for j, cls in enumerate(tally.classes):
            columns[f"{PROBABILITY_PREFIX}{cls}"] = pa.array(np.ascontiguousarray(proba[:, j]))
    return pa.table(columns)


class _Tally:
    """Rows seen and scored, violations by feature and kind, and what was predicted."""

    def __init__(self, model: LoadedModel) -> None:
        self.classes = list(model.classes or [])
        self.classifier = model.meta.get("task") == "classification" and bool(self.classes) \
            and hasattr(model.model, "predict_proba")
        self.prediction_dtype = np.asarray(self.classes).dtype if self.classes else np.float64
        self.rows = self.scored = 0
        self.violations: dict[str, dict[str, int]] = {}
        self.class_counts: dict[str, int] = {}
        self.sum = self.sum_squares = 0.0

    def add(self, prediction: np.ndarray) -> None:
        if not prediction.size:
            return
        if self.classes or prediction.dtype.kind not in "fc":
            values, counts = np.unique(prediction, return_counts=True)
            for value, count in zip(values.tolist(), counts.tolist(), strict=True):
                self.class_counts[str(value)] = self.class_counts.get(str(value), 0) + count
        else:
            self.sum += float(prediction.sum())
            self.sum_squares += float(np.square(prediction).sum())

    def predictions(self) -> dict[str, Any]:
        if self.class_counts or self.classes:
            return {"classes": dict(sorted(self.class_counts.items()))}
        return {"sum": self.sum, "sum_squares": self.sum_squares}


def _progress(label: str, rows: int, seconds: float) -> None:
    print(f"{label}: {rows:,} rows scored so far ({rows / seconds:,.0f} rows/s)",
          file=sys.stderr, flush=True)
