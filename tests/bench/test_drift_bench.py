"""The drift benchmark runs and its statistics agree with scipy (its figures are not tested:
speed is measured by running it, not here)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO


@pytest.mark.parametrize("scenario", [[], ["--mild"]])
def test_drift_bench_runs_and_agrees_with_scipy(scenario: list[str]) -> None:
    done = subprocess.run([sys.executable, str(REPO / "bench" / "drift_bench.py"),
                           "--rows", "20000", "--repeat", "1", "--no-evidently", *scenario],
                          capture_output=True, text=True, timeout=600, cwd=REPO)
    assert done.returncode == 0, done.stdout + done.stderr  # 1: statistics differ from scipy's
    assert "scipy.stats per-column loop" in done.stdout and "floor" in done.stdout
