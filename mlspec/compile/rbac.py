"""The ServiceAccount, Role and RoleBinding of a step that calls the Kubernetes API.

The deploy/rollout steps and the distributed train step each run as their own account, with a
namespaced Role that allows exactly their calls. Kubeflow Pipelines runs every task of a run as
one account (multi-user: the profile's ``default-editor``) and cannot give a task an account of
its own as Tekton can, so with a KFP target that account is bound as well.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from mlspec import k8s
from mlspec.spec.models import Project

KFP_RUNNER = "default-editor"


def step_rbac(project: Project, account: str, component: str,
              rules: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """ServiceAccount ``account``, a Role of ``rules`` and the RoleBinding between them."""
    labels = k8s.standard_labels(project.metadata.name, project.metadata.labels,
                                 {"app.kubernetes.io/component": component})
    meta = {"name": account, "namespace": project.namespace, "labels": labels}
    subjects = [{"kind": "ServiceAccount", "name": account, "namespace": project.namespace}]
    if "kfp" in project.targets:
        subjects.append({"kind": "ServiceAccount", "name": KFP_RUNNER,
                         "namespace": project.namespace})
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": meta,
         "rules": [dict(rule) for rule in rules]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": meta,
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": account},
         "subjects": subjects},
    ]
