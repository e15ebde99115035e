"""One TaskRun: its pod as a fresh folder, its steps as processes, its results as files.

An attempt (Tekton's pod; a retry is a new one) is the folder
``<taskrun>/<taskrun>-pod[-retryN]/``::

    workspace/<name>     the Task's workspaces (links to the PipelineRun's workspace folders),
                         Tekton's /workspace; the default workingDir of a step
    tekton/results/<r>   $(results.r.path); read after the steps, size-checked
    tekton/steps/step-<name>/exitCode
    tekton/scripts/      the steps' scripts
    volumes/<name>/      the Task's volumes (emptyDir, configMap, secret)
    steps/<name>/        one per step (its container): home/, tmp/ (HOME and TMPDIR, and the
                         container's /tmp), root/ (any other path it names), log

Container paths map into it: ``/workspace`` and ``/tekton`` to the pod's folders, ``/tmp`` to
the step's own ``tmp/`` (containers share no /tmp), a workspace's ``mountPath`` and a
``volumeMount``'s to their folders.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlspec.commands.rehearsal import container as ctr
from mlspec.commands.rehearsal.sources import Sources
from mlspec.commands.rehearsal.substitute import (
    Scope,
    SubstitutionError,
    substitute,
    substitute_array,
)
from mlspec.commands.rehearsal.tekton import (
    NO_DEFAULT,
    ManifestError,
    TaskSpec,
    parse_duration,
    step_name,
)

# Tekton writes a step's results into its termination message, at most 4096 bytes.
MAX_RESULT_BYTES = 4096
STEP_FIELDS = frozenset({"script", "timeout", "onError"})


@dataclass
class TaskRunRequest:
    """What a TaskRun of a pipeline task gets: names, values, where its workspaces are."""

    name: str
    pipeline_task: str
    pipeline_run: str
    namespace: str
    task: TaskSpec
    params: Mapping[str, Any]
    workspaces: Mapping[str, Path | None]  # the Task's workspace -> its folder (None: unbound)
    folder: Path  # <PipelineRun folder>/taskruns/<name>
    rehearsal: Path  # the PipelineRun's folder: every local path lies under it
    python_bin: Path
    sources: Sources
    pipeline_params: Mapping[str, Any] = field(default_factory=dict)
    retries: int = 0


@dataclass
class StepOutcome:
    name: str
    reason: str  # Completed | Error | TimedOut | Cancelled | Skipped
    exit_code: int | None
    seconds: float
    log: Path
    message: str = ""


@dataclass
class Attempt:
    """One pod of a TaskRun: status Succeeded, Failed, TimedOut or Cancelled."""

    pod: str
    folder: Path
    status: str
    message: str
    steps: list[StepOutcome]
    results: dict[str, Any]
    seconds: float


# --- the scope of a TaskRun ------------------------------------------------------------------
def param_values(task: TaskSpec, given: Mapping[str, Any],
                 pipeline_params: Mapping[str, Any]) -> dict[str, Any]:
    """The Task's params: given, else default; an inline Task also sees the pipeline's.

    Raises:
        ManifestError: a param with neither value nor default, or of the wrong type.
    """
    values: dict[str, Any] = dict(pipeline_params) if task.embedded else {}
    for spec in task.params:
        if spec.name in given:
            value = given[spec.name]
        elif spec.default is not NO_DEFAULT:
            value = spec.default
        else:
            raise ManifestError(f"Task {task.name}: param {spec.name!r} has no value and no "
                                "default")
        expected = {"string": str, "array": list, "object": dict}[spec.type]
        if spec.type == "string" and isinstance(value, (int, float, bool)):
            value = str(value)
        if not isinstance(value, expected):
            raise ManifestError(f"Task {task.name}: param {spec.name!r} should be "
                                f"{spec.type}, got {type(value).__name__}")
        values[spec.name] = value
    return values


def task_scope(req: TaskRunRequest, pod: Path, retry: int, params: Mapping[str, Any]) -> Scope:
    """What ``$(…)`` means inside this TaskRun's steps (local paths of this attempt)."""
    scope = Scope()
    for name, value in params.items():
        scope.set("params", name, value=value)
    for decl in req.task.workspaces:
        bound = req.workspaces.get(decl.name) is not None
        scope.set("workspaces", decl.name, "path",
                  value=str(workspace_path(pod, decl.name)) if bound else "")
        scope.set("workspaces", decl.name, "bound", value="true" if bound else "false")
        scope.set("workspaces", decl.name, "claim", value="")
        scope.set("workspaces", decl.name, "volume", value=decl.name)
    for result in req.task.results:
        scope.set("results", result.name, "path", value=str(pod / "tekton" / "results"
                                                             / result.name))
    for i, step in enumerate(req.task.steps):
        name = step_name(step, i)
        scope.set("steps", f"step-{name}", "exitCode", "path",
                  value=str(pod / "tekton" / "steps" / f"step-{name}" / "exitCode"))
    scope.set("context", "taskRun", "name", value=req.name)
    scope.set("context", "taskRun", "namespace", value=req.namespace)
    scope.set("context", "taskRun", "uid", value=_uid(req.name))
    scope.set("context", "task", "name", value=req.task.name)
    scope.set("context", "task", "retry-count", value=str(retry))
    scope.set("credentials", "path", value=str(pod / "tekton" / "creds"))
    return scope


def workspace_path(pod: Path, name: str) -> Path:
    return pod / "workspace" / name


def _uid(name: str) -> str:
    import uuid

    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"mlspec-rehearsal:{name}"))


# --- steps -----------------------------------------------------------------------------------
def merge_template(template: Mapping[str, Any] | None, step: Mapping[str, Any]) -> dict:
    """A step over its Task's ``stepTemplate``: the step's fields win; ``env`` merges by name."""
    if not template:
        return dict(step)
    merged = {**template, **step}
    if "env" in template or "env" in step:
        names = {e.get("name") for e in step.get("env") or []}
        merged["env"] = [e for e in template.get("env") or [] if e.get("name") not in names] \
            + list(step.get("env") or [])
    if "envFrom" in template and "envFrom" in step:
        merged["envFrom"] = list(template["envFrom"]) + list(step["envFrom"])
    return merged


def substitute_step(step: Mapping[str, Any], scope: Scope, where: str) -> dict:
    """The fields Tekton substitutes in a step, substituted (see ``docs/rehearsal.md``).

    Raises:
        SubstitutionError: an unknown reference.
    """
    out = dict(step)
    for key in ("command", "args"):
        if key in out:
            out[key] = substitute_array(out[key] or [], scope, f"{where}.{key}")
    for key in ("image", "script", "workingDir"):
        if out.get(key) is not None:
            out[key] = substitute(str(out[key]), scope, f"{where}.{key}")
    env = []
    for i, item in enumerate(out.get("env") or []):
        item = dict(item)
        label = f"{where}.env[{i}]"
        if "value" in item:
            item["value"] = substitute(str(item["value"]), scope, label)
        for ref_kind in ("secretKeyRef", "configMapKeyRef"):
            ref = (item.get("valueFrom") or {}).get(ref_kind)
            if ref:
                ref = {k: substitute(str(v), scope, label) if k in ("name", "key") else v
                       for k, v in ref.items()}
                item["valueFrom"] = dict(item["valueFrom"], **{ref_kind: ref})
        env.append(item)
    if "env" in out:
        out["env"] = env
    env_from = []
    for i, source in enumerate(out.get("envFrom") or []):
        source = dict(source)
        for ref_kind in ("secretRef", "configMapRef"):
            if source.get(ref_kind):
                ref = dict(source[ref_kind])
                ref["name"] = substitute(str(ref.get("name")), scope, f"{where}.envFrom[{i}]")
                source[ref_kind] = ref
        env_from.append(source)
    if "envFrom" in out:
        out["envFrom"] = env_from
    mounts = []
    for i, mount in enumerate(out.get("volumeMounts") or []):
        mount = dict(mount)
        for key in ("mountPath", "subPath"):
            if key in mount:
                mount[key] = substitute(str(mount[key]), scope, f"{where}.volumeMounts[{i}]")
        mounts.append(mount)
    if "volumeMounts" in out:
        out["volumeMounts"] = mounts
    return out


def check_task(task: TaskSpec, pipeline_params: Mapping[str, Any] | None = None) -> None:
    """Tekton's validation of a Task's references, before anything runs.

    Raises:
        ManifestError: a step references a param, workspace, result or context variable the
            Task does not declare, or has a field the rehearsal does not run.
    """
    placeholder = Path("/rehearsal-check")
    values = {p.name: {"string": "", "array": [], "object": {}}[p.type] for p in task.params}
    if task.embedded:
        values = {**dict(pipeline_params or {}), **values}
    req = TaskRunRequest(name="check", pipeline_task="check", pipeline_run="check",
                         namespace="check", task=task, params={},
                         workspaces={w.name: placeholder for w in task.workspaces},
                         folder=placeholder, rehearsal=placeholder, python_bin=placeholder,
                         sources=Sources())
    scope = task_scope(req, placeholder, 0, values)
    for i, step in enumerate(task.steps):
        where = f"Task {task.name} step {step_name(step, i)}"
        merged = merge_template(task.step_template, step)
        try:
            ctr.check_fields(merged, where, STEP_FIELDS)
            substitute_step(merged, scope, where)
        except (SubstitutionError, ctr.ContainerError) as exc:
            raise ManifestError(str(exc)) from None
        if merged.get("script") and merged.get("command"):
            raise ManifestError(f"{where}: script and command together (Tekton rejects it)")
        if merged.get("onError", "stopAndFail") not in ("continue", "stopAndFail"):
            raise ManifestError(f"{where}: onError {merged.get('onError')!r}")
        if "timeout" in merged:
            parse_duration(merged["timeout"], f"{where}.timeout")


# --- one attempt -----------------------------------------------------------------------------
def pod_name(taskrun: str, retry: int) -> str:
    return f"{taskrun}-pod" + (f"-retry{retry}" if retry else "")


def run_attempt(req: TaskRunRequest, retry: int, deadline: float | None,
                cancel: threading.Event) -> Attempt:
    """Run the Task's steps once, in a fresh pod folder; ``deadline`` is a monotonic time."""
    started = time.monotonic()
    pod = pod_name(req.name, retry)
    folder = req.folder / pod
    steps: list[StepOutcome] = []
    try:
        params = param_values(req.task, req.params, req.pipeline_params)
        _make_pod(req, folder)
        volumes = _volumes(req, folder)
        scope = task_scope(req, folder, retry, params)
    except (ManifestError, ctr.ContainerError, OSError) as exc:
        return Attempt(pod, folder, "Failed", str(exc), steps, {}, time.monotonic() - started)
    status, message = "Succeeded", ""
    for i, raw in enumerate(req.task.steps):
        name = step_name(raw, i)
        if status != "Succeeded":
            steps.append(StepOutcome(name, "Skipped", None, 0.0, folder / "steps" / name / "log"))
            continue
        outcome = _run_step(req, folder, name, raw, scope, volumes, params, deadline, cancel)
        steps.append(outcome)
        if outcome.reason == "Completed":
            continue
        on_error = merge_template(req.task.step_template, raw).get("onError", "stopAndFail")
        if outcome.reason == "Error" and on_error == "continue":
            continue
        status, message = _failure(outcome, deadline, cancel)
    results, result_error = read_results(req.task, folder)
    if result_error and status == "Succeeded":
        status, message = "Failed", result_error
    return Attempt(pod, folder, status, message, steps, results, time.monotonic() - started)


def _failure(outcome: StepOutcome, deadline: float | None,
             cancel: threading.Event) -> tuple[str, str]:
    if outcome.reason == "Cancelled" or cancel.is_set():
        return "Cancelled", f"step {outcome.name} was stopped: the TaskRun was cancelled"
    if outcome.reason == "TimedOut" and deadline is not None and time.monotonic() >= deadline:
        return "TimedOut", f"step {outcome.name} was stopped: the TaskRun timed out"
    detail = outcome.message or f"exited with code {outcome.exit_code}"
    return "Failed", f"step {outcome.name} {detail}"


def _make_pod(req: TaskRunRequest, folder: Path) -> None:
    for sub in ("workspace", "tekton/results", "tekton/steps", "tekton/scripts", "tekton/creds"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for decl in req.task.workspaces:
        target = req.workspaces.get(decl.name)
        if target is None:
            if not decl.optional:
                raise ManifestError(f"Task {req.task.name}: workspace {decl.name!r} is not "
                                    "bound and not optional")
            continue
        target.mkdir(parents=True, exist_ok=True)
        workspace_path(folder, decl.name).symlink_to(target.resolve(), target_is_directory=True)


def _volumes(req: TaskRunRequest, folder: Path) -> dict[str, Path]:
    out = {}
    for i, volume in enumerate(req.task.volumes):
        name = str(volume.get("name"))
        out[name] = ctr.volume_folder(volume, folder / "volumes" / name, req.sources,
                                      f"Task {req.task.name} volumes[{i}]")
    return out


def _path_map(req: TaskRunRequest, pod: Path, step_folder: Path) -> ctr.PathMap:
    paths = ctr.PathMap()
    paths.add("/workspace", pod / "workspace")
    paths.add("/tekton", pod / "tekton")
    paths.add("/tmp", step_folder / "tmp")
    for decl in req.task.workspaces:
        if decl.mount_path and req.workspaces.get(decl.name) is not None:
            paths.add(decl.mount_path, workspace_path(pod, decl.name))
    return paths


def _run_step(req: TaskRunRequest, pod: Path, name: str, raw: Mapping[str, Any], scope: Scope,
              volumes: Mapping[str, Path], params: Mapping[str, Any], deadline: float | None,
              cancel: threading.Event) -> StepOutcome:
    where = f"Task {req.task.name} step {name}"
    step_folder = pod / "steps" / name
    log = step_folder / "log"
    for sub in ("home", "tmp", "root"):
        (step_folder / sub).mkdir(parents=True, exist_ok=True)
    try:
        paths = _path_map(req, pod, step_folder)
        ctr.mount_volumes(raw, volumes, paths, where)
        spec, timeout = _process(req, pod, step_folder, name, raw, scope, paths, params, where)
    except (ctr.ContainerError, SubstitutionError, ManifestError) as exc:
        log.write_text(f"error: {exc}\n", encoding="utf-8")
        return StepOutcome(name, "Error", None, 0.0, log, f"could not start: {exc}")
    if deadline is not None:
        left = max(0.0, deadline - time.monotonic())
        timeout = left if timeout is None else min(timeout, left)
    exit = ctr.run(spec, log, timeout=timeout, cancel=cancel)
    code_file = pod / "tekton" / "steps" / f"step-{name}" / "exitCode"
    code_file.parent.mkdir(parents=True, exist_ok=True)
    code_file.write_text(str(exit.code if exit.code is not None else 1), encoding="utf-8")
    message = "timed out" if exit.reason == "TimedOut" else ""
    return StepOutcome(name, exit.reason, exit.code, exit.seconds, log, message)


def _process(req: TaskRunRequest, pod: Path, step_folder: Path, name: str,
             raw: Mapping[str, Any], scope: Scope, paths: ctr.PathMap,
             params: Mapping[str, Any], where: str) -> tuple[ctr.ProcessSpec, float | None]:
    # Param values are container-side text: their literal paths map like the YAML's own.
    step_scope = scope.child({("params", k): _map_value(v, paths) for k, v in params.items()})
    merged = ctr.map_literals(merge_template(req.task.step_template, raw), paths)
    step = substitute_step(merged, step_scope, where)
    ctr.check_fields(step, where, STEP_FIELDS)
    fields = {"metadata.name": pod.name, "metadata.namespace": req.namespace,
              "metadata.uid": _uid(pod.name), "spec.serviceAccountName": "default"}
    declared = ctr.declared_env(step, req.sources, where, fields)
    env = ctr.environment(declared, req.python_bin, step_folder / "home", step_folder / "tmp")
    args = [str(a) for a in step.get("args") or []]
    if step.get("script"):
        script = ctr.write_script(str(step["script"]), pod / "tekton" / "scripts", name)
        argv = (str(script), *(ctr.expand(a, declared) for a in args))
    else:
        argv = ctr.argv([str(c) for c in step.get("command") or []], args, declared,
                        env["PATH"], where)
    cwd = ctr.working_dir(step.get("workingDir"), step_folder / "root", pod / "workspace",
                          req.rehearsal)
    timeout = parse_duration(step["timeout"], f"{where}.timeout") if "timeout" in step else None
    return ctr.ProcessSpec(argv, env, cwd), (timeout or None)


def _map_value(value: Any, paths: ctr.PathMap) -> Any:
    if isinstance(value, str):
        return paths.literal(value)
    if isinstance(value, list):
        return [paths.literal(str(v)) for v in value]
    return value


# --- results ---------------------------------------------------------------------------------
def read_results(task: TaskSpec, pod: Path) -> tuple[dict[str, Any], str]:
    """The declared results the steps wrote, verbatim (Tekton does not trim them), and an
    error when they exceed the termination message's 4096 bytes."""
    results: dict[str, Any] = {}
    message = []
    for decl in task.results:
        path = pod / "tekton" / "results" / decl.name
        try:
            text = path.read_bytes().decode("utf-8", "replace")
        except OSError:
            continue
        value: Any = text
        if decl.type in ("array", "object"):
            try:
                value = json.loads(text)
            except ValueError:
                return results, f"result {decl.name!r} is not a JSON {decl.type}"
        results[decl.name] = value
        message.append({"key": decl.name, "value": text, "type": 1})
    size = len(json.dumps(message, separators=(",", ":")).encode("utf-8"))
    if size > MAX_RESULT_BYTES:
        return results, (f"the results take {size} bytes in the termination message, above "
                         f"Tekton's limit of {MAX_RESULT_BYTES}")
    return results, ""
