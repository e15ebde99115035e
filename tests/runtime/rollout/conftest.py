"""Fixtures of the rollout tests: the stand-in Kubernetes API (tests/kube_api.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kube_api import FakeKubeApi, kubeconfig


@pytest.fixture
def kube(tmp_path: Path) -> Iterator[tuple[FakeKubeApi, Path]]:
    """A local server speaking the Kubernetes API for the deploy's kinds, and a kubeconfig
    pointing at it."""
    api = FakeKubeApi()
    url = api.start()
    try:
        yield api, kubeconfig(url, tmp_path / "kubeconfig")
    finally:
        api.stop()
