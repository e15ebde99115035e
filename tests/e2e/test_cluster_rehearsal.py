"""The compiled output as a cluster would run it, with a real MLflow tracking server.

A real ``mlflow server`` on 127.0.0.1 (sqlite backend store, ``--artifacts-destination`` a
folder: artifacts proxied over HTTP, as on a cluster) is the shared registry. The iris example
with a prod-like profile (that server's URL, ``credentials_secret: mlflow-credentials``) is:

1. rehearsed as compiled for Tekton (``mlspec run --engine tekton``): every step a process in a
   fresh folder with only the YAML's env and the Secret from ``--secret-env``; ``register``
   adds a version on the server, whose artifacts land in the server's artifact folder;
2. compiled for serving, and the InferenceService's own container started from the manifest in a
   fresh folder (``mlspec serve --manifest``): it loads that version over HTTP and answers an
   Open Inference Protocol v2 infer request.

And the negative case: the same spec on a sqlite registry is refused by ``mlspec submit`` with
exit 1 and fails ``mlspec compile --strict``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.e2e.live import Timeline, free_port, get_json, healthy, post_json, processes, wait_for

REPO = Path(__file__).resolve().parents[2]
IRIS = REPO / "examples" / "iris" / "mlproject.yaml"
BIN = Path(sys.executable).parent
MLSPEC = BIN / "mlspec"
MODEL = "iris-classifier"
SECRET = "mlflow-credentials"
BUDGET_S = 240.0

pytestmark = pytest.mark.slow


def _spec(workdir: Path, tracking_uri: str) -> Path:
    """The iris example with a profile ``e2e`` like its ``prod`` one, on ``tracking_uri``."""
    data = yaml.safe_load(IRIS.read_text())
    data["profiles"]["e2e"] = {"registry": {"tracking_uri": tracking_uri,
                                            "credentials_secret": SECRET}}
    path = workdir / "mlproject.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _mlspec(*args: str, cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(MLSPEC), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def _infer_request() -> dict:
    rows = {"sepal_length": [5.1, 6.7], "sepal_width": [3.5, 3.0],
            "petal_length": [1.4, 5.2], "petal_width": [0.2, 2.3]}
    return {"inputs": [{"name": name, "shape": [2], "datatype": "FP64", "data": values}
                       for name, values in rows.items()]}


def test_rehearsed_pipeline_registers_on_a_tracking_server_and_the_manifest_serves_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import mlflow

    server_dir, work = tmp_path / "mlflow", tmp_path / "project"
    server_dir.mkdir()
    work.mkdir()
    artifacts = server_dir / "artifacts"
    timeline = Timeline(BUDGET_S)
    with processes(tmp_path) as procs:
        port = free_port()
        procs.start("mlflow", [str(BIN / "mlflow"), "server", "--host", "127.0.0.1",
                               "--port", str(port), "--workers", "1",
                               "--backend-store-uri", f"sqlite:///{server_dir / 'backend.db'}",
                               "--artifacts-destination", str(artifacts)], cwd=server_dir)
        tracking_uri = f"http://127.0.0.1:{port}"
        wait_for("the tracking server", lambda: healthy(f"{tracking_uri}/health"), timeline,
                 procs)
        timeline("mlflow server up")

        _spec(work, tracking_uri)
        (work / "creds.env").write_text("MLFLOW_TRACKING_USERNAME=ci\n"
                                        "MLFLOW_TRACKING_PASSWORD=not-checked-by-this-server\n")
        run = _mlspec("run", "mlproject.yaml", "--profile", "e2e", "--engine", "tekton",
                      "--secret-env", f"{SECRET}=creds.env", cwd=work)
        timeline("rehearsal done")
        assert run.returncode == 0, run.stdout + run.stderr
        assert f"registered {MODEL} version 1, alias staging" in run.stdout

        # The version is on the server, its artifacts in the server's folder, not the pods'.
        client = mlflow.MlflowClient(tracking_uri)
        (version,) = client.search_model_versions(f"name='{MODEL}'")
        assert version.source.startswith("mlflow-artifacts:")
        assert client.get_model_version_by_alias(MODEL, "staging").version == version.version
        assert list(artifacts.rglob("MLmodel"))
        runs = work / ".mlspec" / "runs" / MODEL
        assert not list(runs.rglob("*.db")), "a step wrote a local registry"

        compiled = _mlspec("compile", "mlproject.yaml", "--profile", "e2e", "--target",
                           "serving", "-o", "build", "--strict", cwd=work)
        assert compiled.returncode == 0, compiled.stdout + compiled.stderr
        manifest = work / "build" / "serving" / "inferenceservice.yaml"
        container = yaml.safe_load(manifest.read_text())["spec"]["predictor"]["containers"][0]
        assert container["envFrom"] == [{"secretRef": {"name": SECRET}}]
        assert {"name": "MLFLOW_TRACKING_URI", "value": tracking_uri} in container["env"]

        serve_port = free_port()
        # The compiled InferenceService is a deploy template: pinned here as the deploy pins it.
        procs.start("serve", [str(MLSPEC), "serve", "--manifest", str(manifest), "--port",
                              str(serve_port), "--secret-env", f"{SECRET}=creds.env",
                              "--model-version", str(version.version)], cwd=work)
        base = f"http://127.0.0.1:{serve_port}/v2"
        wait_for("the InferenceService container", lambda: healthy(f"{base}/health/ready"),
                 timeline, procs)
        timeline("model server ready")
        metadata = get_json(f"{base}/models/{MODEL}")
        assert metadata["versions"] == [version.version]
        answer = post_json(f"{base}/models/{MODEL}/infer", _infer_request())
        (predict,) = [out for out in answer["outputs"] if out["name"] == "predict"]
        assert predict["data"] == [0, 2]  # setosa, virginica
        assert answer["model_version"] == version.version
        pod = next((work / ".mlspec" / "serve").glob(f"{MODEL}-*"))
        assert not list(pod.rglob("*.db")), "the server opened a local registry"
        timeline("inference answered")
    with capsys.disabled():
        print(f"\ntimeline:\n{timeline.text()}")


def test_a_sqlite_registry_is_refused_for_a_cluster(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "sqlite:///mlruns.db")
    strict = _mlspec("compile", spec.name, "--profile", "e2e", "--strict", "-o", "build",
                     cwd=tmp_path)
    assert strict.returncode == 1, strict.stdout + strict.stderr
    assert "MLS232" in strict.stdout + strict.stderr
    assert not (tmp_path / "build").exists(), "a refused compile wrote output"

    submit = _mlspec("submit", spec.name, "--profile", "e2e", "--target", "tekton",
                     cwd=tmp_path)
    assert submit.returncode == 1, submit.stdout + submit.stderr
    said = submit.stdout + submit.stderr
    assert "mlflow server" in said and "--artifacts-destination" in said, said
