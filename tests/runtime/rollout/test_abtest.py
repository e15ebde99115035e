"""The A/B test against statistics computed another way: numpy on the raw per-row losses and
scipy's normal tail (the runtime computes from three counters and math.erfc)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mlspec.runtime.rollout.abtest import Arm, one_sided_welch


def arm(losses: np.ndarray) -> Arm:
    return Arm(float(len(losses)), float(losses.sum()), float((losses ** 2).sum()))


@pytest.mark.parametrize("kind", ["misclassification", "squared-error"])
@pytest.mark.parametrize("shift", [0.0, 0.02, 0.08])
def test_z_and_p_match_numpy_and_scipy(kind: str, shift: float) -> None:
    from scipy.stats import norm

    rng = np.random.default_rng(7)
    if kind == "misclassification":
        champion = (rng.random(800) < 0.10).astype(float)
        candidate = (rng.random(600) < 0.10 + shift).astype(float)
    else:
        champion = rng.normal(0, 1, 800) ** 2
        candidate = rng.normal(0, 1 + 5 * shift, 600) ** 2
    se = math.sqrt(champion.var(ddof=1) / 800 + candidate.var(ddof=1) / 600)
    z = (candidate.mean() - champion.mean()) / se
    verdict = one_sided_welch(arm(champion), arm(candidate), 200, 0.05)
    assert verdict.decided
    assert verdict.z == pytest.approx(z, rel=1e-9)
    assert verdict.p_value == pytest.approx(norm.sf(z), rel=1e-9, abs=1e-300)
    assert verdict.candidate_worse == (norm.sf(z) < 0.05)


def test_a_clearly_worse_candidate_is_worse_and_an_equal_one_is_not() -> None:
    worse = one_sided_welch(Arm(500, 50, 50), Arm(500, 100, 100), 200, 0.05)
    assert worse.candidate_worse and worse.p_value < 1e-4
    same = one_sided_welch(Arm(500, 50, 50), Arm(500, 50, 50), 200, 0.05)
    assert not same.candidate_worse and same.p_value == pytest.approx(0.5)


@pytest.mark.parametrize("champion, candidate, message", [
    (Arm(199, 0, 0), Arm(500, 0, 0), "199 labelled predictions for the champion"),
    (Arm(500, 0, 0), Arm(3, 3, 3), "3 labelled predictions for the candidate"),
    (Arm(-5, 0, 0), Arm(500, 0, 0), "went down"),
])
def test_no_verdict(champion: Arm, candidate: Arm, message: str) -> None:
    verdict = one_sided_welch(champion, candidate, 200, 0.05)
    assert not verdict.decided and not verdict.candidate_worse and message in verdict.reason


def test_perfect_arms_with_different_means_are_decided() -> None:
    # zero variance on both sides: the difference is certain
    verdict = one_sided_welch(Arm(300, 0, 0), Arm(300, 300, 300), 200, 0.05)
    assert verdict.candidate_worse and verdict.z == math.inf and verdict.p_value == 0.0
