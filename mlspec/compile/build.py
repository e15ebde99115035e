"""Compile a checked project: select targets, build the graph and the render context once,
run each target's renderer, then add ``kustomization.yaml`` and ``manifest.json``.

The same project gives byte-identical files (sorted keys, no timestamps, no absolute paths);
writing them is :mod:`mlspec.compile.writer`'s job.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlspec.compile.context import build_context
from mlspec.compile.graph import build_graph
from mlspec.compile.targets import OutputFile, renderer
from mlspec.compile.writer import KUSTOMIZATION, MANIFEST, check_paths, kustomization, manifest
from mlspec.errors import UsageError, did_you_mean
from mlspec.spec.models import Project
from mlspec.targets import TARGET_NAMES, TARGETS, target


@dataclass
class Compiled:
    """What a compile produced, before or after it was written."""

    name: str
    files: list[OutputFile]
    targets: list[str]


def select_targets(project: Project, requested: list[str]) -> list[str]:
    """The targets to compile: ``--target`` ones, else the spec's engines and every target that
    is not an engine (serving, monitoring), in the registry's order.

    Raises:
        UsageError: for a name that is not a target (with a "did you mean" hint).
    """
    for name in requested:
        if name not in TARGET_NAMES:
            hint = did_you_mean(name, TARGET_NAMES)
            raise UsageError(f"unknown target {name!r}" + (f"; {hint}" if hint else "")
                             + f" (targets: {', '.join(TARGET_NAMES)})")
    if requested:
        wanted = set(requested)
    else:
        wanted = {t.name for t in TARGETS if not t.engine or t.name in project.targets}
    return [name for name in TARGET_NAMES if name in wanted]


def render_target(project: Project, name: str, previous: Project | None = None) -> list[OutputFile]:
    """One target's files (what ``submit`` sends), rendered exactly as compile renders them.

    Raises:
        SpecError: the target cannot express the spec.
    """
    return _renderer(name)(project, build_graph(project), build_context(project, previous))


def compile_project(project: Project, requested: list[str], spec_sha256: str, spec_name: str,
                    profile: str | None = None, previous: Project | None = None) -> Compiled:
    """Render the selected targets and add ``kustomization.yaml`` and ``manifest.json``.

    ``previous`` is the spec now in production, which an ``auto`` rollout is planned against.

    Raises:
        UsageError: unknown target.
        SpecError: a target cannot express the spec.
    """
    graph = build_graph(project)
    ctx = build_context(project, previous)
    names: list[str] = []
    files: list[OutputFile] = []
    for name in select_targets(project, requested):
        files.extend(_renderer(name)(project, graph, ctx))
        names.append(name)
    check_paths(files)
    files.append(OutputFile(KUSTOMIZATION, kustomization(files)))
    files.sort(key=lambda f: f.path)
    files.append(OutputFile(MANIFEST, manifest(files, spec_sha256, spec_name, profile, names)))
    return Compiled(project.metadata.name, files, names)


def _renderer(name: str):
    try:
        return renderer(name)
    except ModuleNotFoundError:
        raise UsageError(f"target {name!r}: module {target(name).renderer} is missing "
                         "(a broken install? reinstall mlspec)") from None
