"""The A/B rollout's verdict on ground truth: a one-sided Welch z-test on per-prediction loss.

Each version's servers count, since they started, the predictions labelled through
``/feedback``, and the sum and the sum of squares of their loss (0/1 misclassification for a
classifier, squared error for a regressor; ``mlspec_feedback_*``). The rollout subtracts the
counts it read when the split began, so both versions are judged on the same period.

Why this test: the candidate has already beaten the champion offline (the gate); the A/B split
asks whether live ground truth contradicts that. H0: the candidate's mean loss is no higher than
the champion's; H1: it is higher. z = (mean_c - mean_s) / sqrt(var_c/n_c + var_s/n_s), the
unpooled (Welch) standard error because the two versions' variances differ; for 0/1 losses it
is the unpooled two-proportion z-test. With at least ``minSamples`` (default 200) per version
the sample means are close to normal, so the normal tail is used. p = P(Z >= z). The candidate
is rolled back when p < significance (worse at that level), promoted otherwise. Fewer samples
than ``minSamples`` in either version gives no verdict, and no verdict is never a pass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Arm:
    """One version's labelled predictions in the rollout's period."""

    samples: float
    loss: float
    loss_squared: float

    @property
    def mean(self) -> float:
        return self.loss / self.samples if self.samples else math.nan

    @property
    def variance(self) -> float:
        """The sample variance of the loss (n - 1 in the denominator)."""
        n = self.samples
        if n < 2:
            return math.nan
        return max(0.0, (self.loss_squared - n * self.mean ** 2) / (n - 1))

    def minus(self, earlier: Arm) -> Arm:
        return Arm(self.samples - earlier.samples, self.loss - earlier.loss,
                   self.loss_squared - earlier.loss_squared)


@dataclass(frozen=True)
class Verdict:
    decided: bool
    candidate_worse: bool
    z: float
    p_value: float
    reason: str


def one_sided_welch(champion: Arm, candidate: Arm, min_samples: int,
                    significance: float) -> Verdict:
    """Is the candidate's mean loss higher than the champion's (see the module)?"""
    for name, arm in (("champion", champion), ("candidate", candidate)):
        if arm.samples < 0 or arm.loss < 0:
            return Verdict(False, False, math.nan, math.nan,
                           f"the {name}'s feedback counters went down (a restarted server): "
                           "no verdict")
        if arm.samples < min_samples:
            return Verdict(False, False, math.nan, math.nan,
                           f"{arm.samples:g} labelled predictions for the {name}, fewer than "
                           f"{min_samples}: no verdict yet")
    diff = candidate.mean - champion.mean
    se = math.sqrt(candidate.variance / candidate.samples + champion.variance / champion.samples)
    if se == 0:
        z = 0.0 if diff == 0 else math.copysign(math.inf, diff)
    else:
        z = diff / se
    p = 0.5 * math.erfc(z / math.sqrt(2))
    worse = p < significance
    means = (f"mean loss {candidate.mean:.4g} (n={candidate.samples:g}) vs champion "
             f"{champion.mean:.4g} (n={champion.samples:g}), z={z:.3g}, p={p:.3g}")
    verdict = (f"worse than the champion at significance {significance:g}" if worse
               else f"not worse at significance {significance:g}")
    return Verdict(True, worse, z, p, f"candidate {verdict}: {means}")
