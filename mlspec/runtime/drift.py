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
and everything else reuses the sorted columns. KS: binary searches on a grid of sample values
bound the ECDF difference between grid points, and only the few gaps that could hold the maximum
are merged, in exact integer counts. Wasserstein: its quantile form over the merged grid of
1/n1 and 1/n2 steps (mean |sorted1 - sorted2| for equal sizes). Bins: binary searches of the
sorted columns. No Python loop runs over rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlspec.runtime.errors import StepError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

METHODS = ("psi", "ks", "chi2", "js", "wasserstein")
DEFAULT_THRESHOLDS = {"psi": 0.2, "ks": 0.1, "chi2": 0.05, "js": 0.1, "wasserstein": 0.1}
# ks and wasserstein compare numeric distributions; categories use their nearest kin.
CATEGORICAL_FALLBACK = {"ks": "chi2", "wasserstein": "js"}
P_VALUE_METHODS = frozenset({"chi2"})
PSI_FLOOR = 1e-4
N_BINS = 10
EXACT_KS_MAX_N = 10_000  # scipy's ks_2samp(method="auto") switch to the asymptotic p-value
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


# --- vectorised primitives over a (features x rows) matrix --------------------------------------
def sort_rows(matrix: np.ndarray, inplace: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Each row sorted (NaN last) and the count of non-NaN values per row."""
    import numpy as np

    ordered = matrix if inplace else matrix.copy()
    ordered.sort(axis=1)
    if matrix.shape[1] and np.isnan(ordered[:, -1]).any():
        counts = matrix.shape[1] - np.isnan(ordered).sum(axis=1)
    else:
        counts = np.full(matrix.shape[0], matrix.shape[1])
    return ordered, counts.astype(np.int64)


def sorted_quantiles(ordered: np.ndarray, counts: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Quantiles (numpy's "linear" method) of each row of an already sorted matrix whose row j
    has ``counts[j]`` valid values first: an index computation, no pass over the data."""
    import numpy as np

    position = (np.maximum(counts, 1) - 1)[:, None] * levels[None, :]
    low = np.floor(position).astype(np.int64)
    high = np.minimum(low + 1, np.maximum(counts - 1, 0)[:, None])
    frac = position - low
    a = np.take_along_axis(ordered, low, axis=1)
    b = np.take_along_axis(ordered, high, axis=1)
    out = a + (b - a) * frac
    out[counts == 0] = np.nan
    return out


def decile_edges(ordered_row: np.ndarray, count: int) -> np.ndarray:
    """Interior bin edges of one sorted row: its deciles, deduplicated."""
    import numpy as np

    if count == 0:
        return np.empty(0)
    levels = np.arange(1, N_BINS) / N_BINS
    return np.unique(sorted_quantiles(ordered_row[None, :count], np.array([count]), levels)[0])


def binned_counts(ordered_row: np.ndarray, count: int, edges: np.ndarray) -> np.ndarray:
    """Counts per bin (-inf, e1], ..., (ek, inf) of a sorted row: binary searches only."""
    import numpy as np

    cumulative = np.searchsorted(ordered_row[:count], edges, side="right")
    return np.diff(np.concatenate(([0], cumulative, [count]))).astype(np.int64)


def ks_wasserstein(ref_sorted: np.ndarray, n1: np.ndarray, cur_sorted: np.ndarray,
                   n2: np.ndarray, want_ks: bool = True, want_w: bool = True
                   ) -> tuple[np.ndarray, np.ndarray]:
    """KS statistic D and 1-Wasserstein distance of each row pair, from sorted rows (row j has
    ``n1[j]``/``n2[j]`` valid values first, NaN after). NaN where a side is empty."""
    import numpy as np

    k = ref_sorted.shape[0]
    ks = np.full(k, np.nan)
    wd = np.full(k, np.nan)
    if want_ks:
        for j in range(k):  # per feature; the work inside is vectorised
            if n1[j] and n2[j]:
                ks[j] = ks_sorted(ref_sorted[j, :n1[j]], cur_sorted[j, :n2[j]])
    if want_w:
        wd = _wasserstein_sorted(ref_sorted, n1, cur_sorted, n2)
    empty = (n1 == 0) | (n2 == 0)
    ks[empty], wd[empty] = np.nan, np.nan
    return ks, wd


MERGE_BLOCK = 1 << 21  # elements per merge block: a few MB per temporary
KS_GRID = 1024  # first-round grid points per sample for the bounded KS search
KS_ROUNDS = 3  # grid refinements before merging what is left
KS_MERGE_MAX = 20_000  # merge the remaining gaps once they hold this few values
KS_SPREAD = 16  # new grid points per open gap and sample in each refinement


def ks_sorted(r: np.ndarray, c: np.ndarray) -> float:
    """Two-sample KS statistic D of two sorted samples (no NaN), exactly as scipy's ks_2samp.

    D is the largest ``|F1(x) - F2(x)|`` over sample points x. Grid points (sample values)
    split the line into gaps: at grid points both ECDFs come from binary searches; inside a gap
    each ECDF lies between its values at the two ends, which bounds the difference there.
    Gaps whose bound beats the best grid value get a finer grid of their own (a few rounds),
    and the few gaps left are merged exactly. The cost after sorting is O(grid x log n).
    """
    import numpy as np

    n1, n2 = r.size, c.size
    if n1 + n2 <= 8 * KS_GRID:
        return float(_ks_block(r[None, :], np.array([n1]), c[None, :], np.array([n2]))[0])
    points = np.unique(np.concatenate([r[np.linspace(0, n1 - 1, KS_GRID).astype(np.int64)],
                                       c[np.linspace(0, n2 - 1, KS_GRID).astype(np.int64)]]))
    real_gap = np.ones(points.size - 1, dtype=bool)  # consecutive points bound a gap
    best = 0
    for round_ in range(KS_ROUNDS):
        # Counts <= g (right) and < g (left) of each sample at each point.
        r_le, r_lt = np.searchsorted(r, points, "right"), np.searchsorted(r, points, "left")
        c_le, c_lt = np.searchsorted(c, points, "right"), np.searchsorted(c, points, "left")
        best = max(best, int(np.abs(r_le * n2 - c_le * n1).max()))
        # Inside (g_k, g_k+1) the counts run from *_le[k] to *_lt[k + 1].
        upper = np.maximum(r_lt[1:] * n2 - c_le[:-1] * n1, c_lt[1:] * n1 - r_le[:-1] * n2)
        todo = np.flatnonzero((upper > best) & real_gap)
        lo1, hi1, lo2, hi2 = r_le[todo], r_lt[todo + 1], c_le[todo], c_lt[todo + 1]
        inside = int((hi1 - lo1).sum() + (hi2 - lo2).sum())
        if inside == 0:
            break
        if inside <= KS_MERGE_MAX or round_ == KS_ROUNDS - 1:
            best = max(best, _ks_intervals(r, c, lo1, hi1, lo2, hi2))
            break
        # Next round: only the open gaps, each with its two ends and samples from inside it.
        i1, p1 = _spread(lo1, hi1, todo)
        i2, p2 = _spread(lo2, hi2, todo)
        values = np.concatenate([points[todo], points[todo + 1], r[i1], c[i2]])
        parent = np.concatenate([todo, todo, p1, p2])
        order = np.lexsort((values, parent))
        values, parent = values[order], parent[order]
        keep = np.ones(values.size, dtype=bool)
        keep[1:] = (values[1:] != values[:-1]) | (parent[1:] != parent[:-1])
        points, parent = values[keep], parent[keep]
        real_gap = parent[1:] == parent[:-1]
    return best / (n1 * n2)


def _spread(lo: np.ndarray, hi: np.ndarray, gap: np.ndarray, per_gap: int = KS_SPREAD
            ) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``per_gap`` evenly spaced indices in each non-empty range [lo, hi), and the gap
    each belongs to."""
    import numpy as np

    keep = hi > lo
    lo, length, gap = lo[keep], (hi - lo)[keep], gap[keep]
    steps = np.tile(np.arange(per_gap, dtype=np.int64), lo.size)
    return (np.repeat(lo, per_gap) + steps * np.repeat(length, per_gap) // per_gap,
            np.repeat(gap, per_gap))


def _ks_intervals(r, c, lo1, hi1, lo2, hi2) -> int:
    """max |c1 * n2 - c2 * n1| at the last position of each run of equal values, over the
    elements strictly inside the given disjoint grid intervals (in increasing order): their
    slices are gathered, merged once, and counted from each interval's base counts."""
    import numpy as np

    n1, n2 = r.size, c.size
    len1, len2 = hi1 - lo1, hi2 - lo2
    idx1, idx2 = _ranges(lo1, len1), _ranges(lo2, len2)
    if idx1.size + idx2.size == 0:
        return 0
    # The intervals are disjoint and ordered, so the gathered slices are sorted and one stable
    # merge interleaves them exactly as a merge of the whole samples would.
    merged = np.concatenate([r[idx1], c[idx2]])
    order = np.argsort(merged, kind="stable")
    values = merged[order]
    from_r = order < idx1.size
    # An element's own sample count is its index + 1; the other sample's count is that
    # sample's count below the interval plus what the merge has seen of it in the interval.
    own = np.concatenate([idx1, idx2])[order] + 1
    interval = np.concatenate([np.repeat(np.arange(len1.size), len1),
                               np.repeat(np.arange(len2.size), len2)])[order]
    seen1 = np.cumsum(from_r)
    seen2 = np.arange(1, merged.size + 1) - seen1
    start1 = np.concatenate(([0], np.cumsum(len1)))[interval]
    start2 = np.concatenate(([0], np.cumsum(len2)))[interval]
    count1 = np.where(from_r, own, lo1[interval] + seen1 - start1)
    count2 = np.where(from_r, lo2[interval] + seen2 - start2, own)
    last = np.empty(merged.size, dtype=bool)
    np.not_equal(values[1:], values[:-1], out=last[:-1])
    last[-1] = True
    return int(np.abs(count1 * n2 - count2 * n1)[last].max())


def _ranges(starts, lengths):
    """Concatenated ``arange(start, start + length)`` of each pair, without a Python loop."""
    import numpy as np

    total = int(lengths.sum())
    if total == 0:
        return np.empty(0, dtype=np.int64)
    offsets = np.repeat(starts - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths)
    return np.arange(total, dtype=np.int64) + offsets


def _ks_block(ref_sorted, n1, cur_sorted, n2) -> np.ndarray:
    """D for a block of rows: merge the two sorted rows with a stable sort of their
    concatenation (two runs: linear time). ``c1`` counts reference values up to each merged
    position, so the ECDF difference there is ``|c1 * n2 - c2 * n1| / (n1 * n2)`` in exact
    integers; D is its maximum at the last position of each run of equal values (scipy's
    ``searchsorted(side="right")``)."""
    import numpy as np

    k, len1 = ref_sorted.shape
    merged = np.concatenate([ref_sorted, cur_sorted], axis=1)
    width = merged.shape[1]
    order = np.argsort(merged, axis=1, kind="stable")
    c1 = np.cumsum(order < len1, axis=1, dtype=np.int64)
    # A flat gather is several times cheaper than take_along_axis.
    order += (np.arange(k, dtype=np.int64) * width)[:, None]
    values = np.take(merged.ravel(), order)
    del order, merged
    total = n1 + n2
    # (c1/n1 - c2/n2) * n1 * n2 with c2 = position - c1, in exact integers, in place.
    c1 *= total[:, None]
    c1 -= np.arange(1, width + 1, dtype=np.int64)[None, :] * n1[:, None]
    last = np.empty(values.shape, dtype=bool)
    np.not_equal(values[:, 1:], values[:, :-1], out=last[:, :-1])
    last[:, -1] = True
    if (total < width).any():  # NaN tails sit beyond n1 + n2
        last[:, :] &= np.arange(1, width + 1)[None, :] <= total[:, None]
        last[np.arange(k), np.maximum(total - 1, 0)] = True  # the last valid value ends a run
    high = np.max(c1, axis=1, where=last, initial=0)
    low = np.min(c1, axis=1, where=last, initial=0)
    return np.maximum(high, -low) / (n1 * n2).astype(np.float64)


def _wasserstein_sorted(ref_sorted, n1, cur_sorted, n2) -> np.ndarray:
    """1-Wasserstein distance per row as ``scipy.stats.wasserstein_distance``, in its quantile
    form: the integral of |Q1(u) - Q2(u)| over u. On the merged grid {i/n1} U {j/n2} both
    quantile functions are constant between breakpoints, so the grid depends only on (n1, n2)
    and is built once per pair; equal sizes reduce to mean(|sorted1 - sorted2|)."""
    import numpy as np

    out = np.full(len(n1), np.nan)
    pairs = {(int(a), int(b)) for a, b in zip(n1, n2, strict=True) if a and b}
    for a, b in sorted(pairs):
        rows = np.flatnonzero((n1 == a) & (n2 == b))
        r, c = ref_sorted[rows, :a], cur_sorted[rows, :b]
        if a == b:
            out[rows] = np.abs(r - c).mean(axis=1)
            continue
        t = np.union1d(np.arange(1, a + 1, dtype=np.int64) * b,
                       np.arange(1, b + 1, dtype=np.int64) * a)  # u * a * b, integers
        weights = np.diff(t, prepend=0) / (a * b)
        qa = -(-t // b) - 1  # ceil(u * a) - 1
        qb = -(-t // a) - 1
        out[rows] = (np.abs(r[:, qa] - c[:, qb]) * weights).sum(axis=1)
    return out


def ks_p_values(d: np.ndarray, n1: np.ndarray, n2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two-sided p-values as ``scipy.stats.ks_2samp(method="auto")`` computes them (and D as it
    reports it: the exact method rounds D to a multiple of 1/lcm(n1, n2))."""
    import numpy as np

    d = d.copy()
    p = np.full(d.shape, np.nan)
    big = (np.maximum(n1, n2) > EXACT_KS_MAX_N) & ~np.isnan(d)
    for j in np.flatnonzero(big):
        m, n = float(max(n1[j], n2[j])), float(min(n1[j], n2[j]))
        p[j] = kolmogorov_sf(float(d[j]), int(np.round(m * n / (m + n))))
    for j in np.flatnonzero(~big & ~np.isnan(d)):  # small samples only: exact is cheap there
        d[j], p[j] = _exact_ks(int(n1[j]), int(n2[j]), float(d[j]))
    return d, np.clip(p, 0, 1)


def kolmogorov_sf(x: float, n: int) -> float:
    """``scipy.stats.kstwo.sf(x, n)``, faster where scipy sums Smirnov's series term by term.

    scipy (Simard & L'Ecuyer) answers ``2 * smirnov(n, x)`` when n > 140 and
    2.2 <= n x^2 < 370; ``scipy.special.smirnov`` loops over ~n terms (80 ms at n = 1e5). The
    same series summed in log space with numpy agrees to ~1e-10 relative (tested) in a tenth of
    the time. Every other case goes to scipy, where it is cheap.
    """
    from scipy.stats import distributions

    t = n * x
    if n > 140 and 1.0 < t < n - 1 and x < 0.5 and 2.2 <= t * x < 370.0:
        return min(max(2.0 * smirnov_sf(n, x), 0.0), 1.0)
    return float(distributions.kstwo.sf(x, n))


def smirnov_sf(n: int, d: float) -> float:
    """P(D+_n >= d), Smirnov's exact one-sided series:
    d * sum_j C(n, j) (d + j/n)^(j-1) (1 - d - j/n)^(n-j), for j = 0 .. floor(n (1 - d))."""
    import numpy as np
    from scipy.special import gammaln, logsumexp

    j = np.arange(0, int(np.floor(n * (1 - d))) + 1, dtype=np.float64)
    x = d + j / n
    with np.errstate(divide="ignore"):
        log_terms = (gammaln(n + 1) - gammaln(j + 1) - gammaln(n - j + 1)
                     + (j - 1) * np.log(x) + (n - j) * np.log1p(-x))
    return float(d * np.exp(logsumexp(log_terms)))


def _exact_ks(n1: int, n2: int, d: float) -> tuple[float, float]:
    from scipy.stats import _stats_py, distributions

    try:
        ok, d_exact, prob = _stats_py._attempt_exact_2kssamp(n1, n2, math.gcd(n1, n2), d,
                                                             "two-sided")
    except AttributeError:  # a scipy without the private helper: Smirnov's asymptotic
        ok = False
    if ok:
        return float(d_exact), float(prob)
    m, n = max(n1, n2), min(n1, n2)
    return d, float(distributions.kstwo.sf(d, round(m * n / (m + n))))


def chi2_table(ref_counts: np.ndarray, cur_counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Chi-square statistic and p-value per row of two (features x bins) count matrices, as
    ``scipy.stats.chi2_contingency`` on each 2 x K table (bins empty in both dropped; Yates'
    correction when K = 2)."""
    import numpy as np
    from scipy.special import chdtrc

    observed = np.stack([ref_counts, cur_counts], axis=1).astype(np.float64)  # k x 2 x K
    column = observed.sum(axis=1, keepdims=True)
    row = observed.sum(axis=2, keepdims=True)
    total = row.sum(axis=1, keepdims=True)
    used = column > 0
    expected = np.where(used, row * column / np.where(total > 0, total, 1), 1.0)
    dof = used[:, 0, :].sum(axis=1) - 1
    yates = (dof == 1)[:, None, None]
    delta = expected - observed
    corrected = observed + np.sign(delta) * np.minimum(0.5, np.abs(delta))
    observed = np.where(yates, corrected, observed)
    terms = np.where(used, (observed - expected) ** 2 / expected, 0.0)
    stat = terms.sum(axis=(1, 2))
    p = np.where(dof > 0, chdtrc(np.maximum(dof, 1), stat), 1.0)
    stat = np.where(dof > 0, stat, 0.0)
    empty = (total[:, 0, 0] == 0) | (row.min(axis=(1, 2)) == 0)
    stat[empty], p[empty] = np.nan, np.nan
    return stat, p


def psi(ref_counts: np.ndarray, cur_counts: np.ndarray) -> np.ndarray:
    """Population stability index per row; proportions are floored at ``PSI_FLOOR``."""
    import numpy as np

    p = _proportions(ref_counts)
    q = _proportions(cur_counts)
    p, q = np.maximum(p, PSI_FLOOR), np.maximum(q, PSI_FLOOR)
    return ((q - p) * np.log(q / p)).sum(axis=-1)


def js_distance(ref_counts: np.ndarray, cur_counts: np.ndarray) -> np.ndarray:
    """Jensen–Shannon distance (base 2) per row, as ``scipy.spatial.distance.jensenshannon``."""
    import numpy as np
    from scipy.special import rel_entr

    p = _proportions(ref_counts)
    q = _proportions(cur_counts)
    m = (p + q) / 2.0
    js = (rel_entr(p, m).sum(axis=-1) + rel_entr(q, m).sum(axis=-1)) / np.log(2)
    return np.sqrt(np.maximum(js, 0.0) / 2.0)


def _proportions(counts: np.ndarray) -> np.ndarray:
    import numpy as np

    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return counts / total


def _binned(method: str, ref_counts: np.ndarray, cur_counts: np.ndarray):
    """(statistic, p_value) of a binned method on (features x bins) count matrices."""
    import numpy as np

    if method == "psi":
        return psi(ref_counts, cur_counts), np.full(len(ref_counts), np.nan)
    if method == "js":
        return js_distance(ref_counts, cur_counts), np.full(len(ref_counts), np.nan)
    return chi2_table(ref_counts, cur_counts)


def _pad(rows: list[np.ndarray]) -> np.ndarray:
    import numpy as np

    width = max((len(r) for r in rows), default=0)
    out = np.zeros((len(rows), width), dtype=np.int64)
    for i, r in enumerate(rows):
        out[i, :len(r)] = r
    return out


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
    out = {}
    for j, name in enumerate(names):
        p = None if np.isnan(p_values[j]) else float(p_values[j])
        stat = float(stats[j])
        drifted = is_drifted(method, stat, p, threshold) if math.isfinite(stat) else False
        out[name] = FeatureDrift(name, "numeric", method, stat, p, threshold, drifted)
        if charts and drifted:
            out[name].chart = _numeric_chart(ref_sorted[j, :n1[j]], cur_sorted[j, :n2[j]])
    return out


def _row_std(ordered: np.ndarray, counts: np.ndarray) -> np.ndarray:
    import numpy as np

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
    ``str(value)``. Each side is hashed once (``value_counts``); only the few distinct values
    are matched across sides."""
    import numpy as np
    import pandas as pd

    sides = []
    for column in (ref_col, cur_col):
        counts = pd.Series(column, copy=False).value_counts(dropna=True, sort=False)
        sides.append(([str(u) for u in counts.index], counts.to_numpy(dtype=np.int64)))
    labels = sorted(set(sides[0][0]) | set(sides[1][0]))
    index = {label: i for i, label in enumerate(labels)}
    out = []
    for names, counts in sides:
        full = np.zeros(len(labels), dtype=np.int64)
        np.add.at(full, np.array([index[n] for n in names], dtype=np.int64), counts)
        out.append(full)
    return labels, out[0], out[1]


def _categorical(names, triples, method, threshold, charts) -> dict[str, FeatureDrift]:
    import numpy as np

    used = CATEGORICAL_FALLBACK.get(method, method)
    ref_counts = _pad([t[1] for t in triples])
    cur_counts = _pad([t[2] for t in triples])
    stats, p_values = _binned(used, ref_counts, cur_counts)
    out = {}
    for j, name in enumerate(names):
        p = None if np.isnan(p_values[j]) else float(p_values[j])
        stat = float(stats[j])
        drifted = is_drifted(used, stat, p, threshold) if math.isfinite(stat) else False
        out[name] = FeatureDrift(name, "categorical", used, stat, p, threshold, drifted)
        if charts and drifted:
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
        import pandas as pd

        counts = pd.Series(column).dropna().astype(str).value_counts()
        labels = sorted(set(freqs) | set(counts.index))
        r = np.array([[freqs.get(v, 0) for v in labels]], dtype=np.int64)
        c = np.array([[int(counts.get(v, 0)) for v in labels]], dtype=np.int64)
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
    from scipy.stats import distributions

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
        return d, float(np.clip(distributions.kstwo.sf(d, round(m * n / (m + n))), 0, 1))
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
                       method: str = "psi") -> dict[str, float]:
    """Online drift for the model server: ``{feature: statistic}`` of a window of rows.

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
    return {f.name: f.statistic for f in report.features}


def compare(reference: pd.DataFrame | dict[str, Any], current: pd.DataFrame, method: str = "psi",
            threshold: float | None = None, features: list[str] | None = None,
            kinds: dict[str, str] | None = None, charts: bool = True) -> DriftReport:
    """Drift of ``current`` against a dataset or a reference profile (a dict)."""
    if isinstance(reference, dict):
        return compare_profile(reference, current, method, threshold, features, charts)
    return compare_frames(reference, current, method, threshold, features, kinds, charts)
