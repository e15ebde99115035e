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

    def add(self, frame: Any) -> None:
        """Count one chunk (a DataFrame holding the profiled columns)."""
        self.rows += len(frame)
        for name, spec in self.specs.items():
            if self.state[name]["kind"] == "numeric":
                self._add_numeric(name, spec, frame[name].to_numpy(dtype=np.float64,
                                                                   na_value=np.nan))
            else:
                self._add_categorical(name, frame[name])

    def _add_numeric(self, name: str, spec: dict, values: np.ndarray) -> None:
        state = self.state[name]
        present = values[~np.isnan(values)]
        state["nulls"] += int(values.size - present.size)
        edges = np.asarray(spec.get("edges", []), dtype=np.float64)
        # Bins (-inf, e1], (e1, e2], ..., (ek, inf): the left search puts a value equal to an
        # edge in the bin that edge closes, as binned_counts does on sorted values.
        bins = np.bincount(np.searchsorted(edges, present, side="left"),
                           minlength=len(edges) + 1)
        state["counts"] = [int(a + b) for a, b in zip(state["counts"], bins, strict=True)]
        if self.sampled and present.size:
            keys = self.rng.random(present.size)
            state["sample"], state["keys"] = _smallest(
                np.concatenate([state["sample"], present]),
                np.concatenate([state["keys"], keys]), self.sample_size)

    def _add_categorical(self, name: str, column: Any) -> None:
        state = self.state[name]
        labels, counts = value_counts(column)
        state["nulls"] += int(len(column) - int(counts.sum()))
        freqs = state["frequencies"]
        for label, count in zip(labels, counts, strict=True):
            freqs[label] = freqs.get(label, 0) + int(count)

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
