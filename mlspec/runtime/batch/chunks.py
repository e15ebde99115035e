"""Scoring one chunk: the contract check, the model, the output table, the drift counts.

Chunks are independent, so ``score_file`` runs several at once on a thread pool (NumPy,
scikit-learn and Arrow release the GIL in their inner loops) and writes the results in order.
Two things keep a chunk cheap:

* When every feature is numeric and Arrow holds them as numbers, the chunk is one float64
  matrix taken from the Arrow columns; the contract (nulls, ranges, whole numbers) is checked
  on it with vectorised comparisons, and the model gets a DataFrame view of it (no copy).
  Anything else (categories, text) goes through pandas, as the rest of the runtime does.
* A scikit-learn Pipeline's preprocessing runs once per chunk: its final estimator then gives
  both the class probabilities and the predictions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlspec.runtime.batch.contract import Rule, violations
from mlspec.runtime.errors import StepError, first_line
from mlspec.runtime.model_io import LoadedModel

PREDICTION, PROBABILITY_PREFIX = "prediction", "proba_"


@dataclass
class ChunkResult:
    table: Any  # pyarrow.Table: keys, prediction, proba_CLASS...
    rows: int
    scored: int
    violations: dict[str, dict[str, int]]
    predictions: np.ndarray
    drift: dict[str, Any] = field(default_factory=dict)


class ChunkScorer:
    """Scores Arrow record batches with one model; safe to call from several threads."""

    def __init__(self, model: LoadedModel, rules: list[Rule], key_columns: list[str],
                 drift: Any) -> None:
        self.model, self.rules, self.key_columns, self.drift = model, rules, key_columns, drift
        self.names = [r.feature.name for r in rules]
        self.classes = list(model.classes or [])
        self.classifier = model.meta.get("task") == "classification" and bool(self.classes) \
            and hasattr(model.model, "predict_proba")
        self.numeric = all(r.feature.type in ("float", "int") for r in rules)
        self.lows = np.array([-np.inf if r.min is None else r.min for r in rules])
        self.highs = np.array([np.inf if r.max is None else r.max for r in rules])
        self.nullable = np.array([r.feature.nullable for r in rules], dtype=bool)
        self.integer = np.array([r.feature.type == "int" for r in rules], dtype=bool)
        self.prepare, self.estimator = _split_pipeline(model.model)

    def __call__(self, batch: Any, seed: int) -> ChunkResult:
        matrix = self._matrix(batch)
        if matrix is not None:
            bad, counts = self._matrix_violations(matrix)
            # Column-major, so each feature is one contiguous array for the drift counts.
            good = _rows(matrix, ~bad) if bad.any() else matrix
            frame = _frame(good, self.names)
            columns: Any = {name: good[:, j] for j, name in enumerate(self.names)}
        else:
            full = batch.select(self.names).to_pandas()
            bad, counts = violations(full, self.rules)
            frame = columns = full[~bad] if bad.any() else full
        prediction, proba = self._predict(frame)
        return ChunkResult(
            table=self._table(batch, bad, prediction, proba), rows=batch.num_rows,
            scored=len(frame), violations=counts, predictions=prediction,
            drift=self.drift.count(columns, seed) if len(frame) else {"rows": 0, "features": {}})

    def _matrix(self, batch: Any) -> np.ndarray | None:
        """The features as one float64 matrix, or None when one is not held as numbers."""
        import pyarrow.types as pt

        if not self.numeric:
            return None
        columns = [batch.column(name) for name in self.names]
        if not all(pt.is_integer(c.type) or pt.is_floating(c.type) for c in columns):
            return None
        matrix = np.empty((batch.num_rows, len(columns)), dtype=np.float64, order="F")
        for j, column in enumerate(columns):
            matrix[:, j] = column.to_numpy(zero_copy_only=False)
        return matrix

    def _matrix_violations(self, matrix: np.ndarray) -> tuple[np.ndarray, dict]:
        """Rows breaking the contract, and the counts by feature and kind; only the checks
        some feature has are made."""
        nulls = np.isnan(matrix)
        checks = {}
        if not self.nullable.all():
            checks["nullable"] = nulls & ~self.nullable
        with np.errstate(invalid="ignore"):
            if np.isfinite(self.lows).any() or np.isfinite(self.highs).any():
                checks["range"] = (matrix < self.lows) | (matrix > self.highs)
            if self.integer.any():
                whole = matrix[:, self.integer]
                checks["type"] = np.zeros_like(nulls)
                checks["type"][:, self.integer] = ~np.isnan(whole) & (whole != np.round(whole))
        bad = np.zeros(matrix.shape[0], dtype=bool)
        counts: dict[str, dict[str, int]] = {}
        for kind, mask in checks.items():
            per_feature = np.count_nonzero(mask, axis=0)
            if not per_feature.any():
                continue
            for j in np.flatnonzero(per_feature):
                counts.setdefault(self.names[j], {})[kind] = int(per_feature[j])
            bad |= mask.any(axis=1)
        return bad, counts

    def _predict(self, frame: Any) -> tuple[np.ndarray, np.ndarray | None]:
        if not len(frame):
            dtype = np.asarray(self.classes).dtype if self.classes else np.float64
            return np.asarray([], dtype=dtype), (np.empty((0, len(self.classes)))
                                                 if self.classifier else None)
        from mlspec.runtime.preprocess import feature_frame

        X = frame if self.numeric else feature_frame(frame, self.model.features)
        try:
            # A Pipeline's preprocessing once, for both the probabilities and the predictions.
            prepared = X if self.prepare is None else self.prepare.transform(X)
            proba = self.estimator.predict_proba(prepared) if self.classifier else None
            return np.asarray(self.estimator.predict(prepared)), proba
        except (ValueError, TypeError) as exc:
            raise StepError(f"the model cannot predict on this data: {first_line(exc)}") from None

    def _table(self, batch: Any, bad: np.ndarray, prediction: np.ndarray,
               proba: np.ndarray | None) -> Any:
        import pyarrow as pa

        keep = pa.array(~bad) if bad.any() else None
        columns = {}
        for name in self.key_columns:
            column = batch.column(name)
            columns[name] = column.filter(keep) if keep is not None else column
        columns[PREDICTION] = pa.array(prediction)
        if proba is not None:
            for j, cls in enumerate(self.classes):
                columns[f"{PROBABILITY_PREFIX}{cls}"] = pa.array(np.ascontiguousarray(proba[:, j]))
        return pa.table(columns)


def _split_pipeline(model: Any) -> tuple[Any, Any]:
    """(the preprocessing, the final estimator) of a scikit-learn Pipeline, else (None, model)."""
    steps = getattr(model, "steps", None)
    if not steps or len(steps) < 2 or not hasattr(model, "__getitem__"):
        return None, model
    return model[:-1], steps[-1][1]


def _rows(matrix: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """The kept rows of a column-major matrix, still column-major (a column at a time: the
    row selection NumPy does on the whole matrix returns row-major)."""
    out = np.empty((int(np.count_nonzero(keep)), matrix.shape[1]), dtype=matrix.dtype, order="F")
    for j in range(matrix.shape[1]):
        out[:, j] = matrix[:, j][keep]
    return out


def _frame(matrix: np.ndarray, names: list[str]) -> Any:
    import pandas as pd

    return pd.DataFrame(matrix, columns=names, copy=False)
