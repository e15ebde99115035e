"""Shadow, A/B and blue-green on a cluster: the compiled pipeline's deploy and rollout Tasks,
run as compiled, against tests/kube_api.py (a local server speaking the Kubernetes API for these
kinds; none can run here), every object sent checked by validate-manifests (KServe's and
Istio's CRD schemas). The registry is a real MLflow (sqlite)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from mlspec import contract
from tests.e2e.live import Timeline, free_port, get_json, processes, wait_for
from tests.kube_api import FakeKubeApi
from tests.runtime.rollout.test_deploy import (
    _registration,
    assert_valid,
    compile_pipeline,
    run_task,
)

NAMESPACE, NAME = "ml-demo", "iris-classifier"
UNREACHABLE = "http://127.0.0.1:9"


@pytest.fixture(scope="module")
def compiled(tmp_path_factory, iris_run) -> dict[str, dict[str, Any]]:
    """Per strategy: the compiled pipeline; its registry holds v1 (production) and v2."""
    from mlflow import MlflowClient

    from mlspec.runtime.steps.register import run_register

    out = {}
    for strategy in ("shadow", "ab", "blue-green"):
        c = compile_pipeline(tmp_path_factory.mktemp(strategy),
                             {"strategy": strategy, "hold": "0s"})
        for i in (1, 2):
            run_register(c["spec"], iris_run["model"], None, None, None,
                         str(c["root"] / f"registration-{i}.json"))
        uri = c["spec"]["registry"]["tracking_uri"]
        MlflowClient(tracking_uri=uri, registry_uri=uri).set_registered_model_alias(
            NAME, "production", "1")
        out[strategy] = c
    return out


def _deploy(c: dict[str, Any], api: FakeKubeApi, config: Path, ws: Path) -> None:
    _registration(ws, "2")
    done = run_task(c, "deploy", ws, config)
    assert done.returncode == 0, done.stdout + done.stderr


def _args(obj: dict[str, Any]) -> list[str]:
    return obj["spec"]["predictor"]["containers"][0]["args"]


def _tags(c: dict[str, Any]) -> dict[str, str]:
    from mlflow import MlflowClient

    uri = c["spec"]["registry"]["tracking_uri"]
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    return {**client.get_model_version(NAME, "2").tags,
            "production": str(client.get_model_version_by_alias(NAME, "production").version)}


def test_shadow_deploys_a_comparing_server_and_rolls_back_the_mirror(compiled, kube,
                                                                     tmp_path: Path) -> None:
    api, config = kube
    c, ws = compiled["shadow"], tmp_path / "ws"
    _deploy(c, api, config, ws)
    shadow = api.stored(NAMESPACE, "inferenceservices", f"{NAME}-shadow")
    # The shadow's server holds the stable v1 and mirrors each request to the candidate v2.
    assert _args(shadow)[:5] == ["serve", f"models:/{NAME}/1", "--candidate",
                                 f"models:/{NAME}/2", "--mirror"]
    assert _args(api.stored(NAMESPACE, "inferenceservices", NAME))[1] == f"models:/{NAME}/1"
    done = run_task(c, "rollout", ws, config, "--prometheus", UNREACHABLE)
    assert done.returncode == 1, done.stdout + done.stderr
    report = json.loads((ws / "rollout.json").read_text())
    assert report["strategy"] == "shadow" and report["restored"] is True
    assert "prediction-agreement" in report["reason"] and "cannot be reached" in report["reason"]
    route = api.stored(NAMESPACE, "virtualservices", f"{NAME}-shadow")["spec"]["http"][0]
    assert route["mirrorPercentage"] == {"value": 0.0}  # created by the deploy: no mirror left
    tags = _tags(c)
    assert tags["mlspec.rollout.outcome"] == "rolled_back" and tags["production"] == "1"
    assert_valid(api.sent, tmp_path)


def _router(kind, c: dict[str, Any], ws: Path, config: Path, monkeypatch):
    """The rollout step's router for the deployment in ``ws``, on the kubeconfig's API."""
    from mlspec.runtime.kube import Kube
    from mlspec.runtime.rollout.deploy import read_bundle

    monkeypatch.setenv("KUBECONFIG", str(config))
    bundle = read_bundle(str(c["spec_ws"] / contract.DEPLOY_BUNDLE_FILE))
    record = json.loads((ws / "deployment.json").read_text())
    return kind(Kube(), NAMESPACE, bundle["plan"], record, bundle)


def test_a_promoted_shadow_serves_the_candidate_from_the_stable_service(
        compiled, kube, tmp_path: Path, monkeypatch) -> None:
    from mlspec.runtime.rollout.routers import ShadowRoute

    api, config = kube
    c, ws = compiled["shadow"], tmp_path / "ws"
    _deploy(c, api, config, ws)
    route = _router(ShadowRoute, c, ws, config, monkeypatch)
    route.promote()
    route.kube.close()
    stable = api.stored(NAMESPACE, "inferenceservices", NAME)
    assert _args(stable)[1] == f"models:/{NAME}/2"
    assert stable["metadata"]["annotations"][contract.MODEL_URI_ANNOTATION] == f"models:/{NAME}/2"
    vs = api.stored(NAMESPACE, "virtualservices", f"{NAME}-shadow")
    assert vs["spec"]["http"][0]["mirrorPercentage"] == {"value": 0.0}
    assert_valid(api.sent, tmp_path)


def test_ab_without_ground_truth_readings_rolls_back_to_the_champion(compiled, kube,
                                                                      tmp_path: Path) -> None:
    api, config = kube
    c, ws = compiled["ab"], tmp_path / "ws"
    _deploy(c, api, config, ws)
    graph = api.stored(NAMESPACE, "inferencegraphs", f"{NAME}-ab")
    assert [s["weight"] for s in graph["spec"]["nodes"]["root"]["steps"]] == [90, 10]
    done = run_task(c, "rollout", ws, config, "--prometheus", UNREACHABLE)
    assert done.returncode == 1, done.stdout + done.stderr
    report = json.loads((ws / "rollout.json").read_text())
    assert "feedback counters cannot be read" in report["reason"]
    steps = api.stored(NAMESPACE, "inferencegraphs", f"{NAME}-ab")["spec"]["nodes"]["root"]
    assert {s["serviceName"]: s["weight"] for s in steps["steps"]} == {
        NAME: 100, f"{NAME}-candidate": 0}
    assert _tags(c)["production"] == "1"
    assert_valid(api.sent, tmp_path)


def _weights(api: FakeKubeApi) -> dict[str, int]:
    vs = api.stored(NAMESPACE, "virtualservices", NAME)
    return {d["destination"]["host"].split("-predictor")[0]: d["weight"]
            for d in vs["spec"]["http"][0]["route"]}


def test_blue_green_switches_only_to_a_ready_green_that_answers_and_switches_back(
        compiled, kube, tmp_path: Path) -> None:
    """Green is Ready (its status set as KServe would), the smoke inference goes to a real
    ``mlspec serve`` of v2 standing in for green's predictor, the route switches to green; the
    gates cannot be measured, so the route goes back to blue."""
    api, config = kube
    c, ws = compiled["blue-green"], tmp_path / "ws"
    _deploy(c, api, config, ws)
    assert _weights(api) == {f"{NAME}-blue": 100, f"{NAME}-green": 0}
    green = api.stored(NAMESPACE, "inferenceservices", f"{NAME}-green")
    green["status"] = {"conditions": [{"type": "Ready", "status": "True"}]}
    port = free_port()
    with processes(tmp_path) as procs:
        procs.start("green", [sys.executable, "-m", "mlspec.runtime", "serve",
                              f"models:/{NAME}/2", "--tracking-uri",
                              c["spec"]["registry"]["tracking_uri"], "--port", str(port)],
                    tmp_path)
        wait_for("green", lambda: get_json(f"http://127.0.0.1:{port}/v2/health/ready"),
                 Timeline(120), procs)
        done = run_task(c, "rollout", ws, config, "--prometheus", UNREACHABLE,
                        "--predictor-url", f"http://127.0.0.1:{port}")
    assert done.returncode == 1, done.stdout + done.stderr
    report = json.loads((ws / "rollout.json").read_text())
    assert report["smoke"].startswith("[") and "gate error-rate failed" in report["reason"]
    switched = [p for p in api.patches if "http" in p.get("spec", {})]
    assert [d["weight"] for d in switched[0]["spec"]["http"][0]["route"]] == [0, 100]
    assert _weights(api) == {f"{NAME}-blue": 100, f"{NAME}-green": 0}
    assert_valid(api.sent, tmp_path)


def test_blue_green_never_switches_to_a_green_that_is_not_ready(compiled, kube, tmp_path: Path,
                                                                 monkeypatch) -> None:
    from mlspec.runtime.rollout.executor import RolloutError
    from mlspec.runtime.rollout.routers import BlueGreenRoute

    api, config = kube
    c, ws = compiled["blue-green"], tmp_path / "ws"
    _deploy(c, api, config, ws)
    green = api.stored(NAMESPACE, "inferenceservices", f"{NAME}-green")
    green["status"] = {"conditions": [{"type": "Ready", "status": "False",
                                       "message": "Revision failed: ImagePullBackOff"}]}
    route = _router(BlueGreenRoute, c, ws, config, monkeypatch)
    clock = iter(range(0, 10_000, 60))
    with pytest.raises(RolloutError, match="not Ready after 600 s: Revision failed"):
        route.wait_ready(600, lambda _: None, lambda: float(next(clock)))
    route.kube.close()
    assert _weights(api) == {f"{NAME}-blue": 100, f"{NAME}-green": 0}
