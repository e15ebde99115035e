"""A PipelineRun, scheduled as Tekton's controller schedules it.

* A pipeline task starts when every task it depends on is done: ``runAfter``, and the tasks
  whose results its params or ``when`` expressions use. Independent tasks run at once.
* Before it starts, in Tekton's order, it is skipped when the PipelineRun is stopping (a task
  failed) or its timeouts are reached; when a parent was skipped for any reason but its
  ``when`` expressions ("Parent Tasks were skipped"); when a result it uses is missing because
  its producer was skipped ("Results were missing"); when its ``when`` expressions are false.
  A ``when`` guards the task only: tasks ordered after it by ``runAfter`` still run. A result
  missing from a producer that succeeded fails the PipelineRun (InvalidTaskResultReference).
* A failed TaskRun is retried ``retries`` times, each try a fresh pod folder; a task's
  ``timeout`` bounds each try. ``onError: continue`` lets the run go on after its failure.
* ``timeouts.pipeline`` cancels everything (finally tasks included); ``timeouts.tasks`` cancels
  the tasks, then the finally tasks run, bounded by ``timeouts.finally``.
* ``finally`` tasks run after the tasks, whatever their outcome, and see
  ``$(tasks.T.status)`` and ``$(tasks.status)``. The Pipeline's results are resolved at the end;
  one whose task result is missing is left out, as Tekton leaves it out.
"""

from __future__ import annotations

import queue
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlspec.commands.rehearsal import container as ctr
from mlspec.commands.rehearsal import matrix
from mlspec.commands.rehearsal.sources import SourceError, Sources
from mlspec.commands.rehearsal.substitute import (
    Scope,
    SubstitutionError,
    referenced_texts,
    substitute,
    substitute_array,
    substitute_value,
    task_result_references,
)
from mlspec.commands.rehearsal.taskrun import Attempt, TaskRunRequest, check_task, run_attempt
from mlspec.commands.rehearsal.tekton import (
    NO_DEFAULT,
    ManifestError,
    PipelineRunSpec,
    PipelineTask,
    WorkspaceBinding,
)

WHEN_SKIP = "When Expressions evaluated to false"
PARENT_SKIP = "Parent Tasks were skipped"
RESULTS_SKIP = "Results were missing"
STOPPING_SKIP = "PipelineRun was stopping"
PIPELINE_TIMEOUT_SKIP = "PipelineRun timeout has been reached"
TASKS_TIMEOUT_SKIP = "PipelineRun Tasks timeout has been reached"
FINALLY_TIMEOUT_SKIP = "PipelineRun Finally timeout has been reached"
# Kubernetes' generateName suffix: five characters of this alphabet.
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


@dataclass
class TaskState:
    """One pipeline task in the run: status pending, running, succeeded, failed, timedout,
    cancelled or skipped; ``reason`` says why it was skipped or how it failed."""

    name: str
    is_finally: bool = False
    status: str = "pending"
    reason: str = ""
    taskrun: str = ""
    attempts: list[Attempt] = field(default_factory=list)
    results: dict[str, Any] = field(default_factory=dict)
    started: float | None = None
    seconds: float | None = None
    ignored: bool = False  # a failure that onError: continue ignores
    matrix_results: dict[str, Any] | None = None  # a matrix task's results, as arrays

    @property
    def done(self) -> bool:
        return self.status not in ("pending", "running")

    @property
    def failed(self) -> bool:
        return self.status in ("failed", "timedout", "cancelled")


@dataclass(frozen=True)
class Event:
    """What the progress display hears: started, retrying, finished or skipped."""

    kind: str
    task: TaskState
    attempt: Attempt | None = None


@dataclass
class RunOutcome:
    name: str
    folder: Path
    status: str  # Succeeded | Completed | Failed | PipelineRunTimeout
    message: str
    tasks: dict[str, TaskState]
    results: dict[str, Any]
    workspaces: dict[str, Path]
    seconds: float

    @property
    def succeeded(self) -> bool:
        return self.status in ("Succeeded", "Completed")


# --- validation ------------------------------------------------------------------------------
def pipeline_params(pr: PipelineRunSpec) -> dict[str, Any]:
    """The Pipeline's params: the PipelineRun's values, else the defaults.

    Raises:
        ManifestError: a param with neither (Tekton's ParameterMissing).
    """
    given = dict(pr.params)
    values = {}
    for spec in pr.pipeline.params:
        if spec.name in given:
            values[spec.name] = given[spec.name]
        elif spec.default is not NO_DEFAULT:
            values[spec.name] = spec.default
        else:
            raise ManifestError(f"PipelineRun: missing parameter {spec.name!r} of Pipeline "
                                f"{pr.pipeline.name}")
    return values


def check_pipeline_run(pr: PipelineRunSpec) -> None:
    """What Tekton's admission and the controller's first look reject, before anything runs.

    Raises:
        ManifestError: unknown tasks in runAfter, a cycle, unknown references, missing
            workspaces or params.
    """
    pipeline = pr.pipeline
    params = pipeline_params(pr)
    dag = {t.name: t for t in pipeline.tasks}
    bound = {w.name for w in pr.workspaces}
    for decl in pipeline.workspaces:
        if decl.name not in bound and not decl.optional:
            raise ManifestError(f"PipelineRun: workspace {decl.name!r} of Pipeline "
                                f"{pipeline.name} is not bound")
    for task in pipeline.tasks + pipeline.finally_tasks:
        check_task(task.task, params)
        given = {name for name, _ in (*task.params, *task.matrix)}
        for spec in task.task.params:
            if spec.name not in given and spec.default is NO_DEFAULT:
                raise ManifestError(f"pipeline task {task.name}: the Task's param "
                                    f"{spec.name!r} has no value and no default")
        _check_workspaces(task, {w.name for w in pipeline.workspaces})
        for after in task.run_after:
            if after not in dag:
                raise ManifestError(f"pipeline task {task.name}: runAfter {after!r} is no task")
        scope = _static_scope(pr, params, task)
        for text in _pipeline_texts(task):
            try:
                substitute_array([text], scope, f"pipeline task {task.name}")
            except SubstitutionError as exc:
                raise ManifestError(str(exc)) from None
    _check_acyclic(pipeline.tasks)
    scope = _static_scope(pr, params, None)
    for name, value in pipeline.results:
        for text in referenced_texts(value):
            try:
                substitute_array([text], scope, f"Pipeline result {name}")
            except SubstitutionError as exc:
                raise ManifestError(str(exc)) from None


def _check_workspaces(task: PipelineTask, pipeline_workspaces: set[str]) -> None:
    given = {}
    for use in task.workspaces:
        if use.workspace not in pipeline_workspaces:
            raise ManifestError(f"pipeline task {task.name}: workspace {use.workspace!r} is "
                                "not a workspace of the Pipeline")
        given[use.name] = use
    for decl in task.task.workspaces:
        if decl.name not in given and not decl.optional:
            raise ManifestError(f"pipeline task {task.name}: the Task's workspace "
                                f"{decl.name!r} is not bound")


def _check_acyclic(tasks: tuple[PipelineTask, ...]) -> None:
    parents = {t.name: dependencies(t) for t in tasks}
    state: dict[str, int] = {}

    def visit(name: str, path: tuple[str, ...]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            raise ManifestError(f"Pipeline: a cycle: {' -> '.join(path + (name,))}")
        state[name] = 1
        for parent in sorted(parents.get(name, ())):
            visit(parent, path + (name,))
        state[name] = 2

    for name in parents:
        visit(name, ())


def _pipeline_texts(task: PipelineTask) -> list[str]:
    texts = [t for _, value in (*task.params, *task.matrix) for t in referenced_texts(value)]
    for when in task.when:
        texts.append(when.input)
        texts.extend(when.values)
    return texts


def dependencies(task: PipelineTask) -> set[str]:
    """The tasks a pipeline task waits for: runAfter and the producers of results it uses."""
    found = set(task.run_after)
    for text in _pipeline_texts(task):
        found.update(t for t, _ in task_result_references(text))
    return found


def _static_scope(pr: PipelineRunSpec, params: Mapping[str, Any],
                  task: PipelineTask | None) -> Scope:
    scope = _base_scope(pr, params, "check")
    for other in pr.pipeline.tasks:
        for result in other.task.results:
            scope.set("tasks", other.name, "results", result.name,
                      value=[] if result.type == "array" else
                      {} if result.type == "object" else "")
    if task is not None:
        scope.set("context", "pipelineTask", "retries", value=str(task.retries))
    if task is not None and task in pr.pipeline.finally_tasks:
        for other in pr.pipeline.tasks:
            scope.set("tasks", other.name, "status", value="None")
        scope.set("tasks", "status", value="None")
    return scope


def _base_scope(pr: PipelineRunSpec, params: Mapping[str, Any], name: str) -> Scope:
    scope = Scope()
    for key, value in params.items():
        scope.set("params", key, value=value)
    scope.set("context", "pipelineRun", "name", value=name)
    scope.set("context", "pipelineRun", "namespace", value=pr.namespace)
    scope.set("context", "pipelineRun", "uid", value=f"rehearsal-{name}")
    scope.set("context", "pipeline", "name", value=pr.pipeline.name)
    bound = {w.name for w in pr.workspaces}
    for decl in pr.pipeline.workspaces:
        scope.set("workspaces", decl.name, "bound", value="true" if decl.name in bound
                  else "false")
    return scope


def run_name(pr: PipelineRunSpec, rng: random.Random | None = None) -> str:
    """``metadata.name``, or ``generateName`` plus five random characters, as Kubernetes does."""
    if pr.name:
        return pr.name
    rng = rng or random.SystemRandom()
    return (pr.generate_name or "run-") + "".join(rng.choice(_NAME_ALPHABET) for _ in range(5))


# --- workspaces ------------------------------------------------------------------------------
def make_workspaces(pr: PipelineRunSpec, folder: Path, claims: Path,
                    sources: Sources) -> dict[str, Path]:
    """One folder per PipelineRun workspace: a fresh one for volumeClaimTemplate and
    emptyDir, read-only data for configMap and secret, ``claims/<claimName>`` (kept across
    runs) for persistentVolumeClaim.

    Raises:
        ManifestError: a ConfigMap or Secret that is not there.
    """
    out = {}
    for binding in pr.workspaces:
        path = _workspace(binding, folder / "workspaces" / binding.name, claims, sources)
        out[binding.name] = path / binding.sub_path if binding.sub_path else path
        out[binding.name].mkdir(parents=True, exist_ok=True)
    return out


def _workspace(binding: WorkspaceBinding, path: Path, claims: Path, sources: Sources) -> Path:
    where = f"PipelineRun workspace {binding.name}"
    try:
        if binding.kind in ("volumeClaimTemplate", "emptyDir"):
            path.mkdir(parents=True, exist_ok=True)
            return path
        if binding.kind == "persistentVolumeClaim":
            return claims / str(binding.source.get("claimName"))
        if binding.kind == "configMap":
            data = sources.config_map(str(binding.source.get("name")), where)
        else:
            data = sources.secret(str(binding.source.get("secretName")), where)
        ctr.write_data(path, data or {}, binding.source.get("items"), where)
    except (SourceError, ctr.ContainerError) as exc:
        raise ManifestError(str(exc)) from None
    return path


# --- the run ---------------------------------------------------------------------------------
class _Run:
    """The scheduler of one PipelineRun (see the module doc)."""

    def __init__(self, pr: PipelineRunSpec, folder: Path, name: str, sources: Sources,
                 python_bin: Path, on_event: Callable[[Event], None]):
        self.pr, self.folder, self.name = pr, folder, name
        self.sources, self.python_bin, self.on_event = sources, python_bin, on_event
        self.params = pipeline_params(pr)
        self.tasks = {t.name: t for t in pr.pipeline.tasks + pr.pipeline.finally_tasks}
        self.states = {t.name: TaskState(t.name, t in pr.pipeline.finally_tasks)
                       for t in self.tasks.values()}
        self.events: queue.Queue[Event] = queue.Queue()
        self.cancel = threading.Event()
        self.stopping = ""  # the skip reason once the run stops starting tasks
        self.workspaces: dict[str, Path] = {}
        self.timed_out = ""

    # The loop: start what is ready, wait for events, enforce the PipelineRun's timeouts.
    def run(self) -> RunOutcome:
        started = time.monotonic()
        timeouts = self.pr.timeouts
        pipeline_deadline = started + timeouts.pipeline if timeouts.pipeline else None
        tasks_limit = timeouts.tasks
        if tasks_limit is None and timeouts.finally_ and timeouts.pipeline:
            tasks_limit = timeouts.pipeline - timeouts.finally_
        self.workspaces = make_workspaces(self.pr, self.folder, self.folder.parent / "claims",
                                          self.sources)
        dag = list(self.pr.pipeline.tasks)
        self._loop(dag, pipeline_deadline, started + tasks_limit if tasks_limit else None)
        if self.timed_out != "pipeline":
            finally_start = time.monotonic()
            deadline = finally_start + timeouts.finally_ if timeouts.finally_ else None
            self.stopping = ""
            self._loop(list(self.pr.pipeline.finally_tasks), pipeline_deadline, deadline)
        else:
            for task in self.pr.pipeline.finally_tasks:
                self._skip(self.states[task.name], PIPELINE_TIMEOUT_SKIP)
        return self._outcome(time.monotonic() - started)

    def _loop(self, tasks: list[PipelineTask], pipeline_deadline: float | None,
              section_deadline: float | None) -> None:
        running = 0
        self.cancel = threading.Event()
        while True:
            self._check_deadlines(tasks, pipeline_deadline, section_deadline)
            for task in tasks:
                state = self.states[task.name]
                if state.status == "pending" and self._ready(task):
                    running += self._decide(task, state)
            if running == 0 and all(self.states[t.name].done for t in tasks):
                return
            try:
                event = self.events.get(timeout=0.1)
            except queue.Empty:
                continue
            if event.kind == "finished":
                running -= 1
                self._finished(self.tasks[event.task.name], event.task)
            self.on_event(event)

    def _check_deadlines(self, tasks: list[PipelineTask], pipeline: float | None,
                         section: float | None) -> None:
        """At a deadline: cancel what runs (no more retries), skip what has not started."""
        if self.cancel.is_set():
            return
        now = time.monotonic()
        if pipeline is not None and now >= pipeline:
            self.timed_out, self.stopping = "pipeline", PIPELINE_TIMEOUT_SKIP
        elif section is not None and now >= section:
            final = bool(tasks) and self.states[tasks[0].name].is_finally
            self.timed_out = "finally" if final else "tasks"
            self.stopping = FINALLY_TIMEOUT_SKIP if final else TASKS_TIMEOUT_SKIP
        else:
            return
        self.cancel.set()

    def _ready(self, task: PipelineTask) -> bool:
        return all(self.states[p].done for p in dependencies(task) if p in self.states)

    def _decide(self, task: PipelineTask, state: TaskState) -> int:
        """Skip the task, fail the run, or start it; returns 1 when it started."""
        if self.stopping:
            return self._skip(state, self.stopping)
        parents = [self.states[p] for p in sorted(dependencies(task)) if p in self.states]
        if any(p.status == "skipped" and p.reason != WHEN_SKIP for p in parents):
            return self._skip(state, PARENT_SKIP)
        missing = self._missing_results(task)
        if missing:
            producer, result = missing
            if self.states[producer].status == "skipped" or task.on_error == "continue" \
                    or self.states[producer].failed:
                return self._skip(state, RESULTS_SKIP)
            state.status, state.reason = "failed", (
                f"InvalidTaskResultReference: task {producer!r} succeeded without "
                f"writing its result {result!r}")
            self.stopping = STOPPING_SKIP
            self.on_event(Event("finished", state))
            return 0
        try:
            if not self._when(task):
                return self._skip(state, WHEN_SKIP)
        except SubstitutionError as exc:
            state.status, state.reason = "failed", str(exc)
            self.stopping = STOPPING_SKIP
            self.on_event(Event("finished", state))
            return 0
        self._start(task, state)
        return 1

    def _skip(self, state: TaskState, reason: str) -> int:
        state.status, state.reason = "skipped", reason
        self.on_event(Event("skipped", state))
        return 0

    def _missing_results(self, task: PipelineTask) -> tuple[str, str] | None:
        for text in _pipeline_texts(task):
            for producer, result in task_result_references(text):
                if result not in self.states[producer].results:
                    return producer, result
        return None

    def scope(self, task: PipelineTask | None) -> Scope:
        """The pipeline-level scope now: params, context, the results so far, statuses."""
        scope = _base_scope(self.pr, self.params, self.name)
        for state in self.states.values():
            for result, value in state.results.items():
                scope.set("tasks", state.name, "results", result, value=value)
        if task is not None:
            scope.set("context", "pipelineTask", "retries", value=str(task.retries))
        if task is not None and self.states[task.name].is_finally:
            dag = [self.states[t.name] for t in self.pr.pipeline.tasks]
            for state in dag:
                scope.set("tasks", state.name, "status", value=_status_word(state))
            scope.set("tasks", "status", value=_aggregate(dag))
        return scope

    def _when(self, task: PipelineTask) -> bool:
        scope = self.scope(task)
        for i, when in enumerate(task.when):
            where = f"pipeline task {task.name} when[{i}]"
            value = substitute(when.input, scope, f"{where}.input")
            values = substitute_array(list(when.values), scope, f"{where}.values")
            if (value in values) != (when.operator == "in"):
                return False
        return True

    def _start(self, task: PipelineTask, state: TaskState) -> None:
        scope = self.scope(task)
        try:
            params = {name: substitute_value(value, scope, f"pipeline task {task.name} "
                                             f"param {name}") for name, value in task.params}
            combos = matrix.combinations(task.matrix, scope, task.name) if task.matrix else None
        except SubstitutionError as exc:
            state.status, state.reason = "failed", str(exc)
            self.events.put(Event("finished", state))
            return
        state.status, state.started = "running", time.monotonic()
        state.taskrun = _child_name(self.name, task.name)
        request = TaskRunRequest(
            name=state.taskrun, pipeline_task=task.name, pipeline_run=self.name,
            namespace=self.pr.namespace, task=task.task, params=params,
            workspaces=self._task_workspaces(task), folder=self.folder / "taskruns"
            / state.taskrun, rehearsal=self.folder, python_bin=self.python_bin,
            sources=self.sources, pipeline_params=self.params, retries=task.retries)
        self.on_event(Event("started", state))
        if combos is not None:
            threading.Thread(target=self._work_matrix, args=(task, state, request, combos,
                                                             params), daemon=True).start()
            return
        threading.Thread(target=self._work, args=(task, state, request), daemon=True).start()

    def _work_matrix(self, task: PipelineTask, state: TaskState, request: TaskRunRequest,
                     combos: list[dict[str, str]], params: dict[str, Any]) -> None:
        outcomes = matrix.run_all(lambda child: self._attempts(task, state, child), request,
                                  combos, params)
        if not combos:  # an empty array: Tekton runs no TaskRun and the task succeeds
            state.status, state.reason = "succeeded", "matrix with no combinations"
            self.events.put(Event("finished", state))
            return
        state.attempts, decider = matrix.deciding(outcomes)
        state.matrix_results = matrix.aggregated_results(outcomes)
        self.events.put(Event("finished", state, decider))

    def _task_workspaces(self, task: PipelineTask) -> dict[str, Path | None]:
        out: dict[str, Path | None] = {d.name: None for d in task.task.workspaces}
        for use in task.workspaces:
            base = self.workspaces.get(use.workspace)
            out[use.name] = None if base is None else (base / use.sub_path if use.sub_path
                                                       else base)
        return out

    def _work(self, task: PipelineTask, state: TaskState, request: TaskRunRequest) -> None:
        state.attempts.extend(self._attempts(task, state, request))
        self.events.put(Event("finished", state, state.attempts[-1]))

    def _attempts(self, task: PipelineTask, state: TaskState, request: TaskRunRequest) -> list:
        """One TaskRun with its retries; its attempts."""
        cancel, attempts = self.cancel, []
        for retry in range(task.retries + 1):
            deadline = time.monotonic() + task.timeout if task.timeout else None
            attempt = run_attempt(request, retry, deadline, cancel)
            attempts.append(attempt)
            if attempt.status in ("Succeeded", "Cancelled") or cancel.is_set():
                break
            if retry < task.retries:
                self.events.put(Event("retrying", state, attempt))
        return attempts

    def _finished(self, task: PipelineTask, state: TaskState) -> None:
        state.seconds = time.monotonic() - (state.started or time.monotonic())
        if state.status != "running":
            return  # failed before it started (a bad param reference), or an empty matrix
        last = state.attempts[-1]
        state.results = dict(last.results) if state.matrix_results is None else \
            dict(state.matrix_results)
        state.status = {"Succeeded": "succeeded", "Failed": "failed", "TimedOut": "timedout",
                        "Cancelled": "cancelled"}[last.status]
        state.reason = last.message
        if state.failed and task.on_error == "continue":
            state.ignored = True
        elif state.failed and not self.stopping and not state.is_finally:
            self.stopping = STOPPING_SKIP

    def _outcome(self, seconds: float) -> RunOutcome:
        states = list(self.states.values())
        failed = [s for s in states if s.failed and not s.ignored]
        skipped = [s for s in states if s.status == "skipped"]
        if self.timed_out == "pipeline":
            status = "PipelineRunTimeout"
        elif failed or self.timed_out:
            status = "Failed"
        else:
            status = "Completed" if skipped else "Succeeded"
        cancelled = sum(s.status == "cancelled" for s in states)
        done = sum(s.status != "skipped" for s in states)
        message = (f"Tasks Completed: {done} (Failed: {len(failed)}, Cancelled {cancelled}), "
                   f"Skipped: {len(skipped)}")
        if self.timed_out:
            message += f"; timeouts.{self.timed_out} reached"
        return RunOutcome(self.name, self.folder, status, message, self.states,
                          self._results(), self.workspaces, seconds)

    def _results(self) -> dict[str, Any]:
        scope = self.scope(None)
        out = {}
        for name, value in self.pr.pipeline.results:
            texts = referenced_texts(value)
            refs = [r for t in texts for r in task_result_references(t)]
            if any(r not in self.states[p].results for p, r in refs if p in self.states):
                continue  # Tekton leaves out a result whose task result is missing
            try:
                out[name] = substitute_value(value, scope, f"Pipeline result {name}")
            except SubstitutionError:
                continue
        return out


def _child_name(run: str, task: str) -> str:
    """Tekton's TaskRun name, ``<pipelinerun>-<task>``; past 63 characters shortened with a
    hash (as kmeta.ChildName does, though not to the same characters)."""
    name = f"{run}-{task}"
    if len(name) <= 63:
        return name
    import hashlib

    digest = hashlib.md5(name.encode(), usedforsecurity=False).hexdigest()
    return name[:63 - len(digest) - 1] + "-" + digest


def _status_word(state: TaskState) -> str:
    if state.status == "succeeded":
        return "Succeeded"
    return "Failed" if state.failed else "None"


def _aggregate(states: list[TaskState]) -> str:
    if any(s.failed and not s.ignored for s in states):
        return "Failed"
    if all(s.status == "succeeded" for s in states):
        return "Succeeded"
    if all(s.done for s in states):
        return "Completed"
    return "None"


def rehearse(pr: PipelineRunSpec, runs_folder: Path, sources: Sources, python_bin: Path,
             on_event: Callable[[Event], None] | None = None, name: str | None = None,
             ) -> RunOutcome:
    """Run the PipelineRun in ``runs_folder/<its name>/``; ``on_event`` hears every task's
    progress (in the calling thread).

    Raises:
        ManifestError: what Tekton would reject before running anything.
    """
    check_pipeline_run(pr)
    name = name or run_name(pr)
    folder = (runs_folder / name).resolve()  # substituted paths must not depend on a cwd
    folder.mkdir(parents=True, exist_ok=False)
    return _Run(pr, folder, name, sources, python_bin, on_event or (lambda event: None)).run()
