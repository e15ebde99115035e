"""The training target: a distributed torch spec's TrainJob and the train step's RBAC, and how
the pipelines carry the TrainJob to the train step (what that step does with it is
tests/runtime/test_trainjob.py)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from mlspec import contract
from mlspec.compile.build import compile_project, render_target
from mlspec.spec.models import Project
from tests.conftest import REPO, oracle

WINE = REPO / "examples" / "wine-torch" / "mlproject.yaml"


def wine(**model: object) -> Project:
    data = yaml.safe_load(WINE.read_text())
    data["model"].update(model)
    return Project.model_validate(data)


def rendered(project: Project) -> dict[str, list[dict]]:
    return {f.path: [d for d in yaml.safe_load_all(f.content) if d]
            for f in render_target(project, "training")}


def test_the_trainjob_and_rbac_pass_kubeflow_trainers_and_kubernetes_schemas(
        tmp_path: Path) -> None:
    gpu = wine(resources={"cpu": "8", "memory": "32Gi", "gpu": 4,
                          "node_selector": {"pool": "a100"},
                          "tolerations": [{"key": "gpu", "operator": "Exists",
                                           "effect": "NoSchedule"}]},
               distributed={"nodes": 3, "processes_per_node": 4, "backend": "nccl"})
    for name, project in (("cpu", wine()), ("gpu", gpu)):
        for path, content in ((f.path, f.content) for f in render_target(project, "training")):
            target = tmp_path / name / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)
    done = subprocess.run([str(oracle("validate-manifests")), str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "8 document(s) in 4 file(s), 0 invalid" in done.stdout + done.stderr


def test_the_trainjob_runs_the_train_step_under_torchrun_with_the_specs_shape() -> None:
    project = wine(resources={"cpu": "8", "memory": "32Gi", "gpu": 4,
                              "node_selector": {"pool": "a100"},
                              "tolerations": [{"key": "gpu", "operator": "Exists"}]},
                   distributed={"nodes": 3, "processes_per_node": 4, "backend": "nccl"})
    (job,) = rendered(project)["training/trainjob.yaml"]
    spec = job["spec"]
    assert spec["runtimeRef"] == {"apiGroup": "trainer.kubeflow.org",
                                  "kind": "ClusterTrainingRuntime", "name": "torch-distributed"}
    trainer = spec["trainer"]
    assert (trainer["numNodes"], trainer["numProcPerNode"]) == (3, 4)
    assert trainer["image"].endswith("-torch")
    assert trainer["command"] == ["python", "-m", "torch.distributed.run"]
    assert trainer["args"][:3] == ["-m", "mlspec.runtime", "train"]
    assert trainer["resourcesPerNode"]["limits"] == {"cpu": "8", "memory": "32Gi",
                                                     "nvidia.com/gpu": 4}
    (patch,) = spec["runtimePatches"]
    (node,) = patch["trainingRuntimeSpec"]["template"]["spec"]["replicatedJobs"]
    pod = node["template"]["spec"]["template"]["spec"]
    assert node["name"] == contract.TRAINJOB_NODE_JOB
    assert pod["nodeSelector"] == {"pool": "a100"}
    assert pod["tolerations"] == [{"key": "gpu", "operator": "Exists"}]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert spec["activeDeadlineSeconds"] == 3600
    assert job["metadata"]["annotations"] == {contract.DEPLOY_ANNOTATION: contract.DEPLOY_TEMPLATE}


def test_the_registry_credentials_reach_the_nodes_only_as_secret_references() -> None:
    project = wine()
    project.registry.credentials_secret = "mlflow-credentials"
    (job,) = rendered(project)["training/trainjob.yaml"]
    refs = [e for e in job["spec"]["trainer"]["env"] if "valueFrom" in e]
    assert refs and all(e["valueFrom"]["secretKeyRef"]["name"] == "mlflow-credentials"
                        and e["valueFrom"]["secretKeyRef"]["optional"] is True for e in refs)
    assert all("value" not in e for e in refs)


def test_the_train_step_may_create_and_read_trainjobs_and_nothing_else() -> None:
    sa, role, binding = rendered(wine())["training/trainer-rbac.yaml"]
    assert sa["kind"] == "ServiceAccount" and sa["metadata"]["name"] == "wine-torch-trainer"
    assert role["rules"] == [{"apiGroups": ["trainer.kubeflow.org"], "resources": ["trainjobs"],
                              "verbs": ["create", "get"]}]
    assert binding["roleRef"]["name"] == "wine-torch-trainer"


def test_without_model_distributed_nothing_is_written_and_the_step_trains_in_its_pod() -> None:
    project = wine(distributed=None)
    assert rendered(project) == {}
    out = compile_project(project, ["tekton"], spec_sha256="0" * 64, spec_name="x.yaml")
    tasks = next(f.content for f in out.files if f.path == "tekton/tasks.yaml")
    assert contract.TRAIN_BUNDLE_FILE not in tasks


def test_the_pipelines_carry_the_same_trainjob_to_a_light_train_step() -> None:
    project = wine()
    out = {f.path: f.content for f in compile_project(project, ["kfp", "tekton", "training"],
                                                     spec_sha256="0" * 64, spec_name="x.yaml")
           .files}
    (job,) = yaml.safe_load_all(out["training/trainjob.yaml"])
    (configmap,) = [d for d in yaml.safe_load_all(out["tekton/spec-configmap.yaml"]) if d]
    assert json.loads(configmap["data"][contract.TRAIN_BUNDLE_FILE]) == job
    ir = next(yaml.safe_load_all(out["kfp/pipeline.yaml"]))
    default = ir["root"]["inputDefinitions"]["parameters"]["train_bundle"]["defaultValue"]
    assert json.loads(default) == job
    tasks = [d for d in yaml.safe_load_all(out["tekton/tasks.yaml"]) if d]
    (train,) = [t for t in tasks if t["metadata"]["name"].endswith("-train")]
    (step,) = train["spec"]["steps"]
    assert f"$(workspaces.spec.path)/{contract.TRAIN_BUNDLE_FILE}" in step["args"]
    # The step only submits and waits: light resources, no GPU, the trainer's account.
    assert step["computeResources"]["limits"] == {"cpu": "500m", "memory": "1Gi"}
    assert "wine-torch-trainer" in out["tekton/triggers.yaml"]


def test_the_compiled_trainjob_is_deterministic_and_left_out_of_the_kustomization() -> None:
    first = compile_project(wine(), [], spec_sha256="0" * 64, spec_name="x.yaml").files
    second = compile_project(wine(), [], spec_sha256="0" * 64, spec_name="x.yaml").files
    assert [(f.path, f.content) for f in first] == [(f.path, f.content) for f in second]
    kustomization = yaml.safe_load(next(f.content for f in first
                                        if f.path == "kustomization.yaml"))
    assert "training/trainer-rbac.yaml" in kustomization["resources"]
    assert "training/trainjob.yaml" not in kustomization["resources"]


@pytest.mark.parametrize("field,value", [("nodes", 0), ("processes_per_node", 0)])
def test_a_shape_kubeflow_trainer_would_refuse_is_refused_by_the_spec(field: str,
                                                                      value: int) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        wine(distributed={"nodes": 2, "processes_per_node": 1, field: value})
