"""The compiled Tekton YAML read back into a model of what a cluster would run. Pure parsing.

``load_folder`` reads every ``*.yaml`` of a folder (the compile's ``tekton/``); ``pipeline_run``
resolves its PipelineRun: the Pipeline it references (``pipelineRef`` or ``pipelineSpec``), each
pipeline task's Task (``taskRef`` or ``taskSpec``), the workspace bindings and the timeouts.
A ``matrix`` (its ``params``) fans a task out, as ``mlspec.commands.rehearsal.matrix`` runs
it. What the rehearsal cannot execute faithfully (a remote resolver, a ClusterTask, sidecars, a
matrix ``include``, a custom task) is refused with a ``ManifestError`` that names it; fields
that only matter to a cluster's scheduler (service accounts, pod templates, compute resources)
are read and ignored, as ``docs/rehearsal.md`` lists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

API_VERSIONS = ("tekton.dev/v1", "tekton.dev/v1beta1")
DEFAULT_PIPELINE_TIMEOUT = 3600.0  # Tekton's default-timeout-minutes: 60
NO_DEFAULT = object()


class ManifestError(ValueError):
    """The YAML is invalid for Tekton, or uses what the rehearsal cannot run faithfully."""


@dataclass(frozen=True)
class ParamSpec:
    name: str
    type: str = "string"  # string | array | object
    default: Any = NO_DEFAULT


@dataclass(frozen=True)
class WorkspaceDecl:
    name: str
    mount_path: str | None = None
    read_only: bool = False
    optional: bool = False


@dataclass(frozen=True)
class ResultDecl:
    name: str
    type: str = "string"


@dataclass(frozen=True)
class TaskSpec:
    """A Task's spec: what a TaskRun of it needs and runs."""

    name: str
    params: tuple[ParamSpec, ...] = ()
    workspaces: tuple[WorkspaceDecl, ...] = ()
    results: tuple[ResultDecl, ...] = ()
    steps: tuple[dict, ...] = ()
    step_template: dict | None = None
    volumes: tuple[dict, ...] = ()
    embedded: bool = False  # an inline taskSpec: the pipeline's params propagate into it


@dataclass(frozen=True)
class WhenExpression:
    input: str
    operator: str  # in | notin
    values: tuple[str, ...]


@dataclass(frozen=True)
class WorkspaceUse:
    """A pipeline task's binding: the Task's workspace ``name`` is the pipeline's ``workspace``."""

    name: str
    workspace: str
    sub_path: str = ""


@dataclass(frozen=True)
class PipelineTask:
    name: str
    task: TaskSpec
    run_after: tuple[str, ...] = ()
    params: tuple[tuple[str, Any], ...] = ()
    when: tuple[WhenExpression, ...] = ()
    retries: int = 0
    timeout: float | None = None  # seconds; None: not set (the PipelineRun's bound applies)
    workspaces: tuple[WorkspaceUse, ...] = ()
    on_error: str = "stopAndFail"  # stopAndFail | continue
    matrix: tuple[tuple[str, Any], ...] = ()  # matrix.params: one TaskRun per combination


@dataclass(frozen=True)
class PipelineSpec:
    name: str
    params: tuple[ParamSpec, ...] = ()
    workspaces: tuple[WorkspaceDecl, ...] = ()
    tasks: tuple[PipelineTask, ...] = ()
    finally_tasks: tuple[PipelineTask, ...] = ()
    results: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class WorkspaceBinding:
    """A PipelineRun's workspace: ``kind`` is the volume source, ``source`` its object."""

    name: str
    kind: str  # volumeClaimTemplate | emptyDir | configMap | secret | persistentVolumeClaim
    source: dict = field(default_factory=dict)
    sub_path: str = ""


@dataclass(frozen=True)
class Timeouts:
    """Seconds; 0 means no timeout (Tekton's "0"), None not set."""

    pipeline: float = DEFAULT_PIPELINE_TIMEOUT
    tasks: float | None = None
    finally_: float | None = None


@dataclass(frozen=True)
class PipelineRunSpec:
    name: str | None
    generate_name: str | None
    namespace: str
    pipeline: PipelineSpec
    params: tuple[tuple[str, Any], ...] = ()
    workspaces: tuple[WorkspaceBinding, ...] = ()
    timeouts: Timeouts = Timeouts()


@dataclass
class Manifests:
    """The objects of a folder of YAML, by kind and name (ConfigMap/Secret data as text)."""

    tasks: dict[str, dict] = field(default_factory=dict)
    pipelines: dict[str, dict] = field(default_factory=dict)
    pipeline_runs: list[dict] = field(default_factory=list)
    config_maps: dict[str, dict[str, str]] = field(default_factory=dict)
    secrets: dict[str, dict[str, str]] = field(default_factory=dict)


# --- reading ---------------------------------------------------------------------------------
def load_folder(folder: Path) -> Manifests:
    """Every object in ``folder/*.yaml`` (sorted by file name).

    Raises:
        ManifestError: a file that does not parse, or two objects of a kind with one name.
    """
    import yaml

    manifests = Manifests()
    for path in sorted(Path(folder).glob("*.yaml")):
        try:
            docs = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
        except (OSError, yaml.YAMLError) as exc:
            raise ManifestError(f"{path}: {exc}") from None
        for doc in docs:
            if isinstance(doc, dict):
                add_object(manifests, doc, path.name)
    return manifests


def add_object(manifests: Manifests, doc: dict, where: str) -> None:
    """File one Kubernetes object under its kind (other kinds are not the rehearsal's)."""
    kind, name = doc.get("kind"), (doc.get("metadata") or {}).get("name")
    if kind == "PipelineRun":
        manifests.pipeline_runs.append(doc)
        return
    if kind == "ConfigMap":
        data = {k: str(v) for k, v in (doc.get("data") or {}).items()}
        _file(manifests.config_maps, name, data, kind, where)
    elif kind == "Secret":
        _file(manifests.secrets, name, secret_data(doc), kind, where)
    elif kind in ("Task", "Pipeline") and doc.get("apiVersion") in API_VERSIONS:
        _file(manifests.tasks if kind == "Task" else manifests.pipelines, name, doc, kind, where)


def _file(index: dict, name: Any, value: Any, kind: str, where: str) -> None:
    if not isinstance(name, str) or not name:
        raise ManifestError(f"{where}: a {kind} without metadata.name")
    if name in index:
        raise ManifestError(f"{where}: two {kind}s named {name!r}")
    index[name] = value


def secret_data(doc: dict) -> dict[str, str]:
    """A Secret's data (base64) and stringData (plain, winning), as text."""
    import base64

    out = {}
    for key, value in (doc.get("data") or {}).items():
        out[key] = base64.b64decode(str(value)).decode("utf-8", "replace")
    out.update({k: str(v) for k, v in (doc.get("stringData") or {}).items()})
    return out


# --- durations -------------------------------------------------------------------------------
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: Any, where: str) -> float:
    """A Go duration (``1h0m0s``, ``90s``, ``1.5h``, ``0``) in seconds."""
    value = str(text).strip()
    if value in ("0", "+0", "-0"):
        return 0.0
    pos, total = 0, 0.0
    while pos < len(value):
        match = _DURATION_PART.match(value, pos)
        if match is None:
            raise ManifestError(f"{where}: {text!r} is not a duration (such as 1h30m or 90s)")
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if not value:
        raise ManifestError(f"{where}: an empty duration")
    return total


# --- the PipelineRun and what it references --------------------------------------------------
def pipeline_run(manifests: Manifests, name: str | None = None) -> PipelineRunSpec:
    """The PipelineRun to rehearse: the only one, or the one whose (generate)name is ``name``.

    Raises:
        ManifestError: none, several, or one that cannot be resolved.
    """
    runs = manifests.pipeline_runs
    if name is not None:
        runs = [r for r in runs if name in _names_of(r)]
    if len(runs) != 1:
        found = ", ".join(sorted(n for r in manifests.pipeline_runs for n in _names_of(r)))
        raise ManifestError(f"expected one PipelineRun, found {len(runs)}"
                            + (f" ({found})" if found else ""))
    return parse_pipeline_run(runs[0], manifests)


def _names_of(doc: dict) -> list[str]:
    meta = doc.get("metadata") or {}
    return [str(n) for n in (meta.get("name"), meta.get("generateName")) if n]


def parse_pipeline_run(doc: dict, manifests: Manifests) -> PipelineRunSpec:
    meta, spec = doc.get("metadata") or {}, doc.get("spec") or {}
    _refuse(spec, ("pipelineRef", "pipelineSpec", "params", "workspaces", "timeouts", "timeout",
                   "taskRunTemplate", "taskRunSpecs", "status"), "PipelineRun.spec")
    if spec.get("status"):
        raise ManifestError(f"PipelineRun.spec.status is {spec['status']!r}: it would not run")
    if spec.get("taskRunSpecs"):
        raise ManifestError("PipelineRun.spec.taskRunSpecs is not rehearsed")
    pipeline = _resolve_pipeline(spec, manifests)
    return PipelineRunSpec(
        name=meta.get("name"), generate_name=meta.get("generateName"),
        namespace=str(meta.get("namespace") or "default"), pipeline=pipeline,
        params=_param_values(spec.get("params"), "PipelineRun.spec.params"),
        workspaces=tuple(_binding(w, i) for i, w in enumerate(spec.get("workspaces") or [])),
        timeouts=_timeouts(spec))


def _resolve_pipeline(spec: dict, manifests: Manifests) -> PipelineSpec:
    if spec.get("pipelineSpec") is not None:
        return parse_pipeline("(inline pipelineSpec)", spec["pipelineSpec"], manifests)
    ref = spec.get("pipelineRef") or {}
    if "resolver" in ref or "bundle" in ref:
        raise ManifestError("PipelineRun.spec.pipelineRef uses a remote resolver, which the "
                            "rehearsal does not fetch")
    name = ref.get("name")
    if name not in manifests.pipelines:
        raise ManifestError(f"PipelineRun.spec.pipelineRef: no Pipeline named {name!r} "
                            "in the compiled files")
    doc = manifests.pipelines[name]
    return parse_pipeline(name, doc.get("spec") or {}, manifests)


def _timeouts(spec: dict) -> Timeouts:
    if "timeout" in spec:
        return Timeouts(pipeline=parse_duration(spec["timeout"], "PipelineRun.spec.timeout"))
    raw = spec.get("timeouts") or {}
    where = "PipelineRun.spec.timeouts"

    def read(key: str) -> float | None:
        return parse_duration(raw[key], f"{where}.{key}") if key in raw else None

    pipeline = read("pipeline")
    return Timeouts(pipeline=DEFAULT_PIPELINE_TIMEOUT if pipeline is None else pipeline,
                    tasks=read("tasks"), finally_=read("finally"))


_VOLUME_KINDS = ("volumeClaimTemplate", "emptyDir", "configMap", "secret",
                 "persistentVolumeClaim")


def _binding(raw: dict, i: int) -> WorkspaceBinding:
    where = f"PipelineRun.spec.workspaces[{i}]"
    _refuse(raw, ("name", "subPath", *_VOLUME_KINDS), where)
    kinds = [k for k in _VOLUME_KINDS if k in raw]
    if len(kinds) != 1 or not raw.get("name"):
        raise ManifestError(f"{where}: needs a name and one volume source ("
                            + ", ".join(_VOLUME_KINDS) + ")")
    return WorkspaceBinding(str(raw["name"]), kinds[0], dict(raw[kinds[0]] or {}),
                            str(raw.get("subPath") or ""))


def parse_pipeline(name: str, spec: dict, manifests: Manifests) -> PipelineSpec:
    where = f"Pipeline {name}"
    _refuse(spec, ("description", "displayName", "params", "workspaces", "tasks", "finally",
                   "results"), f"{where}.spec")
    tasks = tuple(_pipeline_task(t, manifests, f"{where}.spec.tasks[{i}]")
                  for i, t in enumerate(spec.get("tasks") or []))
    finals = tuple(_pipeline_task(t, manifests, f"{where}.spec.finally[{i}]")
                   for i, t in enumerate(spec.get("finally") or []))
    for task in finals:
        if task.run_after:
            raise ManifestError(f"{where}: finally task {task.name!r} has runAfter "
                                "(Tekton rejects it)")
    names = [t.name for t in tasks + finals]
    duplicate = sorted({n for n in names if names.count(n) > 1})
    if duplicate:
        raise ManifestError(f"{where}: two pipeline tasks named {duplicate[0]!r}")
    return PipelineSpec(
        name=name, params=_param_specs(spec.get("params"), f"{where}.spec.params"),
        workspaces=tuple(_workspace_decl(w, f"{where}.spec.workspaces")
                         for w in spec.get("workspaces") or []),
        tasks=tasks, finally_tasks=finals,
        results=tuple((str(r["name"]), r.get("value", "")) for r in spec.get("results") or []))


def _pipeline_task(raw: dict, manifests: Manifests, where: str) -> PipelineTask:
    _refuse(raw, ("name", "displayName", "description", "taskRef", "taskSpec", "runAfter",
                  "params", "when", "retries", "timeout", "workspaces", "onError", "matrix"),
            where)
    name = str(raw.get("name") or "")
    if not name:
        raise ManifestError(f"{where}: a pipeline task without a name")
    where = f"pipeline task {name}"
    on_error = str(raw.get("onError") or "stopAndFail")
    retries = int(raw.get("retries") or 0)
    if on_error not in ("stopAndFail", "continue") or (on_error == "continue" and retries):
        raise ManifestError(f"{where}: onError {on_error!r}"
                            + (" with retries (Tekton rejects it)" if retries else ""))
    return PipelineTask(
        name=name, task=_resolve_task(raw, manifests, where),
        run_after=tuple(str(t) for t in raw.get("runAfter") or []),
        params=_param_values(raw.get("params"), f"{where}.params"),
        when=tuple(_when(w, f"{where}.when[{i}]") for i, w in enumerate(raw.get("when") or [])),
        retries=retries,
        timeout=parse_duration(raw["timeout"], f"{where}.timeout") if "timeout" in raw else None,
        workspaces=tuple(WorkspaceUse(str(w["name"]), str(w.get("workspace") or w["name"]),
                                      str(w.get("subPath") or ""))
                         for w in raw.get("workspaces") or []),
        on_error=on_error, matrix=_matrix(raw.get("matrix"), f"{where}.matrix"))


def _matrix(raw: Any, where: str) -> tuple[tuple[str, Any], ...]:
    if raw is None:
        return ()
    _refuse(raw, ("params",), where)  # matrix.include is not rehearsed
    params = _param_values(raw.get("params"), f"{where}.params")
    if not params:
        raise ManifestError(f"{where}: a matrix without params")
    return params


def _resolve_task(raw: dict, manifests: Manifests, where: str) -> TaskSpec:
    if raw.get("taskSpec") is not None:
        spec = raw["taskSpec"]
        if spec.get("apiVersion") or spec.get("kind"):
            raise ManifestError(f"{where}: a custom task ({spec.get('kind')}) is not rehearsed")
        return parse_task(f"{raw['name']} (inline)", spec, embedded=True)
    ref = raw.get("taskRef") or {}
    if "resolver" in ref or "bundle" in ref:
        raise ManifestError(f"{where}: taskRef uses a remote resolver, which the rehearsal "
                            "does not fetch")
    if ref.get("kind", "Task") != "Task" or ref.get("apiVersion"):
        raise ManifestError(f"{where}: taskRef kind {ref.get('kind')!r} is not rehearsed "
                            "(only namespaced Tasks)")
    name = ref.get("name")
    if name not in manifests.tasks:
        raise ManifestError(f"{where}: no Task named {name!r} in the compiled files")
    return parse_task(str(name), manifests.tasks[name].get("spec") or {})


def parse_task(name: str, spec: dict, embedded: bool = False) -> TaskSpec:
    where = f"Task {name}"
    _refuse(spec, ("description", "displayName", "params", "workspaces", "results", "steps",
                   "stepTemplate", "volumes", "sidecars", "metadata"), f"{where}.spec")
    if spec.get("sidecars"):
        raise ManifestError(f"{where}: sidecars are not rehearsed")
    steps = tuple(dict(s) for s in spec.get("steps") or [])
    if not steps:
        raise ManifestError(f"{where}: no steps")
    step_names = [str(s.get("name") or f"unnamed-{i}") for i, s in enumerate(steps)]
    if len(set(step_names)) != len(step_names):
        raise ManifestError(f"{where}: two steps with one name")
    return TaskSpec(
        name=name, params=_param_specs(spec.get("params"), f"{where}.spec.params"),
        workspaces=tuple(_workspace_decl(w, f"{where}.spec.workspaces")
                         for w in spec.get("workspaces") or []),
        results=tuple(ResultDecl(str(r["name"]), str(r.get("type") or "string"))
                      for r in spec.get("results") or []),
        steps=steps, step_template=spec.get("stepTemplate"),
        volumes=tuple(spec.get("volumes") or []), embedded=embedded)


def step_name(step: dict, index: int) -> str:
    """Tekton's name of a step: its name, else ``unnamed-<index>``."""
    return str(step.get("name") or f"unnamed-{index}")


def _param_specs(raw: Any, where: str) -> tuple[ParamSpec, ...]:
    out = []
    for item in raw or []:
        kind = str(item.get("type") or "string")
        if kind not in ("string", "array", "object"):
            raise ManifestError(f"{where}: param {item.get('name')!r} has type {kind!r}")
        out.append(ParamSpec(str(item["name"]), kind, item.get("default", NO_DEFAULT)))
    return tuple(out)


def _param_values(raw: Any, where: str) -> tuple[tuple[str, Any], ...]:
    out = []
    for item in raw or []:
        if "name" not in item:
            raise ManifestError(f"{where}: a param without a name")
        out.append((str(item["name"]), item.get("value", "")))
    return tuple(out)


def _workspace_decl(raw: dict, where: str) -> WorkspaceDecl:
    if not raw.get("name"):
        raise ManifestError(f"{where}: a workspace without a name")
    return WorkspaceDecl(str(raw["name"]), raw.get("mountPath"), bool(raw.get("readOnly")),
                         bool(raw.get("optional")))


def _when(raw: dict, where: str) -> WhenExpression:
    if "cel" in raw:
        raise ManifestError(f"{where}: CEL when expressions are not rehearsed")
    operator = str(raw.get("operator") or "")
    values = raw.get("values")
    if operator not in ("in", "notin") or not isinstance(values, list) or not values:
        raise ManifestError(f"{where}: needs operator in|notin and a non-empty values list")
    return WhenExpression(str(raw.get("input", "")), operator, tuple(str(v) for v in values))


def _refuse(raw: dict, known: tuple[str, ...], where: str) -> None:
    """A field the rehearsal does not know would be silently ignored: refuse it instead."""
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise ManifestError(f"{where}: {', '.join(unknown)} not rehearsed")
