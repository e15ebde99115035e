"""Credentials in the compiled output: Secret references only, on exactly the steps that need
them (registry.credentials_secret on the registry's steps and the model server,
data.source.credentials_secret on the steps that read data), and never a Secret read in RBAC.
A file registry on a cluster target is a warning that ``--strict`` turns into a failure."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from mlspec import k8s
from mlspec.commands.compile import compile_command
from mlspec.compile.graph import REGISTRY_STEPS, SOURCE_STEPS
from tests.commands.test_compile import _tree
from tests.conftest import REPO, oracle

IRIS = REPO / "examples" / "iris" / "mlproject.yaml"
REGISTRY_SECRET, DATA_SECRET = "mlflow-credentials", "iris-data-reader"


@pytest.fixture(scope="module")
def prod(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The iris example's prod profile (a tracking server and its Secret), plus a data Secret
    and the pipeline's own deploy (whose steps read the registry too), compiled for every
    target."""
    root = tmp_path_factory.mktemp("credentials")
    text = IRIS.read_text()
    old = "    uri: sklearn://iris\n"
    assert old in text
    spec = root / "mlproject.yaml"
    assert "\nserving:\n" in text
    spec.write_text(text.replace(old, f"{old}    credentials_secret: {DATA_SECRET}\n")
                    .replace("\nserving:\n", "\nserving:\n  deploy: auto\n"))
    dest = root / "out"
    assert compile_command(str(spec), str(dest), [], "prod", strict=True) == 0
    return dest


def _docs(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _secret_refs(container: dict) -> list[str]:
    return [source["secretRef"]["name"] for source in container.get("envFrom") or []]


def test_tekton_steps_get_exactly_their_secrets(prod: Path) -> None:
    found = {}
    for task in _docs(prod / "tekton" / "tasks.yaml"):
        step_name = task["metadata"]["name"].removeprefix("iris-classifier-")
        (step,) = task["spec"]["steps"]
        found[step_name] = _secret_refs(step)
    assert found, "no Task compiled"
    for name, refs in found.items():
        expected = ([DATA_SECRET] if name in SOURCE_STEPS else []) + (
            [REGISTRY_SECRET] if name in REGISTRY_STEPS else [])
        assert refs == expected, (name, refs)
    assert set(REGISTRY_STEPS) | set(SOURCE_STEPS) <= set(found)


def test_kfp_executors_mount_their_secrets_as_env(prod: Path) -> None:
    _ir, platform = _docs(prod / "kfp" / "pipeline.yaml")
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    refs = {name.removeprefix("exec-"): [s["secretName"] for s in spec.get("secretAsEnv", [])]
            for name, spec in executors.items()}
    assert refs["ingest"] == [DATA_SECRET]
    for step in REGISTRY_STEPS:
        assert refs[step] == [REGISTRY_SECRET], step
    for step in set(refs) - set(REGISTRY_STEPS) - set(SOURCE_STEPS):
        assert refs[step] == [], step
    # KFP maps keys one by one: the variables MLflow and the AWS SDK read, each optional (a
    # Secret holds a token, or a username and password, or artifact-store keys).
    keys = {REGISTRY_SECRET: k8s.REGISTRY_SECRET_KEYS, DATA_SECRET: k8s.DATA_SECRET_KEYS}
    for spec in executors.values():
        for ref in spec.get("secretAsEnv", []):
            assert ref["optional"] is True
            assert [(m["secretKey"], m["envVar"]) for m in ref["keyToEnv"]] == [
                (key, key) for key in keys[ref["secretName"]]]


def test_the_model_server_gets_the_registry_secret_and_runs_as_the_image_user(prod: Path) -> None:
    isvc = yaml.safe_load((prod / "serving" / "inferenceservice.yaml").read_text())
    predictor = isvc["spec"]["predictor"]
    (container,) = predictor["containers"]
    assert _secret_refs(container) == [REGISTRY_SECRET]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["MLFLOW_TRACKING_URI"] == "http://mlflow.mlflow.svc:5000"
    assert not any(k.startswith(("AWS_", "MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_PASSWORD"))
                   for k in env)
    assert container["securityContext"]["runAsUser"] == k8s.RUN_AS
    assert predictor["securityContext"]["runAsUser"] == k8s.RUN_AS


def test_no_rbac_rule_reads_secrets_and_no_secret_object_is_compiled(prod: Path) -> None:
    for path, text in _tree(prod).items():
        if not path.endswith(".yaml"):
            continue
        for doc in yaml.safe_load_all(text):
            if not isinstance(doc, dict):
                continue
            assert doc.get("kind") != "Secret", path
            for rule in doc.get("rules") or []:
                if isinstance(rule, dict) and "resources" in rule:
                    assert "secrets" not in rule["resources"], (path, rule)


def test_the_output_with_secret_references_passes_the_upstream_schemas(prod: Path) -> None:
    check = oracle("validate-manifests")
    resources = yaml.safe_load((prod / "kustomization.yaml").read_text())["resources"]
    done = subprocess.run([str(check), *(str(prod / r) for r in resources)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"in {len(resources)} file(s), 0 invalid" in done.stdout + done.stderr


def test_a_file_registry_fails_a_strict_compile_and_warns_otherwise(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert compile_command(str(IRIS), str(tmp_path / "strict"), [], None, strict=True) == 1
    out = capsys.readouterr()
    assert "MLS232" in out.out + out.err
    assert not (tmp_path / "strict").exists(), "a refused compile writes nothing"
    assert compile_command(str(IRIS), str(tmp_path / "loose"), [], None) == 0
    out = capsys.readouterr()
    assert "MLS232" in out.out + out.err
