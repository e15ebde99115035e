"""Compile targets: one module each, each a pure ``render(project, graph) -> list[OutputFile]``.

``TARGETS`` maps a target name to the module that renders it; modules are imported only when
their target is compiled, so a target's heavy dependency (kfp) costs nothing elsewhere.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from mlspec.graph import PipelineGraph
from mlspec.spec.models import PIPELINE_ENGINES, Project


@dataclass(frozen=True)
class OutputFile:
    """A file a target writes, relative to the output folder (e.g. ``kfp/pipeline.yaml``)."""

    path: str
    content: str


Renderer = Callable[[Project, PipelineGraph], list[OutputFile]]

# Target name -> module with a ``render`` function. Pipeline engines are chosen by the spec's
# ``targets``; serving and monitoring are always compiled.
TARGETS: dict[str, str] = {
    "kfp": "mlspec.targets.kfp",
    "tekton": "mlspec.targets.tekton",
    "serving": "mlspec.targets.serving",
    "monitoring": "mlspec.targets.monitoring",
}
PIPELINE_TARGETS = PIPELINE_ENGINES


def renderer(name: str) -> Renderer:
    """The ``render`` function of target ``name``."""
    return importlib.import_module(TARGETS[name]).render
