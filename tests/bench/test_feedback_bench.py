"""The feedback benchmark runs and both scorers report the same figures (its timings are not
tested: speed is measured by running it, not here)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO


def test_feedback_bench_runs_and_agrees_with_sklearn() -> None:
    done = subprocess.run([sys.executable, str(REPO / "bench" / "feedback_bench.py"),
                           "--window", "300", "--posts", "40", "--batch", "7"],
                          capture_output=True, text=True, timeout=300, cwd=REPO)
    assert done.returncode == 0, done.stdout + done.stderr  # 1: the figures differ
    assert done.stdout.count("same figures: yes") == 2, done.stdout
