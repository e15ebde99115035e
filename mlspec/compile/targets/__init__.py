"""Compile targets: one module (or package) each, each a pure
``render(project, graph, ctx) -> list[OutputFile]`` that reads nothing from the disk or the
environment.

Which targets exist, and which module renders each, is the registry in :mod:`mlspec.targets`;
a renderer module is imported only when its target is compiled, so a target's heavy dependency
(kfp) costs nothing elsewhere.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from mlspec.compile.context import RenderContext
from mlspec.compile.graph import PipelineGraph
from mlspec.spec.models import Project
from mlspec.targets import target


@dataclass(frozen=True)
class OutputFile:
    """A file a target writes, relative to the output folder (e.g. ``kfp/pipeline.yaml``)."""

    path: str
    content: str


Renderer = Callable[[Project, PipelineGraph, RenderContext], list[OutputFile]]


def renderer(name: str) -> Renderer:
    """The ``render`` function of target ``name``.

    Raises:
        KeyError: not a registered target.
        ModuleNotFoundError: its module is missing (a broken install).
    """
    return importlib.import_module(target(name).renderer).render
