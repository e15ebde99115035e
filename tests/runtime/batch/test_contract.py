"""The data contract row by row: each kind of violation is found, counted and masked."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlspec.runtime.batch.contract import Rule, add_counts, violations
from mlspec.runtime.features import FeatureSpec


def test_each_kind_of_violation_is_counted_and_masked():
    frame = pd.DataFrame({
        "x": [1.0, -1.0, 5.0, np.nan, 2.0],
        "n": ["1", "2.5", "abc", "4", "5"],
        "c": ["a", "b", "zzz", "a", None],
        "b": [True, False, "maybe", True, False],
    })
    rules = [Rule(FeatureSpec("x", "float", nullable=False), min=0, max=4),
             Rule(FeatureSpec("n", "int", nullable=False)),
             Rule(FeatureSpec("c", "category", nullable=True, values=("a", "b"))),
             Rule(FeatureSpec("b", "bool"))]
    bad, counts = violations(frame, rules)
    assert counts == {"x": {"nullable": 1, "range": 2}, "n": {"type": 2},
                      "c": {"values": 1}, "b": {"type": 1}}
    assert bad.tolist() == [False, True, True, True, False]


def test_a_clean_chunk_has_no_violations_and_counts_add_up():
    frame = pd.DataFrame({"x": [0.0, 4.0]})
    bad, counts = violations(frame, [Rule(FeatureSpec("x", "float"), min=0, max=4)])
    assert not bad.any() and counts == {}
    total: dict = {"x": {"range": 2}}
    add_counts(total, {"x": {"range": 1, "type": 1}, "y": {"nullable": 3}})
    assert total == {"x": {"range": 3, "type": 1}, "y": {"nullable": 3}}
