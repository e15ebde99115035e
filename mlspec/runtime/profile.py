"""The reference profile of training data, saved as ``reference_profile.json`` in the model folder.

Numeric features: quantile bin edges (deciles of the reference, interior edges only; the outer
bins are open so any value falls in a bin) with the reference's count per bin, 101 quantiles
(0%, 1%, ..., 100%) for approximate KS and Wasserstein, and summary statistics. Categorical
features (category, string, bool): the count of each value, keyed by ``str(value)``.
Drift evaluation (``mlspec drift``, the model server) reads it later.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from mlspec.runtime.features import FeatureSpec

from mlspec.runtime.drift.stats import (
    N_BINS,
    binned_counts,
    decile_edges,
    sorted_quantiles,
    value_counts,
)

PROFILE_FILE = "reference_profile.json"
PROFILE_VERSION = 1
QUANTILE_LEVELS = 101


def numeric_profile(values: np.ndarray) -> dict[str, Any]:
    """The profile of one numeric column (NaN counted as nulls). Bins and quantiles come from
    the drift module's own functions, so a profile bins exactly as ``mlspec drift`` bins a
    reference dataset."""
    import numpy as np

    values = np.asarray(values, dtype="float64")
    present = np.sort(values[~np.isnan(values)])
    n = int(present.size)
    edges = decile_edges(present, n)
    out: dict[str, Any] = {"kind": "numeric", "count": n,
                           "nulls": int(values.size - present.size)}
    if present.size:
        out.update({
            "min": float(present[0]), "max": float(present[-1]),
            "mean": float(present.mean()), "std": float(present.std()),
            "edges": [float(e) for e in edges],
            "counts": [int(c) for c in binned_counts(present, n, edges)],
            "quantiles": [float(q) for q in sorted_quantiles(
                present[None, :], np.array([n]), np.linspace(0, 1, QUANTILE_LEVELS))[0]],
        })
    return out


def categorical_profile(values: pd.Series) -> dict[str, Any]:
    """The profile of one categorical column: counts of each ``str(value)``."""
    labels, counts = value_counts(values)
    present = int(counts.sum())
    return {"kind": "categorical", "count": present, "nulls": int(values.size - present),
            "frequencies": {k: int(v) for k, v in sorted(zip(labels, counts, strict=True))}}


def build_profile(frame: pd.DataFrame, features: list[FeatureSpec]) -> dict[str, Any]:
    """The reference profile of ``frame`` for ``features`` (in their order)."""
    import pandas as pd

    out: dict[str, Any] = {}
    for f in features:
        column = frame[f.name]
        if f.numeric and pd.api.types.is_numeric_dtype(column.dtype) and not \
                pd.api.types.is_bool_dtype(column.dtype):
            out[f.name] = {"type": f.type, **numeric_profile(column.to_numpy(dtype="float64",
                                                                               na_value=float("nan")))}
        else:
            out[f.name] = {"type": f.type, **categorical_profile(column)}
    return {"version": PROFILE_VERSION, "rows": int(len(frame)), "bins": N_BINS,
            "features": out}
