"""CI's strict skips (tests/conftest.py): under MLSPEC_STRICT_SKIPS=1 a test that skips for a
missing dependency fails, so CI cannot pass a test it never ran."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import REPO

PROBE = '''
import pytest

def test_missing_tool():
    pytest.skip("promtool is not installed")

def test_shared_absent():
    pytest.skip("../shared/oracles/x is not available (../shared is absent)")

def test_runs():
    pass
'''


def _run_probe(tmp_path, strict: bool) -> str:
    (tmp_path / "test_probe.py").write_text(PROBE)
    env = {**os.environ, "MLSPEC_STRICT_SKIPS": "1" if strict else "0"}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rA", "-p", "tests.conftest",
                           "-p", "no:cacheprovider", str(tmp_path / "test_probe.py")],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    return done.stdout


def test_a_skip_for_a_missing_dependency_fails_in_strict_mode(tmp_path):
    out = _run_probe(tmp_path, strict=True)
    assert "1 failed, 1 passed, 1 skipped" in out, out
    assert "FAILED" in out and "test_missing_tool" in out and "promtool is not installed" in out


def test_skips_stay_skips_outside_strict_mode(tmp_path):
    out = _run_probe(tmp_path, strict=False)
    assert "1 passed, 2 skipped" in out, out
