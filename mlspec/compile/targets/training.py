"""The ``training`` target: a distributed torch spec's Kubeflow Trainer TrainJob and the train
step's RBAC, as files (``training/trainjob.yaml``, ``training/trainer-rbac.yaml``).

The TrainJob is the template the pipelines' train step submits (the same object travels in the
pipelines as the step's bundle, from the render context); it is named per run when submitted,
so ``kustomization.yaml`` leaves it out and takes the RBAC. A spec without
``model.distributed`` writes nothing here. Dumped from dicts with ``sort_keys``: no spec value
can add a key or a document.
"""

from __future__ import annotations

import json

from mlspec.compile.context import RenderContext
from mlspec.compile.documents import dump_documents
from mlspec.compile.graph import PipelineGraph
from mlspec.compile.targets import OutputFile
from mlspec.compile.trainjob import trainer_rbac
from mlspec.spec.models import Project

OUT = "training"
TRAINJOB_FILE = "trainjob.yaml"
RBAC_FILE = "trainer-rbac.yaml"


def render(project: Project, graph: PipelineGraph, ctx: RenderContext) -> list[OutputFile]:
    """The TrainJob the train step submits and its RBAC; nothing without model.distributed."""
    del graph
    if ctx.train_bundle is None:
        return []
    return [OutputFile(f"{OUT}/{TRAINJOB_FILE}", dump_documents([json.loads(ctx.train_bundle)])),
            OutputFile(f"{OUT}/{RBAC_FILE}", dump_documents(trainer_rbac(project)))]
