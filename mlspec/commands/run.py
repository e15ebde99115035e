"""``mlspec run``: compile the spec, then run the compiled KFP pipeline locally with kfp.local.

The run executes the very artifact a cluster would run: ``kfp/pipeline.yaml`` is loaded back
with ``kfp.components.load_component_from_file`` and run by ``kfp.local.SubprocessRunner``.
A run folder (default ``.mlspec/runs/<name>/``) holds::

    compiled/     the compile output (kfp/pipeline.yaml, manifest.json, kustomization.yaml)
    artifacts/    kfp.local's pipeline root: <pipeline>-<timestamp>/<step>/<output>, one per run
    run.log       everything kfp and the steps printed
    summary.json  the last run's outcome: steps, metrics, gate decision, registration

Relative paths in the spec (a ``sqlite:///`` tracking URI, a data file) are resolved against
the current directory, as the runtime resolves them when a step is run by hand, and passed to
the pipeline as absolute paths (kfp.local runs each step in its own process).
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

from mlspec.commands.localrun import (  # noqa: F401 - StepState and the paths: re-exported
    LocalPipeline,
    StepState,
    absolute_data_uri,
    absolute_tracking_uri,
    display_path,
    failure_lines,
    read_step_json,
)

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
RUNS_DIR = Path(".mlspec") / "runs"
SUMMARY_FILE = "summary.json"


def default_run_dir(project_name: str, base: Path = Path(".")) -> Path:
    """Where ``mlspec run`` keeps a project's runs when no ``--workdir`` is given (the trigger
    reads the summary of a run it started from there)."""
    return base / RUNS_DIR / project_name
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_STARTED = re.compile(r"Executing task '([^']+)'")
_FINISHED = re.compile(r"Task '([^']+)' finished with status (\w+)")


class _LogTee:
    """A stdout/stderr stand-in: everything goes to run.log, and kfp's task messages update
    the step states that the live display shows."""

    def __init__(self, log, states: dict[str, StepState]):
        self._log, self._states, self._buffer = log, states, ""
        self._current: StepState | None = None

    def write(self, text: str) -> int:
        self._log.write(text)
        self._buffer += text
        *lines, self._buffer = self._buffer.split("\n")
        for line in lines:
            self._line(_ANSI.sub("", line))
        return len(text)

    def _line(self, line: str) -> None:
        started, finished = _STARTED.search(line), _FINISHED.search(line)
        if started and started.group(1) in self._states:
            self._current = self._states[started.group(1)]
            self._current.status, self._current.started = "running", time.monotonic()
        elif finished and finished.group(1) in self._states:
            state = self._states[finished.group(1)]
            state.status = "done" if finished.group(2) == "SUCCESS" else "failed"
            state.seconds = time.monotonic() - (state.started or time.monotonic())
            self._current = None
        elif self._current is not None and line.strip():
            self._current.lines.append(line.strip())

    def flush(self) -> None:
        self._log.flush()

    def isatty(self) -> bool:
        return False


PIPELINES = ("train", "batch")


def run_command(spec: str, profile: str | None, workdir: str | None, engine: str = "kfp",
                secret_env: list[str] | None = None, pipeline: str = "train") -> int:
    """The ``mlspec run`` command: returns the exit code. ``engine`` tekton rehearses the
    compiled Tekton YAML instead (``mlspec.commands.rehearsal``); ``pipeline`` batch runs the
    batch scoring pipeline instead of training.

    Raises:
        UsageError: unknown profile, engine or pipeline, or a run folder that cannot be used.
    """
    from mlspec.commands.checked import compile_loaded, load_checked, write_or_report
    from mlspec.errors import UsageError

    if engine not in ("kfp", "tekton"):
        raise UsageError(f"--engine {engine}: expected kfp or tekton")
    if pipeline not in PIPELINES:
        raise UsageError(f"--pipeline {pipeline}: expected train or batch")
    if secret_env and engine != "tekton":
        raise UsageError("--secret-env applies to --engine tekton")
    loaded, refused = load_checked(spec, profile, local=True)
    if refused is not None:
        return refused
    project = loaded.project
    if pipeline == "batch" and project.batch is None:
        raise UsageError(f"--pipeline batch: {spec} has no batch section (batch.input, "
                         "batch.output)")
    if project.serving.deploy == "auto" and pipeline == "train":
        # A laptop has no cluster to deploy to: the local run is the pipeline up to register.
        print("serving.deploy: auto: the deploy and rollout steps run on a cluster; this local "
              "run ends at register (mlspec serve --candidate + mlspec rollout --local carry a "
              "rollout out here)", file=sys.stderr)
        project.serving.deploy = "manual"
    run_dir = Path(workdir) if workdir else default_run_dir(project.metadata.name)
    if engine == "tekton":
        from mlspec.commands.rehearsal.command import rehearse_spec

        return rehearse_spec(loaded, spec, profile, run_dir, list(secret_env or []),
                             pipeline=pipeline)
    compiled = compile_loaded(loaded, spec, ["kfp"], profile)
    if compiled is None:
        return EXIT_FAILED
    if not write_or_report(run_dir / "compiled", compiled.files):
        return EXIT_USAGE
    if pipeline == "batch":
        from mlspec.commands.batch import batch_pipeline

        return run_pipeline(project, run_dir, batch_pipeline())
    return run_pipeline(project, run_dir)


def local_arguments(project) -> dict[str, str]:
    """Pipeline arguments for a local run: relative local paths made absolute (see module doc)."""
    from mlspec.compile.graph import TRAIN_BUNDLE, distributed_training, resolved_spec
    from mlspec.compile.targets.kfp import BUNDLE_PARAMS, spec_parameter

    spec = resolved_spec(project)
    spec["registry"]["tracking_uri"] = absolute_tracking_uri(spec["registry"]["tracking_uri"])
    spec["data"]["source"]["uri"] = absolute_data_uri(spec["data"]["source"]["uri"])
    arguments = {"spec": spec_parameter(spec), "data_uri": spec["data"]["source"]["uri"]}
    if distributed_training(project):
        # No cluster here: the train step runs torchrun itself instead of submitting a TrainJob.
        arguments[BUNDLE_PARAMS[TRAIN_BUNDLE]] = ""
    return arguments


def _train_pipeline() -> LocalPipeline:
    from mlspec.commands.summary import print_summary
    from mlspec.compile.graph import build_graph

    return LocalPipeline("kfp/pipeline.yaml", build_graph, local_arguments, summarize,
                         print_summary, SUMMARY_FILE)


def run_pipeline(project, run_dir: Path, pipeline: LocalPipeline | None = None) -> int:
    """Run a compiled KFP pipeline (default: ``run_dir/compiled/kfp/pipeline.yaml``) with
    kfp.local; print progress and a summary."""
    from rich.console import Console

    pipeline = pipeline or _train_pipeline()
    # soft_wrap: a long path stays on one line (copyable) instead of being folded at 80 columns.
    console = Console(file=sys.stdout, highlight=False, soft_wrap=True)
    graph = pipeline.graph(project)
    states = {step.name: StepState(step.name) for step in graph.steps}
    artifacts = (run_dir / "artifacts").resolve()
    artifacts.mkdir(parents=True, exist_ok=True)
    before = set(artifacts.iterdir())
    started = time.monotonic()
    error = _run_with_progress(console, run_dir, artifacts, states, pipeline.arguments(project),
                               pipeline.file)
    new = sorted(set(artifacts.iterdir()) - before)
    run_root = new[-1] if new else None
    summary = pipeline.summarize(states, run_root, run_dir, time.monotonic() - started, error)
    (run_dir / pipeline.summary_file).write_text(json.dumps(summary, indent=2, sort_keys=True)
                                                 + "\n")
    pipeline.print_summary(console, summary)
    return EXIT_OK if summary["ok"] else EXIT_FAILED


def _run_with_progress(console, run_dir: Path, artifacts: Path, states: dict[str, StepState],
                       arguments: dict[str, str], file: str) -> str | None:
    """Run the pipeline under a live table; kfp's output goes to run.log. Returns an error."""
    from rich.live import Live

    log_path = run_dir / "run.log"
    real_out, real_err, old_path = sys.stdout, sys.stderr, os.environ.get("PATH", "")
    # Components call `python3`: the interpreter running mlspec (the venv's) must come first.
    os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + old_path
    with open(log_path, "w", encoding="utf-8") as log, \
            Live(_table(states), console=console, refresh_per_second=8, transient=False,
                 redirect_stdout=False, redirect_stderr=False) as live:
        tee = _LogTee(log, states)
        sys.stdout = sys.stderr = tee  # type: ignore[assignment]
        try:
            error = _execute(run_dir / "compiled" / file, artifacts, arguments, live, states)
        finally:
            sys.stdout, sys.stderr = real_out, real_err
            os.environ["PATH"] = old_path
            for state in states.values():
                if state.status in ("pending", "running"):
                    state.status = "skipped" if state.status == "pending" else "failed"
            live.update(_table(states))
    if not console.is_terminal:
        console.line()  # a non-interactive Live prints its last frame without a newline
    return error


def _execute(pipeline_file: Path, artifacts: Path, arguments: dict[str, str], live,
             states: dict[str, StepState]) -> str | None:
    import threading
    import warnings

    from kfp import components, local

    stop = threading.Event()

    def refresh() -> None:  # redraw while a step runs, so the elapsed times move
        while not stop.wait(0.25):
            live.update(_table(states))

    ticker = threading.Thread(target=refresh, daemon=True)
    ticker.start()
    try:
        with warnings.catch_warnings():
            # kfp warns that the runtime image is "non-Python"; it is, and it runs locally.
            warnings.simplefilter("ignore", RuntimeWarning)
            local.init(runner=local.SubprocessRunner(use_venv=False),
                       pipeline_root=str(artifacts), raise_on_error=True)
            pipeline = components.load_component_from_file(str(pipeline_file))
            pipeline(**arguments)
        return None
    except RuntimeError as exc:
        return _ANSI.sub("", str(exc))
    finally:
        stop.set()
        ticker.join()


_ICONS = {"pending": "[dim]·[/]", "running": "[yellow]▶[/]", "done": "[green]✓[/]",
          "failed": "[red]✗[/]", "skipped": "[dim]–[/]"}


def _table(states: dict[str, StepState]):
    from rich.table import Table

    table = Table(show_header=False, box=None, padding=(0, 1))
    now = time.monotonic()
    for state in states.values():
        seconds = state.seconds
        if seconds is None and state.status == "running" and state.started is not None:
            seconds = now - state.started
        timing = f"{seconds:5.1f}s" if seconds is not None else ""
        table.add_row(_ICONS[state.status], state.name, timing, state.status)
    return table


# --- summary ----------------------------------------------------------------------------------
def summarize(states: dict[str, StepState], run_root: Path | None, run_dir: Path,
              seconds: float, error: str | None) -> dict[str, Any]:
    """The outcome of a run, from the step states and the steps' output files."""
    failed = [s for s in states.values() if s.status == "failed"]
    metrics = read_step_json(run_root, "evaluate", "metrics")
    decision = read_step_json(run_root, "gate", "decision")
    registration = read_step_json(run_root, "register", "registration")
    passed = _gate_passed(decision)
    summary: dict[str, Any] = {
        "steps": {s.name: {"status": s.status, "seconds": round(s.seconds or 0.0, 2)}
                  for s in states.values()},
        "metrics": metrics,
        "gate": decision,
        "registration": registration,
        "artifacts": display_path(run_root) if run_root else None,
        "log": str(run_dir / "run.log"),
        "seconds": round(seconds, 2),
        "error": error,
        "failed_step": failed[0].name if failed else None,
        "failure": failure_lines(failed[0]) if failed else [],
    }
    summary["ok"] = not failed and error is None and passed is True and registration is not None
    return summary


def _gate_passed(decision: Any) -> bool | None:
    if isinstance(decision, dict) and isinstance(decision.get("passed"), bool):
        return decision["passed"]
    return None
