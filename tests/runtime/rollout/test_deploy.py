"""The pipeline's deploy and rollout steps on a cluster, run as compiled.

The commands are the compiled Tekton Tasks' own (``tekton/tasks.yaml``: ``python -m
mlspec.runtime deploy|rollout ...``), with the workspaces' paths filled in as Tekton would, the
spec and deploy bundle read from the compiled spec ConfigMap. They talk to the official client's
API server through a kubeconfig; no Kubernetes API server can run here, so it is
``tests/kube_api.py``, a local HTTP server speaking the API's endpoints for these kinds
(GET, server-side apply, merge patch with a 409 on a stale resourceVersion). Every object the
steps send is checked with ``../shared/oracles/validate-manifests`` (KServe's CRD schema).
The registry is a real MLflow (sqlite) with versions registered by the runtime's register step.
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlspec import contract
from mlspec.runtime.errors import StepError
from mlspec.runtime.rollout.deploy import pin, read_bundle
from tests.conftest import REPO, oracle
from tests.kube_api import FakeKubeApi, kubeconfig

NAMESPACE, NAME = "ml-demo", "iris-classifier"
ISVC = "inferenceservices"


def compile_pipeline(root: Path, rollout: dict[str, Any] | None = None) -> dict[str, Any]:
    """The iris example with ``serving.deploy: auto`` (and ``rollout`` if given), compiled into
    ``root``; its registry a sqlite file there. Returns the Tasks, the spec workspace (the spec
    ConfigMap's keys as files, as Tekton mounts them) and the resolved spec."""
    from mlspec.commands.compile import compile_command

    text = (REPO / "examples" / "iris" / "mlproject.yaml").read_text()
    data = yaml.safe_load(text.replace("sqlite:///mlruns.db", f"sqlite:///{root / 'mlruns.db'}"))
    data["serving"]["deploy"] = "auto"
    if rollout is not None:
        data["serving"]["rollout"] = rollout
    spec = root / "mlproject.yaml"
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    out = root / "out"
    assert compile_command(str(spec), str(out), [], None) == 0
    tasks = {d["metadata"]["name"].removeprefix(f"{NAME}-"): d
             for d in yaml.safe_load_all((out / "tekton" / "tasks.yaml").read_text()) if d}
    (configmap,) = [d for d in yaml.safe_load_all(
        (out / "tekton" / "spec-configmap.yaml").read_text()) if d]
    workspace = root / "spec-workspace"
    workspace.mkdir()
    for key, value in configmap["data"].items():
        (workspace / key).write_text(value)
    return {"root": root, "out": out, "tasks": tasks, "spec_ws": workspace,
            "spec": json.loads((workspace / "spec.json").read_text())}


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The iris example with ``serving.deploy: auto``, compiled; its registry a sqlite file."""
    return compile_pipeline(tmp_path_factory.mktemp("deploy"))


@pytest.fixture(scope="module")
def versions(compiled: dict[str, Any], iris_run: dict[str, Any]) -> list[str]:
    """Two registered versions of the model in the compiled spec's registry."""
    from mlspec.runtime.steps.register import run_register

    root = compiled["root"]
    return [str(run_register(compiled["spec"], iris_run["model"], None, None, None,
                             str(root / f"registration-{i}.json"))["version"]) for i in (1, 2)]


def run_task(compiled: dict[str, Any], step: str, artifacts: Path, config: Path,
             *extra: str) -> subprocess.CompletedProcess:
    """The compiled Task's command, the workspaces' paths substituted as Tekton does."""
    (container,) = compiled["tasks"][step]["spec"]["steps"]
    assert container["command"] == ["python"]
    paths = {"$(workspaces.spec.path)": str(compiled["spec_ws"]),
             "$(workspaces.artifacts.path)": str(artifacts)}
    args = [re.sub(r"\$\(workspaces\.\w+\.path\)", lambda m: paths[m.group(0)], a)
            for a in container["args"]]
    assert not [a for a in args if "$(" in a], args
    env = {**os.environ, "PYTHONPATH": str(REPO), "KUBECONFIG": str(config)}
    env.pop("MLSPEC_DEBUG", None)
    return subprocess.run([sys.executable, *args, *extra], env=env, capture_output=True,
                          text=True, timeout=300)


def assert_valid(objects: list[dict[str, Any]], tmp_path: Path) -> None:
    """Every object passes the upstream schemas (validate-manifests)."""
    check = oracle("validate-manifests")
    path = tmp_path / "sent.yaml"
    path.write_text(yaml.safe_dump_all(objects, sort_keys=True))
    done = subprocess.run([str(check), str(path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


def _registration(artifacts: Path, version: str) -> None:
    artifacts.mkdir(exist_ok=True)
    (artifacts / "registration.json").write_text(json.dumps(
        {"name": NAME, "version": version, "alias": "staging",
         "model_uri": f"models:/{NAME}/{version}"}))


def _serve_champion(compiled: dict[str, Any], api: FakeKubeApi, version: str) -> dict[str, Any]:
    """The InferenceService as a previous deploy left it (``version`` pinned); returns it."""
    bundle = read_bundle(str(compiled["spec_ws"] / contract.DEPLOY_BUNDLE_FILE))
    (champion,) = pin(bundle["objects"], NAME, version, None)
    api.put(ISVC, champion)
    return copy.deepcopy(api.stored(NAMESPACE, ISVC, NAME))


def _served_uri(obj: dict[str, Any]) -> str:
    return obj["spec"]["predictor"]["containers"][0]["args"][1]


# --- pinning ----------------------------------------------------------------------------------
def test_pin_writes_the_version_into_the_server_and_nothing_else(compiled) -> None:
    bundle = read_bundle(str(compiled["spec_ws"] / contract.DEPLOY_BUNDLE_FILE))
    (isvc,) = bundle["objects"]
    assert _served_uri(isvc) == f"models:/{NAME}/unpinned"
    (pinned,) = pin(bundle["objects"], NAME, "7", None)
    assert _served_uri(pinned) == f"models:/{NAME}/7"
    assert pinned["metadata"]["annotations"][contract.MODEL_URI_ANNOTATION] == f"models:/{NAME}/7"
    # Everything else is the compiled object, unchanged (and the bundle itself is untouched).
    back = copy.deepcopy(pinned)
    back["spec"]["predictor"]["containers"][0]["args"][1] = f"models:/{NAME}/unpinned"
    back["metadata"]["annotations"][contract.MODEL_URI_ANNOTATION] = f"models:/{NAME}/unpinned"
    assert back == isvc
    assert _served_uri(bundle["objects"][0]).endswith("/unpinned")


def test_the_bundle_holds_exactly_the_compiled_serving_objects(compiled) -> None:
    bundle = read_bundle(str(compiled["spec_ws"] / contract.DEPLOY_BUNDLE_FILE))
    files = yaml.safe_load_all((compiled["out"] / "serving" / "inferenceservice.yaml").read_text())
    assert bundle["objects"] == [d for d in files if d]
    plan = yaml.safe_load_all((compiled["out"] / "serving" / "rollout-plan.yaml").read_text())
    (configmap,) = [d for d in plan if d]
    assert bundle["plan"] == yaml.safe_load(configmap["data"]["plan.yaml"])
    # Deploy templates are not for kubectl apply -k: unpinned, they would serve nothing.
    resources = yaml.safe_load((compiled["out"] / "kustomization.yaml").read_text())["resources"]
    assert "serving/inferenceservice.yaml" not in resources
    assert {"serving/rollout-plan.yaml", "serving/deployer-rbac.yaml"} <= set(resources)


def test_a_stable_role_needs_a_stable_version(compiled) -> None:
    bundle = read_bundle(str(compiled["spec_ws"] / contract.DEPLOY_BUNDLE_FILE))
    stable = copy.deepcopy(bundle["objects"])
    stable[0]["metadata"]["annotations"][contract.MODEL_ROLE_ANNOTATION] = contract.STABLE_ROLE
    with pytest.raises(StepError, match="nothing is at the stable alias yet"):
        pin(stable, NAME, "2", None)
    broken = copy.deepcopy(bundle["objects"])
    broken[0]["spec"]["predictor"]["containers"][0]["args"][1] = f"models:/{NAME}@staging"
    with pytest.raises(StepError, match="not a deploy template"):
        pin(broken, NAME, "2", None)


# --- the compiled deploy Task -------------------------------------------------------------------
def test_deploy_applies_the_pinned_version(compiled, kube, tmp_path: Path) -> None:
    api, config = kube
    _registration(tmp_path / "ws", "3")
    done = run_task(compiled, "deploy", tmp_path / "ws", config)
    assert done.returncode == 0, done.stderr
    assert "deploy: models:/iris-classifier/3" in done.stdout
    stored = api.stored(NAMESPACE, ISVC, NAME)
    assert _served_uri(stored) == f"models:/{NAME}/3"
    assert stored["spec"]["predictor"]["canaryTrafficPercent"] == 10
    # Server-side apply, as field manager mlspec.
    assert [(m, c) for m, _, c in api.requests] == [
        ("GET", "application/json"), ("PATCH", "application/apply-patch+yaml")]
    record = json.loads((tmp_path / "ws" / "deployment.json").read_text())
    assert record["candidate_version"] == "3"
    assert record["objects"] == [{"kind": "InferenceService", "name": NAME, "action": "created",
                                  "previous": None}]
    assert_valid(api.sent, tmp_path)


def test_deploy_records_what_it_replaced(compiled, kube, tmp_path: Path) -> None:
    api, config = kube
    bundle = read_bundle(str(compiled["spec_ws"] / contract.DEPLOY_BUNDLE_FILE))
    (champion,) = pin(bundle["objects"], NAME, "1", None)
    api.put(ISVC, {**champion, "status": {"url": "http://iris"}})
    _registration(tmp_path / "ws", "2")
    assert run_task(compiled, "deploy", tmp_path / "ws", config).returncode == 0
    record = json.loads((tmp_path / "ws" / "deployment.json").read_text())
    (entry,) = record["objects"]
    assert entry["action"] == "configured"
    previous = entry["previous"]
    assert _served_uri(previous) == f"models:/{NAME}/1"
    assert "status" not in previous and "resourceVersion" not in previous["metadata"]
    assert _served_uri(api.stored(NAMESPACE, ISVC, NAME)) == f"models:/{NAME}/2"
    assert api.stored(NAMESPACE, ISVC, NAME)["status"] == {"url": "http://iris"}


def test_deploy_without_credentials_or_api_fails_cleanly(compiled, tmp_path: Path) -> None:
    from tests.runtime.conftest import assert_clean_failure

    _registration(tmp_path / "ws", "3")
    done = run_task(compiled, "deploy", tmp_path / "ws", tmp_path / "absent-kubeconfig")
    assert_clean_failure(done, contains="no Kubernetes credentials")
    refused = kubeconfig("http://127.0.0.1:9", tmp_path / "refused")
    done = run_task(compiled, "deploy", tmp_path / "ws", refused)
    assert_clean_failure(done, contains="cannot reach the Kubernetes API")


# --- the executor's traffic on KServe ------------------------------------------------------------
def test_a_stale_resource_version_is_reread_and_retried(kube) -> None:
    from mlspec.runtime.kube import Kube, api_client
    from mlspec.runtime.rollout.kserve import KServeTraffic

    api, config = kube
    api.put(ISVC, {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
                   "metadata": {"name": NAME, "namespace": NAMESPACE},
                   "spec": {"predictor": {"canaryTrafficPercent": 10}}})
    os.environ["KUBECONFIG"] = str(config)
    try:
        traffic = KServeTraffic(Kube(api_client()), NAMESPACE, NAME, None)
        api.interfere(2)  # two other writers win the race; the third patch lands
        traffic.set_percent(50)
    finally:
        del os.environ["KUBECONFIG"]
    assert api.stored(NAMESPACE, ISVC, NAME)["spec"]["predictor"]["canaryTrafficPercent"] == 50
    assert len(api.patches) == 3
    # Each attempt carried the resourceVersion it was computed from.
    assert all(p["metadata"]["resourceVersion"] for p in api.patches)


def test_a_rollback_restores_the_champion_exactly_and_leaves_the_alias(
        compiled, versions, kube, tmp_path: Path) -> None:
    """Prometheus cannot be reached: the first gate fails closed, the share goes to 0 and the
    InferenceService is put back as it was (the champion's pinned version)."""
    from mlflow import MlflowClient

    api, config = kube
    v1, v2 = versions
    before = _serve_champion(compiled, api, v1)
    ws = tmp_path / "ws"
    _registration(ws, v2)
    assert run_task(compiled, "deploy", ws, config).returncode == 0
    assert _served_uri(api.stored(NAMESPACE, ISVC, NAME)) == f"models:/{NAME}/{v2}"

    done = run_task(compiled, "rollout", ws, config, "--hold", "0s",
                    "--prometheus", "http://127.0.0.1:9")
    assert done.returncode == 1, done.stdout + done.stderr
    report = json.loads((ws / "rollout.json").read_text())
    assert report["outcome"] == "rolled_back" and report["restored"] is True
    assert "gate error-rate failed" in report["reason"]
    after = api.stored(NAMESPACE, ISVC, NAME)
    strip = ("resourceVersion", "generation")
    assert {k: v for k, v in after["metadata"].items() if k not in strip} == \
        {k: v for k, v in before["metadata"].items() if k not in strip}
    assert after["spec"] == before["spec"]
    # At once to 0 %, then the previous object re-applied.
    assert api.patches[-1]["spec"] == {"predictor": {"canaryTrafficPercent": 0}}
    assert_valid([o for o in api.sent if o.get("kind") == "InferenceService"], tmp_path)
    client = MlflowClient(tracking_uri=compiled["spec"]["registry"]["tracking_uri"])
    tags = client.get_model_version(NAME, v2).tags
    assert tags["mlspec.rollout.outcome"] == "rolled_back"
    with pytest.raises(Exception):  # noqa: B017 - MLflow's not-found exception type varies
        client.get_model_version_by_alias(NAME, "production")


def test_the_rollout_step_needs_a_canary_deployment(compiled, kube, tmp_path: Path) -> None:
    from tests.runtime.conftest import assert_clean_failure

    _api, config = kube
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "deployment.json").write_text(json.dumps({"objects": []}))
    done = run_task(compiled, "rollout", ws, config)
    assert_clean_failure(done, contains="is not a deployment record")


# --- promotion, gated on a real Prometheus --------------------------------------------------------
class _HealthyServer:
    """An exporter of the model server's contract metrics for a healthy candidate: requests
    that grow on every scrape, no 5xx, fast answers, low drift, high accuracy."""

    def __init__(self) -> None:
        self.scrapes = 0

    def text(self) -> str:
        self.scrapes += 1
        n = 100 * self.scrapes
        model = f'model="{NAME}"'
        lines = []
        for version in ("1", "2"):
            labels = f'{model},version="{version}"'
            lines.append(f'{contract.REQUESTS_TOTAL}{{{labels},code="200"}} {n}')
            for le in (*contract.DURATION_BUCKETS, "+Inf"):
                lines.append(f'{contract.REQUEST_DURATION}_bucket{{{labels},le="{le}"}} {n}')
            lines.append(f'{contract.FEATURE_DRIFT}{{{labels},feature="sepal_length",'
                         f'method="psi"}} 0.01')
            lines.append(f'{contract.MODEL_PERFORMANCE}{{{labels},metric="accuracy"}} 0.97')
        return "\n".join(lines) + "\n"


@pytest.mark.slow
def test_a_healthy_canary_is_promoted_on_real_prometheus(compiled, versions, kube,
                                                         tmp_path: Path) -> None:
    import time

    from mlflow import MlflowClient

    from mlspec.runtime.rollout.gates import Prometheus
    from tests.conftest import program
    from tests.e2e.live import exporter, free_port, processes

    api, config = kube
    v1, v2 = versions
    metrics = _HealthyServer()

    work = tmp_path / "prometheus"
    work.mkdir()
    port = free_port()
    with exporter(metrics.text) as exporter_port, processes(work) as procs:
        (work / "prometheus.yml").write_text(yaml.safe_dump({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [{"job_name": "model-server", "static_configs": [
                {"targets": [f"127.0.0.1:{exporter_port}"]}]}]}))
        procs.start("prometheus", [program("prometheus"),
                                   f"--config.file={work / 'prometheus.yml'}",
                                   f"--storage.tsdb.path={work / 'data'}",
                                   f"--web.listen-address=127.0.0.1:{port}"], work)
        client = Prometheus(f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 60
        while not _has_rates(client):
            procs.check_alive()
            assert time.monotonic() < deadline, procs.tail("prometheus")
            time.sleep(0.5)
        _serve_champion(compiled, api, v1)
        ws = tmp_path / "ws"
        _registration(ws, v2)
        assert run_task(compiled, "deploy", ws, config).returncode == 0
        done = run_task(compiled, "rollout", ws, config, "--hold", "0s",
                        "--prometheus", client.url)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((ws / "rollout.json").read_text())
    assert report["outcome"] == "promoted", report
    steps = [p["spec"]["predictor"]["canaryTrafficPercent"] for p in api.patches]
    assert steps == [10, 50, 100]
    stored = api.stored(NAMESPACE, ISVC, NAME)
    assert _served_uri(stored) == f"models:/{NAME}/{v2}"
    assert stored["spec"]["predictor"]["canaryTrafficPercent"] == 100
    registry = MlflowClient(tracking_uri=compiled["spec"]["registry"]["tracking_uri"])
    assert str(registry.get_model_version_by_alias(NAME, "production").version) == v2
    assert registry.get_model_version(NAME, v2).tags["mlspec.rollout.outcome"] == "promoted"


def _has_rates(client) -> bool:
    try:
        return bool(client.query(f'rate({contract.REQUESTS_TOTAL}[5m]) > 0'))
    except Exception:  # noqa: BLE001 - not up yet
        return False


# --- mlspec rollout on a cluster (deploy: manual is this command) --------------------------------
def _mlspec_rollout(compiled, cwd: Path, config: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "KUBECONFIG": str(config)}
    return subprocess.run([sys.executable, "-m", "mlspec", "rollout",
                           str(compiled["root"] / "mlproject.yaml"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_mlspec_rollout_deploys_and_rolls_back_on_the_cluster(compiled, versions, kube,
                                                               tmp_path: Path) -> None:
    api, config = kube
    v1, v2 = versions
    before = _serve_champion(compiled, api, v1)
    done = _mlspec_rollout(compiled, tmp_path, config, "--version", v2, "--hold", "0s",
                           "--prometheus", "http://127.0.0.1:9")
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"rolled back {NAME} version {v2}" in done.stdout
    folder = tmp_path / ".mlspec" / "rollouts" / f"{NAME}-v{v2}"
    report = json.loads((folder / "report.json").read_text())
    assert report["outcome"] == "rolled_back" and report["restored"] is True
    deployment = json.loads((folder / "deployment.json").read_text())
    assert deployment["model_uri"] == f"models:/{NAME}/{v2}"
    assert api.stored(NAMESPACE, ISVC, NAME)["spec"] == before["spec"]
    assert [m for m, _, c in api.requests if c.startswith("application/apply")] == ["PATCH"] * 2


def test_mlspec_rollout_without_credentials_is_a_usage_error(compiled, tmp_path: Path) -> None:
    done = _mlspec_rollout(compiled, tmp_path, tmp_path / "absent", "--version", "2")
    assert done.returncode == 2 and "no Kubernetes credentials" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_the_stable_version_is_what_the_alias_names_at_deploy_time(compiled, versions) -> None:
    """Strategies with a stable server pin the version the baseline alias names when the deploy
    runs (runtime.registry.version_by_alias, the lookup evaluate's champion uses too)."""
    from mlflow import MlflowClient

    from mlspec.runtime.registry import version_by_alias

    uri = compiled["spec"]["registry"]["tracking_uri"]
    v1, _v2 = versions
    assert version_by_alias(uri, NAME, "no-such-alias") is None
    MlflowClient(tracking_uri=uri).set_registered_model_alias(NAME, "blue", v1)
    assert version_by_alias(uri, NAME, "blue") == v1
