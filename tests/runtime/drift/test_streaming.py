"""Drift counted chunk by chunk equals drift computed on all rows at once."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlspec.runtime.drift.compare import compare_profile
from mlspec.runtime.drift.streaming import DriftAccumulator, merge_states, report_from_state
from mlspec.runtime.features import FeatureSpec
from mlspec.runtime.profile import build_profile


def _frames(seed: int = 0):
    rng = np.random.default_rng(seed)
    reference = pd.DataFrame({"x": rng.normal(size=5000), "c": rng.choice(["a", "b", "c"], 5000)})
    current = pd.DataFrame({"x": np.r_[rng.normal(0.6, 1.3, 6000), [np.nan] * 10],
                            "c": rng.choice(["a", "b", "d"], 6010)})
    profile = build_profile(reference, [FeatureSpec("x", "float"), FeatureSpec("c", "category")])
    return profile, current


def _streamed(profile, current, method, partitions=3, chunk=700):
    states = []
    for part in np.array_split(np.arange(len(current)), partitions):
        acc = DriftAccumulator(profile, ["x", "c"], method, seed=len(states))
        for start in range(0, len(part), chunk):
            acc.add(current.iloc[part[start:start + chunk]])
        states.append(acc.to_dict())
    return report_from_state(profile, merge_states(states), method)


@pytest.mark.parametrize("method", ["psi", "js", "chi2"])
def test_binned_methods_are_exact_across_chunks_and_partitions(method):
    profile, current = _frames()
    whole = {f.name: f for f in compare_profile(profile, current, method, charts=False).features}
    streamed = {f.name: f for f in _streamed(profile, current, method).features}
    for name in ("x", "c"):
        assert streamed[name].statistic == pytest.approx(whole[name].statistic, rel=1e-12)
        assert streamed[name].drifted == whole[name].drifted
    assert streamed["x"].drifted  # the shift is real


@pytest.mark.parametrize("method", ["ks", "wasserstein"])
def test_sampled_methods_stay_close_to_the_full_data(method):
    profile, current = _frames()
    whole = {f.name: f for f in compare_profile(profile, current, method, charts=False).features}
    streamed = {f.name: f for f in _streamed(profile, current, method).features}
    # A uniform sample of 10,000 values keeps all 6,000 here: the statistic is the same.
    assert streamed["x"].statistic == pytest.approx(whole["x"].statistic, rel=1e-9)


def test_the_sample_is_bounded_and_merges_to_the_bound():
    profile, current = _frames()
    acc = DriftAccumulator(profile, ["x"], "ks", sample_size=500)
    acc.add(current)
    state = acc.to_dict()
    assert len(state["features"]["x"]["sample"]) == 500
    merged = merge_states([state, state], sample_size=500)
    assert len(merged["features"]["x"]["sample"]) == 500
    assert merged["features"]["x"]["counts"] == [2 * c for c in state["features"]["x"]["counts"]]
    assert merged["rows"] == 2 * len(current)
