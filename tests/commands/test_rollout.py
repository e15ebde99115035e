"""``mlspec rollout``'s command line: what it refuses before it moves any traffic (exit 2).

Rollouts themselves are tests/runtime/rollout/ (the rules) and tests/e2e/test_rollout_loop.py
(a real server, a real Prometheus, a promotion and a rollback).
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
IRIS = REPO / "examples" / "iris" / "mlproject.yaml"


def _rollout(cwd: Path, *args: str, spec: Path = IRIS) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mlspec", "rollout", str(spec), *args],
                          cwd=cwd, capture_output=True, text=True, timeout=120)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_without_local_it_needs_a_cluster(tmp_path: Path, monkeypatch) -> None:
    """No --local: the kubeconfig's cluster (tests/runtime/rollout/test_deploy.py); without
    credentials that is a usage error, before anything is applied."""
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    done = _rollout(tmp_path, "--version", "2")
    assert done.returncode == 2 and "no Kubernetes credentials" in done.stderr, done.stderr


def test_a_version_is_one_or_more(tmp_path: Path) -> None:
    done = _rollout(tmp_path, "--version", "0", "--local", "http://127.0.0.1:1")
    assert done.returncode == 2 and "1 or more" in done.stderr


@pytest.mark.parametrize("strategy", ["shadow", "ab", "blue-green"])
def test_every_strategy_has_a_plan_to_carry_out(tmp_path: Path, strategy: str) -> None:
    """The plan is accepted; what stops this one is the admin API nobody serves."""
    data = yaml.safe_load(IRIS.read_text())
    data["serving"]["rollout"] = {"strategy": strategy}
    spec = tmp_path / "mlproject.yaml"
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    done = _rollout(tmp_path, "--version", "2", "--local", f"http://127.0.0.1:{_closed_port()}",
                    spec=spec)
    assert done.returncode == 2 and "admin API" in done.stderr, done.stderr


def test_an_admin_api_that_does_not_answer_is_a_usage_error(tmp_path: Path) -> None:
    done = _rollout(tmp_path, "--version", "2", "--local", f"http://127.0.0.1:{_closed_port()}",
                    "--hold", "1s")
    assert done.returncode == 2 and "admin API" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / ".mlspec").exists()  # nothing was written


def test_a_bad_hold_is_a_usage_error(tmp_path: Path) -> None:
    done = _rollout(tmp_path, "--version", "2", "--local", "http://127.0.0.1:1", "--hold", "soon")
    assert done.returncode == 2 and "not a duration" in done.stderr
