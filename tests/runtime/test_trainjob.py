"""The distributed train step on a cluster: it submits the compiled TrainJob and hands the model on.

What runs is real except the cluster: a real ``mlflow server`` on 127.0.0.1 (artifacts proxied,
as on a cluster) carries the handoff; the train step is the Tekton task's own command line with
the bundle from the compiled spec ConfigMap; the TrainJob goes through the official kubernetes
client to the stand-in API (tests/kube_api.py) and validates against Kubeflow Trainer's CRD
(validate-manifests); the stand-in controller (tests/trainer_controller.py) runs the TrainJob's
own trainer command on two "nodes" (two torchrun agents, one process each, gloo).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlspec import contract
from tests.conftest import REPO
from tests.e2e.live import Timeline, free_port, healthy, processes, wait_for
from tests.kube_api import kubeconfig
from tests.runtime.rollout.test_deploy import assert_valid
from tests.trainer_controller import TrainerController

pytest.importorskip("torch")
pytestmark = pytest.mark.slow

WINE = REPO / "examples" / "wine-torch" / "mlproject.yaml"
NAMESPACE = "wine"
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def tracking(tmp_path_factory) -> Iterator[str]:
    """A real MLflow tracking server with proxied artifacts."""
    root = tmp_path_factory.mktemp("mlflow")
    with processes(root) as procs:
        port = free_port()
        procs.start("mlflow", [str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port",
                               str(port), "--workers", "1", "--backend-store-uri",
                               f"sqlite:///{root / 'backend.db'}", "--artifacts-destination",
                               str(root / "artifacts")], cwd=root)
        url = f"http://127.0.0.1:{port}"
        wait_for("the tracking server", lambda: healthy(f"{url}/health"), Timeline(120), procs)
        yield url


@pytest.fixture(scope="module")
def compiled(tracking: str, tmp_path_factory) -> dict[str, Any]:
    """The wine-torch example on that registry: compiled for Tekton, plus its split data."""
    from mlspec.compile.build import compile_project
    from mlspec.runtime.steps.ingest import run_ingest
    from mlspec.runtime.steps.split import run_split
    from mlspec.spec.loader import load_spec

    work = tmp_path_factory.mktemp("wine")
    project = load_spec(str(WINE)).project
    project.registry.tracking_uri = tracking
    out = compile_project(project, ["tekton", "training"], spec_sha256="0" * 64,
                          spec_name="mlproject.yaml")
    files = {f.path: f.content for f in out.files}
    (configmap,) = [yaml.safe_load(text) for path, text in files.items()
                    if path.endswith("spec-configmap.yaml")]
    spec_ws = work / "spec"
    spec_ws.mkdir()
    for key, value in configmap["data"].items():
        (spec_ws / key).write_text(value)
    spec = json.loads((spec_ws / "spec.json").read_text())
    run_ingest(spec, str(work / "dataset.parquet"))
    run_split(spec, str(work / "dataset.parquet"), str(work / "train.parquet"),
              str(work / "test.parquet"), None)
    return {"work": work, "spec_ws": spec_ws, "spec": spec, "files": files}


def _train_step(compiled: dict[str, Any], config: Path, train: Path, model: Path,
                bundle: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The Tekton task's command line (a Tekton step has no MLSPEC_LOCAL_TRAINING)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "KUBECONFIG": str(config)}
    env.pop(contract.LOCAL_TRAINING_ENV, None)
    bundle = bundle or compiled["spec_ws"] / contract.TRAIN_BUNDLE_FILE
    return subprocess.run(
        [sys.executable, "-m", "mlspec.runtime", "train", "--spec",
         str(compiled["spec_ws"] / "spec.json"), "--in", f"train={train}", "--out",
         f"model={model}", "--bundle", str(bundle)],
        env=env, capture_output=True, text=True, timeout=600)


def test_the_train_step_runs_the_trainjob_and_evaluate_goes_on(compiled, kube, tmp_path) -> None:
    import mlflow

    from mlspec.runtime.steps.evaluate import run_evaluate

    api, config = kube
    model = tmp_path / "model"
    with TrainerController(api, tmp_path / "cluster") as controller:
        done = _train_step(compiled, config, compiled["work"] / "train.parquet", model)
    assert done.returncode == 0, done.stdout + done.stderr + "\n".join(
        sum(controller.logs.values(), []))
    (job,) = [o for o in api.sent if o.get("kind") == "TrainJob"]
    assert_valid([job], tmp_path)
    name = job["metadata"]["name"]
    assert name.startswith("wine-torch-train-") and len(name) <= 63
    trainer = job["spec"]["trainer"]
    assert (trainer["numNodes"], trainer["numProcPerNode"]) == (2, 1)
    assert trainer["command"] == ["python", "-m", "torch.distributed.run"]
    run_id = trainer["args"][trainer["args"].index("--handoff") + 1]
    assert contract.DEPLOY_ANNOTATION not in job["metadata"]["annotations"]
    # Both nodes ran; the step reported the job's conditions and gave evaluate a model.
    assert len(controller.logs[name]) == 2
    assert "Complete=True" in done.stdout, done.stdout
    meta = json.loads((model / "mlspec_model.json").read_text())
    assert meta["distributed"] == {"processes": 2, "backend": "gloo"}
    metrics = run_evaluate(compiled["spec"], str(model), str(compiled["work"] / "test.parquet"),
                           str(tmp_path / "metrics.json"))["metrics"]
    assert metrics["accuracy"] >= 0.8, metrics
    # Exactly one model was handed back (rank 0 of node 0), beside the input.
    client = mlflow.MlflowClient(compiled["spec"]["registry"]["tracking_uri"])
    top = sorted(a.path for a in client.list_artifacts(run_id))
    assert top == ["input", "model"]
    assert [a.path for a in client.list_artifacts(run_id, "model")].count("model/MLmodel") == 1
    assert client.get_run(run_id).data.tags["mlspec.trainjob.outcome"] == "complete"


def test_a_failing_trainjob_fails_the_step_with_the_jobs_message(compiled, kube,
                                                                 tmp_path) -> None:
    import pandas as pd

    api, config = kube
    target = compiled["spec"]["data"]["target"]
    broken = tmp_path / "train.parquet"
    pd.read_parquet(compiled["work"] / "train.parquet").drop(columns=[target]).to_parquet(broken)
    with TrainerController(api, tmp_path / "cluster"):
        done = _train_step(compiled, config, broken, tmp_path / "model")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "failed: TrainingFailed: node 0 exited non-zero" in done.stderr, done.stderr
    assert target in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "model").exists()


def test_a_trainjob_that_never_finishes_fails_the_step_at_its_deadline(compiled, kube,
                                                                       tmp_path) -> None:
    api, config = kube
    bundle = json.loads((compiled["spec_ws"] / contract.TRAIN_BUNDLE_FILE).read_text())
    bundle["spec"]["activeDeadlineSeconds"] = 3
    short = tmp_path / "trainjob.json"
    short.write_text(json.dumps(bundle))
    with TrainerController(api, tmp_path / "cluster", stall=True):
        done = _train_step(compiled, config, compiled["work"] / "train.parquet",
                           tmp_path / "model", bundle=short)
    assert done.returncode == 1
    assert "did not finish in 3 s" in done.stderr, done.stderr
    assert "Created=True" in done.stdout


def test_a_refused_submission_is_one_clear_error(compiled, tmp_path) -> None:
    """No API server at the kubeconfig's address: the step says so and exits 1."""
    config = kubeconfig(f"http://127.0.0.1:{free_port()}", tmp_path / "kubeconfig")
    done = _train_step(compiled, config, compiled["work"] / "train.parquet", tmp_path / "model")
    assert done.returncode == 1
    assert done.stderr.startswith("error: TrainJob wine-torch-train-"), done.stderr
    assert "Traceback" not in done.stderr
