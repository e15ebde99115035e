"""Drift of data seen in chunks (batch scoring) against a reference profile, in bounded memory.

Each chunk only adds to counts: numeric values into the profile's own decile bins, categories
into value counts. Those are exact and add up across chunks and partitions, so PSI, JS and
chi-square come out exactly as ``compare_profile`` computes them on all rows at once. KS and
Wasserstein need the distribution itself: for them each numeric feature also keeps a uniform
sample of ``sample_size`` values (the values with the smallest random keys, which is uniform
without replacement and merges across partitions by keeping the smallest keys again).

A state is plain JSON, written by each score task and merged by the report step.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from mlspec.runtime.drift.compare import (
    CATEGORICAL_FALLBACK,
    DriftReport,
    FeatureDrift,
    _check_method,
    _profile_numeric,
    is_drifted,
)
from mlspec.runtime.drift.stats import _binned, value_counts
from mlspec.runtime.errors import StepError

SAMPLED_METHODS = ("ks", "wasserstein")
SAMPLE_SIZE = 10_000


class DriftAccumulator:
    """Counts (and, for KS/Wasserstein, a sample) of the features a profile describes."""

    def __init__(self, profile: dict[str, Any], names: list[str], method: str,
                 sample_size: int = SAMPLE_SIZE, seed: int = 0) -> None:
        specs = profile.get("features") or {}
        self.specs = {n: specs[n] for n in names if n in specs}
        self.sampled = method in SAMPLED_METHODS
        self.sample_size = sample_size
        self.rng = np.random.default_rng(seed)
        self.rows = 0
        self.state: dict[str, dict[str, Any]] = {}
        for name, spec in self.specs.items():
            if spec.get("kind") == "numeric":
                edges = np.asarray(spec.get("edges", []), dtype=np.float64)
                self.state[name] = {"kind": "numeric", "counts": [0] * (len(edges) + 1),
                                    "nulls": 0, "sample": [], "keys": []}
            else:
                self.state[name] = {"kind": "categorical", "frequencies": {}, "nulls": 0}

    def add(self, columns: Any, seed: int | None = None) -> None:
        """Count one chunk: a DataFrame, or a mapping of the profiled columns to arrays."""
        self.merge(self.count(columns, seed))

    def count(self, columns: Any, seed: int | None = None) -> dict[str, Any]:
        """One chunk's counts (and samples), without touching the running state: safe to call
        from several threads at once; ``merge`` adds the result in."""
        rng = self.rng if seed is None else np.random.default_rng(seed)
        part: dict[str, Any] = {"rows": 0, "features": {}}
        for name, spec in self.specs.items():
            column = columns[name]
            part["rows"] = len(column)
            if self.state[name]["kind"] == "numeric":
                part["features"][name] = self._count_numeric(spec, _floats(column), rng)
            else:
                labels, counts = value_counts(column)
                part["features"][name] = {
                    "nulls": int(len(column) - int(counts.sum())),
                    "frequencies": dict(zip(labels, (int(c) for c in counts), strict=True))}
        return part

    def _count_numeric(self, spec: dict, values: np.ndarray, rng) -> dict[str, Any]:
        edges = np.asarray(spec.get("edges", []), dtype=np.float64)
        nulls = int(np.count_nonzero(np.isnan(values)))
        present = values.size - nulls
        # Bins (-inf, e1], (e1, e2], ..., (ek, inf), as binned_counts makes them on sorted
        # values: one vectorised count of "at most e" per edge (NaN is never at most anything),
        # far cheaper than a binary search per value for the ten deciles.
        at_most = [int(np.count_nonzero(values <= edge)) for edge in edges]
        out: dict[str, Any] = {"nulls": nulls,
                               "counts": np.diff(np.array([0, *at_most, present]))}
        if self.sampled and present:
            kept = values[~np.isnan(values)] if nulls else values
            out["sample"], out["keys"] = _smallest(kept, rng.random(kept.size),
                                                   self.sample_size)
        return out

    def merge(self, part: dict[str, Any]) -> None:
        self.rows += int(part["rows"])
        for name, item in part["features"].items():
            state = self.state[name]
            state["nulls"] += item["nulls"]
            if state["kind"] == "numeric":
                state["counts"] = [int(a + b) for a, b in zip(state["counts"], item["counts"],
                                                              strict=True)]
                if "sample" in item:
                    state["sample"], state["keys"] = _smallest(
                        np.concatenate([state["sample"], item["sample"]]),
                        np.concatenate([state["keys"], item["keys"]]), self.sample_size)
            else:
                freqs = state["frequencies"]
                for label, count in item["frequencies"].items():
                    freqs[label] = freqs.get(label, 0) + count

    def to_dict(self) -> dict[str, Any]:
        features: dict[str, Any] = {}
        out = {"rows": self.rows, "features": features}
        for name, state in self.state.items():
            item = dict(state)
            if item["kind"] == "numeric":
                item["sample"] = [float(v) for v in item["sample"]]
                item["keys"] = [float(v) for v in item["keys"]]
            features[name] = item
        return out


def _floats(column: Any) -> np.ndarray:
    if isinstance(column, np.ndarray):
        return column.astype(np.float64, copy=False)
    return column.to_numpy(dtype=np.float64, na_value=np.nan)


def _smallest(values: np.ndarray, keys: np.ndarray, k: int) -> tuple[list, list]:
    if values.size <= k:
        return list(values), list(keys)
    keep = np.argpartition(keys, k - 1)[:k]
    return list(values[keep]), list(keys[keep])


def merge_states(states: list[dict[str, Any]], sample_size: int = SAMPLE_SIZE) -> dict[str, Any]:
    """One state from the states of several partitions (counts added, samples re-drawn)."""
    merged: dict[str, Any] = {"rows": 0, "features": {}}
    for state in states:
        merged["rows"] += int(state.get("rows", 0))
        for name, item in (state.get("features") or {}).items():
            into = merged["features"].setdefault(name, _empty_like(item))
            into["nulls"] += int(item.get("nulls", 0))
            if item["kind"] == "numeric":
                into["counts"] = [int(a + b) for a, b in zip(into["counts"], item["counts"],
                                                             strict=True)]
                into["sample"], into["keys"] = _smallest(
                    np.asarray(into["sample"] + list(item.get("sample", [])), dtype=np.float64),
                    np.asarray(into["keys"] + list(item.get("keys", [])), dtype=np.float64),
                    sample_size)
                into["sample"] = [float(v) for v in into["sample"]]
                into["keys"] = [float(v) for v in into["keys"]]
            else:
                for label, count in item["frequencies"].items():
                    into["frequencies"][label] = into["frequencies"].get(label, 0) + int(count)
    return merged


def _empty_like(item: dict[str, Any]) -> dict[str, Any]:
    if item["kind"] == "numeric":
        return {"kind": "numeric", "counts": [0] * len(item["counts"]), "nulls": 0,
                "sample": [], "keys": []}
    return {"kind": "categorical", "frequencies": {}, "nulls": 0}


def report_from_state(profile: dict[str, Any], state: dict[str, Any], method: str,
                      threshold: float | None = None) -> DriftReport:
    """The drift report of an accumulated state against the profile it was counted with."""
    method, threshold = _check_method(method, threshold)
    specs = profile.get("features") or {}
    features = state.get("features") or {}
    if not features:
        raise StepError("the batch has no profiled feature to compare")
    out = []
    for name, item in features.items():
        spec = specs[name]
        if item["kind"] == "numeric":
            used = method
            if method in SAMPLED_METHODS:
                stat, p = _profile_numeric(spec, np.sort(np.asarray(item["sample"])), method)
            else:
                stat, p = _binned_pair(method, spec.get("counts", []), item["counts"])
        else:
            used = CATEGORICAL_FALLBACK.get(method, method)
            freqs = spec.get("frequencies") or {}
            labels = sorted(set(freqs) | set(item["frequencies"]))
            stat, p = _binned_pair(used, [freqs.get(v, 0) for v in labels],
                                   [item["frequencies"].get(v, 0) for v in labels])
        drifted = is_drifted(used, stat, p, threshold) if math.isfinite(stat) else False
        out.append(FeatureDrift(name, item["kind"], used, stat, p, threshold, drifted))
    return DriftReport(method, threshold, out, int(profile.get("rows", 0)),
                       int(state.get("rows", 0)), "profile")


def _binned_pair(method: str, reference: list[int], current: list[int]
                 ) -> tuple[float, float | None]:
    if not sum(current) or not sum(reference):
        return float("nan"), None
    s, pv = _binned(method, np.asarray([reference], dtype=np.int64),
                    np.asarray([current], dtype=np.int64))
    return float(s[0]), (None if np.isnan(pv[0]) else float(pv[0]))
