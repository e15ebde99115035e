"""Drift between a reference (a dataset or a model's reference profile) and current data.

Statistics per feature (see docs/runtime.md for the binning):

- ``ks``: two-sample Kolmogorov–Smirnov statistic D and p-value, as ``scipy.stats.ks_2samp``
  (exact p-value when both samples have at most 10 000 rows, else Smirnov's asymptotic).
- ``wasserstein``: the 1-Wasserstein distance (``scipy.stats.wasserstein_distance``) divided by
  the reference's standard deviation, so one threshold fits every feature.
- ``chi2``: Pearson's chi-square test of homogeneity on the 2 x K table of counts, as
  ``scipy.stats.chi2_contingency`` (Yates' correction when K = 2); numeric features are binned
  by the reference's deciles.
- ``psi``: population stability index over the reference's decile bins (categories for
  categorical features), proportions floored at 1e-4.
- ``js``: Jensen–Shannon distance (base 2, in [0, 1]) over the same bins.

A feature drifts when its statistic exceeds the threshold, except ``chi2`` whose statistic has
no fixed scale: it drifts when its p-value is below the threshold. ``ks`` and ``wasserstein``
compare numeric distributions; on a categorical feature they fall back to ``chi2`` and ``js``.

Numeric features are processed as one ``features x rows`` matrix: each column is sorted once
and everything else reuses the sorted columns. KS: a grid of every s-th value of each sample
brackets both ECDFs without any binary search; only the few values and gaps whose bound could
hold the maximum are settled, in exact integer counts. Wasserstein: its quantile form over the
merged grid of 1/n1 and 1/n2 steps (mean |sorted1 - sorted2| for equal sizes). Bins: binary
searches of the sorted columns. No Python loop runs over rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlspec.runtime.drift.stats import (
    _binned,
    _pad,
    binned_counts,
    decile_edges,
    kolmogorov_sf,
    ks_p_values,
    ks_wasserstein,
    sort_rows,
    value_counts,
)
from mlspec.runtime.errors import StepError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

METHODS = ("psi", "ks", "chi2", "js", "wasserstein")
DEFAULT_THRESHOLDS = {"psi": 0.2, "ks": 0.1, "chi2": 0.05, "js": 0.1, "wasserstein": 0.1}
# ks and wasserstein compare numeric distributions; categories use their nearest kin.
CATEGORICAL_FALLBACK = {"ks": "chi2", "wasserstein": "js"}
P_VALUE_METHODS = frozenset({"chi2"})
CHART_BINS = 30


@dataclass
class FeatureDrift:
    """One feature's verdict, plus the histogram data the HTML report draws."""

    name: str
    kind: str  # "numeric" | "categorical"
    method: str
    statistic: float
    p_value: float | None
    threshold: float
    drifted: bool
    chart: dict[str, Any] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "method": self.method, "statistic": _finite(self.statistic),
                "p_value": _finite(self.p_value), "threshold": self.threshold,
                "drifted": self.drifted}


@dataclass
class DriftReport:
    method: str
    threshold: float
    features: list[FeatureDrift]
    reference_rows: int
    current_rows: int
    reference_kind: str  # "dataset" | "profile"

    @property
    def drift(self) -> bool:
        return any(f.drifted for f in self.features)

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of ``mlspec drift --format json``."""
        return {"version": 1, "drift": self.drift, "method": self.method,
                "threshold": self.threshold, "features": [f.to_dict() for f in self.features]}


def _finite(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def is_drifted(method: str, statistic: float, p_value: float | None, threshold: float) -> bool:
    """The verdict rule: p-value below the threshold for chi2, else statistic above it."""
    if method in P_VALUE_METHODS:
        return p_value is not None and p_value < threshold
    return bool(statistic > threshold)


# --- inputs ------------------------------------------------------------------------------------
def numeric_matrix(columns: list[Any]) -> np.ndarray:
    """A (features x rows) float64 matrix from columns (NaN for missing)."""
    import numpy as np

    if not columns:
        return np.empty((0, 0))
    return np.stack([_floats(c) for c in columns])


def _floats(column: Any) -> np.ndarray:
    import numpy as np

    if hasattr(column, "to_numpy"):
        try:
            return column.to_numpy(dtype=np.float64, na_value=np.nan)
        except (TypeError, ValueError):
            import pandas as pd

            return pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64,
                                                                   na_value=np.nan)
    return np.asarray(column, dtype=np.float64)


def is_numeric_column(column: Any) -> bool:
    import numpy as np
    import pandas as pd

    dtype = column.dtype if hasattr(column, "dtype") else np.asarray(column).dtype
    return bool(pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype))


# --- dataset vs dataset ------------------------------------------------------------------------
def compare_frames(reference: pd.DataFrame, current: pd.DataFrame, method: str = "psi",
                   threshold: float | None = None, features: list[str] | None = None,
                   kinds: dict[str, str] | None = None, charts: bool = True) -> DriftReport:
    """Drift of every feature between two datasets.

    Args:
        reference, current: the two datasets (the same feature columns).
        method: psi | ks | chi2 | js | wasserstein.
        threshold: the verdict threshold (default per method: ``DEFAULT_THRESHOLDS``).
        features: the columns to compare (default: every column both have).
        kinds: ``{name: "numeric" | "categorical"}`` (default: from the reference's dtypes).
        charts: keep histogram data for the HTML report.
    """
    method, threshold = _check_method(method, threshold)
    names = _feature_names(list(reference.columns), list(current.columns), features)
    kinds = {n: (kinds or {}).get(n) or ("numeric" if is_numeric_column(reference[n])
                                         else "categorical") for n in names}
    numeric = [n for n in names if kinds[n] == "numeric"]
    categorical = [n for n in names if kinds[n] == "categorical"]
    results: dict[str, FeatureDrift] = {}
    if numeric:
        results.update(_numeric_frames(numeric, reference, current, method, threshold, charts))
    if categorical:
        ref = [_categorical_counts_pair(reference[n], current[n]) for n in categorical]
        results.update(_categorical(categorical, ref, method, threshold, charts))
    return DriftReport(method, threshold, [results[n] for n in names], len(reference),
                       len(current), "dataset")


def _check_method(method: str, threshold: float | None) -> tuple[str, float]:
    if method not in METHODS:
        raise StepError(f"unknown drift method {method!r}; use one of {', '.join(METHODS)}")
    if threshold is None:
        threshold = DEFAULT_THRESHOLDS[method]
    if not (isinstance(threshold, (int, float)) and math.isfinite(threshold) and threshold > 0):
        raise StepError(f"the drift threshold must be a positive number, got {threshold!r}")
    return method, float(threshold)


def _feature_names(ref_cols: list[str], cur_cols: list[str], wanted: list[str] | None) -> list[str]:
    if wanted:
        missing = [n for n in wanted if n not in ref_cols or n not in cur_cols]
        if missing:
            where = "reference" if missing[0] not in ref_cols else "current data"
            raise StepError(f"feature {missing[0]!r} is not in the {where}")
        return list(wanted)
    names = [c for c in ref_cols if c in set(cur_cols)]
    if not names:
        raise StepError("the reference and the current data have no column in common")
    return names


def _numeric_frames(names, reference, current, method, threshold, charts):
    import numpy as np

    ref_sorted, n1 = sort_rows(numeric_matrix([reference[n] for n in names]), inplace=True)
    cur_sorted, n2 = sort_rows(numeric_matrix([current[n] for n in names]), inplace=True)
    p_values = np.full(len(names), np.nan)
    if method in ("ks", "wasserstein"):
        d, w = ks_wasserstein(ref_sorted, n1, cur_sorted, n2, want_ks=method == "ks",
                              want_w=method == "wasserstein")
        if method == "ks":
            stats, p_values = ks_p_values(d, n1, n2)
        else:
            std = _row_std(ref_sorted, n1)
            stats = w / np.where(std > 0, std, 1.0)
    else:
        edges = [decile_edges(ref_sorted[j], n1[j]) for j in range(len(names))]
        ref_counts = _pad([binned_counts(ref_sorted[j], n1[j], e) for j, e in enumerate(edges)])
        cur_counts = _pad([binned_counts(cur_sorted[j], n2[j], e) for j, e in enumerate(edges)])
        stats, p_values = _binned(method, ref_counts, cur_counts)
    out = _verdicts(names, "numeric", method, stats, p_values, threshold)
    for j, name in enumerate(names):
        if charts and out[name].drifted:
            out[name].chart = _numeric_chart(ref_sorted[j, :n1[j]], cur_sorted[j, :n2[j]])
    return out


def _verdicts(names, kind, method, stats, p_values, threshold) -> dict[str, FeatureDrift]:
    """One FeatureDrift per feature from vectors of statistics and p-values (NaN: none)."""
    import numpy as np

    out = {}
    for j, name in enumerate(names):
        p = None if np.isnan(p_values[j]) else float(p_values[j])
        stat = float(stats[j])
        drifted = is_drifted(method, stat, p, threshold) if math.isfinite(stat) else False
        out[name] = FeatureDrift(name, kind, method, stat, p, threshold, drifted)
    return out


def _row_std(ordered: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Population standard deviation of each row's first ``counts`` values."""
    import numpy as np

    if (counts == ordered.shape[1]).all():  # no missing values: no masks to build
        return ordered.std(axis=1)
    valid = np.arange(ordered.shape[1])[None, :] < counts[:, None]
    values = np.where(valid, ordered, 0.0)
    n = np.maximum(counts, 1)
    mean = values.sum(axis=1) / n
    return np.sqrt((np.where(valid, ordered - mean[:, None], 0.0) ** 2).sum(axis=1) / n)


def _numeric_chart(ref: np.ndarray, cur: np.ndarray) -> dict[str, Any]:
    """Equal-width histogram data over both samples' 0.5–99.5 % range (sorted inputs)."""
    import numpy as np

    if ref.size == 0 or cur.size == 0:
        return {}
    both = [ref[int(0.005 * (ref.size - 1))], cur[int(0.005 * (cur.size - 1))],
            ref[int(0.995 * (ref.size - 1))], cur[int(0.995 * (cur.size - 1))]]
    low, high = float(min(both)), float(max(both))
    if high <= low:
        low, high = low - 0.5, high + 0.5
    edges = np.linspace(low, high, CHART_BINS + 1)
    return {"type": "numeric", "edges": edges.tolist(),
            "median": [float(ref[(ref.size - 1) // 2]), float(cur[(cur.size - 1) // 2])],
            "reference": _hist_sorted(ref, edges), "current": _hist_sorted(cur, edges)}


def _hist_sorted(values: np.ndarray, edges: np.ndarray) -> list[int]:
    import numpy as np

    cumulative = np.searchsorted(values, edges, side="left")
    counts = np.diff(cumulative)
    counts[-1] += int(np.searchsorted(values, edges[-1], side="right") - cumulative[-1])
    return [int(c) for c in counts]


def _categorical_counts_pair(ref_col, cur_col) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(labels, reference counts, current counts) over the union of observed values, keyed by
    ``str(value)``. Each side is hashed once; only the few distinct values are matched across
    sides."""
    import numpy as np

    sides = [value_counts(ref_col), value_counts(cur_col)]
    labels = sorted(set(sides[0][0]) | set(sides[1][0]))
    index = {label: i for i, label in enumerate(labels)}
    out = []
    for names, counts in sides:
        full = np.zeros(len(labels), dtype=np.int64)
        np.add.at(full, np.array([index[n] for n in names], dtype=np.int64), counts)
        out.append(full)
    return labels, out[0], out[1]


def _categorical(names, triples, method, threshold, charts) -> dict[str, FeatureDrift]:
    used = CATEGORICAL_FALLBACK.get(method, method)
    ref_counts = _pad([t[1] for t in triples])
    cur_counts = _pad([t[2] for t in triples])
    stats, p_values = _binned(used, ref_counts, cur_counts)
    out = _verdicts(names, "categorical", used, stats, p_values, threshold)
    for j, name in enumerate(names):
        if charts and out[name].drifted:
            labels, r, c = triples[j]
            out[name].chart = {"type": "categorical", "labels": list(labels),
                               "reference": [int(x) for x in r], "current": [int(x) for x in c]}
    return out


# --- profile vs current ------------------------------------------------------------------------
def compare_profile(profile: dict[str, Any], current: pd.DataFrame | dict[str, Any],
                    method: str = "psi", threshold: float | None = None,
                    features: list[str] | None = None, charts: bool = True) -> DriftReport:
    """Drift of current data against a reference profile (``reference_profile.json``).

    PSI, JS and chi-square use the profile's decile bins and category counts exactly; KS and
    Wasserstein approximate the reference's distribution by interpolating its 101 quantiles.
    """
    method, threshold = _check_method(method, threshold)
    specs = profile.get("features")
    if not isinstance(specs, dict) or not specs:
        raise StepError("the reference profile has no features")
    cur_cols = list(current.keys()) if isinstance(current, dict) else list(current.columns)
    names = _feature_names(list(specs), cur_cols, features)
    out = []
    for name in names:
        out.append(_profile_feature(name, specs[name], current[name], method, threshold,
                                    charts))
    rows = len(next(iter(current.values()))) if isinstance(current, dict) and current else \
        len(current)
    return DriftReport(method, threshold, out, int(profile.get("rows", 0)), int(rows), "profile")


def _profile_feature(name, spec, column, method, threshold, charts) -> FeatureDrift:
    import numpy as np

    if spec.get("kind") == "numeric":
        values = _floats(column)
        cur = np.sort(values[~np.isnan(values)])
        stat, p = _profile_numeric(spec, cur, method)
        used = method
        chart = _profile_numeric_chart(spec, cur) if charts else {}
        kind = "numeric"
    else:
        used = CATEGORICAL_FALLBACK.get(method, method)
        freqs = spec.get("frequencies") or {}
        counts = dict(zip(*value_counts(column), strict=True))
        labels = sorted(set(freqs) | set(counts))
        r = np.array([[freqs.get(v, 0) for v in labels]], dtype=np.int64)
        c = np.array([[counts.get(v, 0) for v in labels]], dtype=np.int64)
        s, pv = _binned(used, r, c)
        stat, p = float(s[0]), (None if np.isnan(pv[0]) else float(pv[0]))
        chart = {"type": "categorical", "labels": labels, "reference": r[0].tolist(),
                 "current": c[0].tolist()} if charts else {}
        kind = "categorical"
    drifted = is_drifted(used, stat, p, threshold) if math.isfinite(stat) else False
    return FeatureDrift(name, kind, used, stat, p, threshold, drifted,
                        chart if drifted else {})


def _profile_numeric(spec: dict, cur: np.ndarray, method: str) -> tuple[float, float | None]:
    import numpy as np

    n1 = int(spec.get("count", 0))
    if cur.size == 0 or n1 == 0:
        return float("nan"), None
    if method in ("psi", "js", "chi2"):
        edges = np.asarray(spec.get("edges", []), dtype=np.float64)
        r = np.asarray([spec.get("counts", [n1])], dtype=np.int64)
        c = binned_counts(cur, cur.size, edges)[None, :]
        s, pv = _binned(method, r, c)
        return float(s[0]), (None if np.isnan(pv[0]) else float(pv[0]))
    quantiles = np.asarray(spec["quantiles"], dtype=np.float64)
    levels = np.linspace(0, 1, len(quantiles))
    if method == "ks":
        # The reference CDF: linear between its distinct quantiles, jumping where quantiles
        # repeat (a tied value). Both one-sided limits are compared with the current ECDF's at
        # every current value and every knot; the supremum lies at one of them.
        points = np.concatenate([cur, quantiles])
        ref_left, ref_right = _profile_cdf(points, quantiles, levels)
        n2 = cur.size
        cur_left = np.searchsorted(cur, points, side="left") / n2
        cur_right = np.searchsorted(cur, points, side="right") / n2
        d = float(max(np.abs(ref_left - cur_left).max(), np.abs(ref_right - cur_right).max()))
        m, n = max(n1, n2), min(n1, n2)
        return d, kolmogorov_sf(d, round(m * n / (m + n)))
    # Wasserstein: the integral of |Q_ref(u) - Q_cur(u)| on a fine grid of u.
    grid = (np.arange(2000) + 0.5) / 2000
    q_ref = np.interp(grid, levels, quantiles)
    q_cur = cur[np.minimum((grid * cur.size).astype(np.int64), cur.size - 1)]
    std = float(spec.get("std") or 0.0)
    return float(np.abs(q_ref - q_cur).mean() / (std if std > 0 else 1.0)), None


def _profile_cdf(x: np.ndarray, quantiles: np.ndarray, levels: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Left and right limits at ``x`` of the CDF that passes through the profile's quantiles.

    Knots are the distinct quantile values; a value repeated over several levels is a jump
    from its lowest to its highest level (a tied value); between knots the CDF is linear.
    """
    import numpy as np

    values, first = np.unique(quantiles, return_index=True)
    _, last_rev = np.unique(quantiles[::-1], return_index=True)
    bottom = levels[first]
    top = levels[len(levels) - 1 - last_rev]
    k = np.searchsorted(values, x, side="right") - 1  # the last knot <= x
    inside = (k >= 0) & (k < len(values) - 1)
    kk = np.clip(k, 0, len(values) - 1)
    nxt = np.clip(k + 1, 0, len(values) - 1)
    span = np.where(inside, values[nxt] - values[kk], 1.0)
    t = np.where(inside, (x - values[kk]) / np.where(span > 0, span, 1.0), 0.0)
    between = top[kk] + t * (bottom[nxt] - top[kk])
    at_knot = (k >= 0) & (values[kk] == x)
    right = np.where(k < 0, 0.0, np.where(at_knot, top[kk], np.where(inside, between, 1.0)))
    left = np.where(k < 0, 0.0, np.where(at_knot, bottom[kk], np.where(inside, between, 1.0)))
    return left, right


def _profile_numeric_chart(spec: dict, cur: np.ndarray) -> dict[str, Any]:
    import numpy as np

    if "edges" not in spec or cur.size == 0:
        return {}
    low = min(float(spec["min"]), float(cur[0]))
    high = max(float(spec["max"]), float(cur[-1]))
    edges = [low, *spec["edges"], high]
    if edges[-1] <= edges[0]:
        return {}
    inner = np.asarray(spec["edges"], dtype=np.float64)
    return {"type": "numeric", "edges": edges, "reference": list(spec["counts"]),
            "median": [float(spec["quantiles"][len(spec["quantiles"]) // 2]),
                       float(cur[(cur.size - 1) // 2])],
            "current": [int(c) for c in binned_counts(cur, cur.size, inner)]}


def drift_from_profile(profile: dict[str, Any], current_columns: dict[str, np.ndarray],
                       method: str = "psi") -> dict[str, tuple[str, float]]:
    """Online drift for the model server: ``{feature: (method used, statistic)}`` of a window
    of rows. The method is the one asked for, except on a categorical feature where ``ks`` and
    ``wasserstein`` fall back to ``chi2`` and ``js`` (``CATEGORICAL_FALLBACK``), so a gauge
    labelled with it is never compared with another method's threshold.

    Cheap: bins and counts come from the profile; the window is sorted once per feature.
    Features the window lacks are skipped. For ``chi2`` the statistic is the chi-square value
    (compare p-values with ``compare_profile`` when you need the verdict).
    """
    specs = profile.get("features") or {}
    names = [n for n in specs if n in current_columns]
    if not names:
        return {}
    report = compare_profile(profile, {n: current_columns[n] for n in names}, method,
                             charts=False)
    return {f.name: (f.method, f.statistic) for f in report.features}


def compare(reference: pd.DataFrame | dict[str, Any], current: pd.DataFrame, method: str = "psi",
            threshold: float | None = None, features: list[str] | None = None,
            kinds: dict[str, str] | None = None, charts: bool = True) -> DriftReport:
    """Drift of ``current`` against a dataset or a reference profile (a dict)."""
    if isinstance(reference, dict):
        return compare_profile(reference, current, method, threshold, features, charts)
    return compare_frames(reference, current, method, threshold, features, kinds, charts)
