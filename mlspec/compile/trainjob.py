"""The Kubeflow Trainer v2 TrainJob of a distributed torch spec, and the train step's RBAC.

With ``model.distributed`` the pipeline's train step does not train in its own pod: it submits
this ``trainer.kubeflow.org/v1alpha1`` TrainJob (``runtimeRef: torch-distributed``, the
runtime image, ``numNodes`` pods of ``numProcPerNode`` torchrun processes, the spec's
resources per node), waits for it, and hands its model to evaluate (mlspec.runtime.trainjob).
The object is rendered here, at compile time, so that ``training/trainjob.yaml`` shows in git
exactly what will run; the step fills in only the run's values (the TrainJob's name and the
trainer's ``--spec``/``--handoff`` arguments, appended).

The trainer's command is torchrun (``python -m torch.distributed.run``), which reads its
rendezvous from the ``PET_*`` variables that Trainer's torch plugin sets on every node.
Node selector and tolerations reach the node pods through ``runtimePatches`` (the pod template
of the runtime's ``node`` job), with the same restricted security context as every step.
Pure: a dict from the project, nothing read from the environment.
"""

from __future__ import annotations

import json
from typing import Any

from mlspec import contract, k8s
from mlspec.compile.rbac import step_rbac
from mlspec.spec.models import Project

API_VERSION = "trainer.kubeflow.org/v1alpha1"
GPU_RESOURCE = "nvidia.com/gpu"
PATCH_MANAGER = "mlspec.dev/compile"
# Where a node keeps the handed-over data and the model before upload (an emptyDir: the root
# filesystem is read-only); HOME too, for the libraries that cache there.
WORK_DIR = "/workspace/train"
# What the train step does with a TrainJob, and nothing else: create it and read its status.
TRAINER_RULES = (
    {"apiGroups": ["trainer.kubeflow.org"], "resources": ["trainjobs"],
     "verbs": ["create", "get"]},
)


def trainjob_template(project: Project, image: str, timeout_seconds: int) -> dict[str, Any]:
    """The TrainJob of ``project`` (which must have ``model.distributed``), unnamed per run."""
    dist = project.model.distributed
    if dist is None:
        raise ValueError("trainjob_template needs model.distributed")
    name = project.metadata.name
    labels = k8s.standard_labels(name, project.metadata.labels,
                                 {"app.kubernetes.io/component": "training"})
    return {
        "apiVersion": API_VERSION,
        "kind": "TrainJob",
        # A template (kustomization.yaml leaves it out): applied as compiled it has no run.
        "metadata": {"name": f"{name}-train", "namespace": project.namespace, "labels": labels,
                     "annotations": {contract.DEPLOY_ANNOTATION: contract.DEPLOY_TEMPLATE}},
        "spec": {
            "runtimeRef": {"apiGroup": "trainer.kubeflow.org", "kind": "ClusterTrainingRuntime",
                           "name": contract.TRAINJOB_RUNTIME},
            # The cluster stops the job too when the step's own wait runs out.
            "activeDeadlineSeconds": timeout_seconds,
            "trainer": {
                "image": image,
                "command": ["python", "-m", "torch.distributed.run"],
                "args": ["-m", "mlspec.runtime", "train",
                         "--in", f"train={WORK_DIR}/train.parquet",
                         "--out", f"model={WORK_DIR}/model"],
                "numNodes": dist.nodes,
                "numProcPerNode": dist.processes_per_node,
                "resourcesPerNode": _resources(project),
                "env": _env(project),
            },
            "runtimePatches": [{"manager": PATCH_MANAGER,
                                "trainingRuntimeSpec": {"template": {"spec": {
                                    "replicatedJobs": [_node_patch(project)]}}}}],
        },
    }


def trainjob_json(project: Project, image: str, timeout_seconds: int) -> str:
    """:func:`trainjob_template` as the pipelines carry it: compact JSON, keys sorted."""
    return json.dumps(trainjob_template(project, image, timeout_seconds), sort_keys=True,
                      separators=(",", ":"))


def _resources(project: Project) -> dict[str, Any]:
    res = project.model.resources
    amounts: dict[str, Any] = {"cpu": res.cpu, "memory": res.memory}
    if res.gpu:
        amounts[GPU_RESOURCE] = res.gpu
    return {"requests": dict(amounts), "limits": dict(amounts)}


def _env(project: Project) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [{"name": "OMP_NUM_THREADS", "value": "1"},
                                 {"name": "HOME", "value": WORK_DIR}]
    secret = project.registry.credentials_secret
    if secret:  # the handoff goes through the registry: the nodes need its credentials
        env += [{"name": key, "valueFrom": {"secretKeyRef": {"name": secret, "key": key,
                                                             "optional": True}}}
                for key in k8s.REGISTRY_SECRET_KEYS]
    return env


def _node_patch(project: Project) -> dict[str, Any]:
    res = project.model.resources
    pod: dict[str, Any] = {
        "securityContext": {"runAsNonRoot": True, "runAsUser": k8s.RUN_AS,
                            "runAsGroup": k8s.RUN_AS, "fsGroup": k8s.RUN_AS,
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{"name": contract.TRAINJOB_NODE_JOB,
                        "securityContext": {"allowPrivilegeEscalation": False,
                                            "capabilities": {"drop": ["ALL"]},
                                            "readOnlyRootFilesystem": True},
                        "volumeMounts": [{"name": "work", "mountPath": WORK_DIR}]}],
        "volumes": [{"name": "work", "emptyDir": {}}],
    }
    if res.node_selector:
        pod["nodeSelector"] = dict(sorted(res.node_selector.items()))
    if res.tolerations:
        pod["tolerations"] = [{k: v for k, v in t.model_dump().items() if v is not None}
                              for t in res.tolerations]
    return {"name": contract.TRAINJOB_NODE_JOB,
            "template": {"spec": {"template": {"spec": pod}}}}


def trainer_rbac(project: Project) -> list[dict[str, Any]]:
    """The train step's ServiceAccount, Role and RoleBinding (create and read TrainJobs in its
    namespace, nothing else)."""
    return step_rbac(project, k8s.trainer_account(project.metadata.name), "training", TRAINER_RULES)
