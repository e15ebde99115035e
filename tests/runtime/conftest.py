"""Fixtures for the runtime: specs built from the iris example, a step runner, trained models,
and the stand-in Kubernetes API (tests/kube_api.py) with a kubeconfig pointing at it."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.kube_api import FakeKubeApi, kubeconfig

REPO = Path(__file__).resolve().parents[2]
IRIS_SPEC = REPO / "examples" / "iris" / "mlproject.yaml"


def iris_spec(tmp_path: Path, **changes: Any) -> dict[str, Any]:
    """The iris example as a resolved-spec dict, its registry in ``tmp_path``; ``changes`` are
    dotted paths (``model__params``) set to new values."""
    from mlspec.runtime.spec import load_project

    data = load_project(str(IRIS_SPEC)).model_dump(mode="json", exclude={"profiles"})
    data["registry"]["tracking_uri"] = f"sqlite:///{tmp_path / 'mlruns.db'}"
    data["model"]["params"] = {"n_estimators": 20, "max_depth": 6, "random_state": 0}
    for key, value in changes.items():
        node = data
        *parents, last = key.split("__")
        for part in parents:
            node = node[part]
        node[last] = copy.deepcopy(value)
    return data


def write_spec(tmp_path: Path, spec: dict[str, Any], name: str = "spec.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(spec), encoding="utf-8")
    return str(path)


def run_step(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """``python -m mlspec.runtime ARGS`` in a subprocess (the real command line)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("MLSPEC_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "mlspec.runtime", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def assert_clean_failure(done: subprocess.CompletedProcess, code: int = 1,
                         contains: str | None = None) -> None:
    """A failure with one clear line on stderr and no traceback."""
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
    assert lines, "no error message"
    if code == 1:
        assert len(lines) == 1, done.stderr
        assert lines[0].startswith("error: "), done.stderr
    if contains:
        assert contains.lower() in done.stderr.lower(), done.stderr


@pytest.fixture(scope="session")
def iris_run(tmp_path_factory) -> dict[str, Any]:
    """The iris pipeline up to evaluate, in-process (shared by tests that need a model)."""
    from mlspec.runtime.steps.evaluate import run_evaluate
    from mlspec.runtime.steps.ingest import run_ingest
    from mlspec.runtime.steps.split import run_split
    from mlspec.runtime.steps.train import run_train
    from mlspec.runtime.steps.validate_data import run_validate_data

    tmp = tmp_path_factory.mktemp("iris")
    spec = iris_spec(tmp)
    paths = {k: str(tmp / v) for k, v in {
        "dataset": "dataset.parquet", "report": "report.json", "train": "train.parquet",
        "test": "test.parquet", "model": "model", "metrics": "metrics.json"}.items()}
    run_ingest(spec, paths["dataset"])
    run_validate_data(spec, paths["dataset"], paths["report"])
    run_split(spec, paths["dataset"], paths["train"], paths["test"], paths["report"])
    run_train(spec, paths["train"], paths["model"])
    run_evaluate(spec, paths["model"], paths["test"], paths["metrics"])
    return {"spec": spec, "dir": tmp, **paths}


@pytest.fixture
def kube(tmp_path: Path) -> Iterator[tuple[FakeKubeApi, Path]]:
    """A local server speaking the Kubernetes API for the kinds mlspec sends, and a kubeconfig
    pointing at it (the deploy, rollout and TrainJob tests)."""
    api = FakeKubeApi()
    url = api.start()
    try:
        yield api, kubeconfig(url, tmp_path / "kubeconfig")
    finally:
        api.stop()
