"""lint's table of bundled data sets matches scikit-learn's own."""

from __future__ import annotations

import re

import pytest

from mlspec.lint.datasets import SKLEARN_DATASETS


def _normalise(name: str) -> str:
    # DESIGN.md: lower-case, a trailing unit in parentheses dropped, other runs -> "_".
    name = re.sub(r"\s*\([^)]*\)\s*$", "", name.lower())
    return re.sub(r"[^a-z0-9]+", "_", name).strip("_")


@pytest.mark.parametrize("name", sorted(SKLEARN_DATASETS))
def test_matches_scikit_learn(name: str) -> None:
    datasets = pytest.importorskip("sklearn.datasets")
    import numpy as np

    bunch = getattr(datasets, f"load_{name}")()
    info = SKLEARN_DATASETS[name]
    assert info.features == tuple(_normalise(f) for f in bunch.feature_names)
    if info.task == "classification":
        assert info.classes == len(np.unique(bunch.target))
    else:
        assert len(np.unique(bunch.target)) > 20
