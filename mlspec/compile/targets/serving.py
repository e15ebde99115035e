"""The ``serving`` target: the rollout strategy's KServe objects as files, and the deployer RBAC.

The objects are built in :mod:`mlspec.compile.kserve` (the pipeline targets embed the same ones
in the deploy step's bundle). They are deploy templates: each InferenceService names
``models:/NAME/unpinned`` until a deploy pins the registered version, so ``kustomization.yaml``
leaves them out (``kubectl apply -k`` must not start a server that has no model to load); the
rollout plan and, with ``serving.deploy: auto``, the deployer's ServiceAccount, Role and
RoleBinding are plain resources.

Every file is written with ``yaml.dump(sort_keys=True)`` from dicts, so no spec value can add a
YAML key or a document.
"""

from __future__ import annotations

from mlspec import k8s
from mlspec.compile import kserve
from mlspec.compile.context import RenderContext
from mlspec.compile.documents import dump_documents
from mlspec.compile.graph import PipelineGraph
from mlspec.compile.rbac import step_rbac
from mlspec.compile.targets import OutputFile
from mlspec.spec.models import Project

OUT = "serving"
RBAC_FILE = "deployer-rbac.yaml"
# What the deploy and rollout steps do, and nothing else: read the objects, apply them (a
# server-side apply of an object that does not exist yet is a create), patch the canary's share.
DEPLOYER_RULES = (
    {"apiGroups": ["serving.kserve.io"], "resources": ["inferenceservices", "inferencegraphs"],
     "verbs": ["create", "get", "patch"]},
    {"apiGroups": ["networking.istio.io"], "resources": ["virtualservices"],
     "verbs": ["create", "get", "patch"]},
)


def render(project: Project, graph: PipelineGraph, ctx: RenderContext) -> list[OutputFile]:
    """The serving files of ``project`` for its rollout strategy (resolved in ``ctx``)."""
    del graph  # serving is per model, not per pipeline step
    files = [OutputFile(f"{OUT}/{name}", dump_documents(docs))
             for name, docs in kserve.strategy_files(project, ctx.strategy,
                                                     ctx.inference_services)]
    if project.serving.deploy == "auto":
        files.append(OutputFile(f"{OUT}/{RBAC_FILE}", dump_documents(deployer_rbac(project))))
    return files


def deployer_rbac(project: Project) -> list[dict]:
    """The deploy steps' ServiceAccount, Role and RoleBinding (least privilege, namespaced)."""
    return step_rbac(project, k8s.deployer_account(project.metadata.name), "deployer",
                     DEPLOYER_RULES)
