"""``mlspec run --engine tekton``: compile for Tekton, then rehearse the compiled YAML.

The run folder (default ``.mlspec/runs/<name>/``, as ``mlspec run`` keeps it) holds::

    compiled/                  the compile output (tekton/*.yaml, manifest.json, …)
    tekton/<pipelinerun>/      the PipelineRun: workspaces/<name>/ and taskruns/<taskrun>/<pod>/
    tekton/claims/<claim>/     persistentVolumeClaim workspaces (kept across runs)
    run.log                    every step's output, ``[task : step]`` prefixed, as tkn prints it
    summary.json               the outcome, in ``mlspec run``'s shape, plus a ``tekton`` section

Only the files are read: the PipelineRun, Pipeline and Tasks ``tekton/`` holds, and its
ConfigMaps. The spec is used for nothing but the report (where the metrics, the gate's decision
and the registration are, by the pipeline graph's file names).
"""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path
from typing import Any

from mlspec.commands.rehearsal.executor import Event, RunOutcome, TaskState, rehearse
from mlspec.commands.rehearsal.sources import Sources, parse_secret_env
from mlspec.commands.rehearsal.tekton import ManifestError, load_folder, pipeline_run

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
_STATUS = {"succeeded": "done", "failed": "failed", "timedout": "failed", "cancelled": "failed",
           "skipped": "skipped", "pending": "skipped", "running": "failed"}
_ICONS = {"started": "[yellow]▶[/]", "retrying": "[yellow]↻[/]", "succeeded": "[green]✓[/]",
          "skipped": "[dim]–[/]"}


def rehearse_spec(loaded, spec: str, profile: str | None, run_dir: Path,
                  secret_env: list[str], pipeline: str = "train") -> int:
    """Compile the checked spec for Tekton into ``run_dir/compiled`` and rehearse it.

    Raises:
        UsageError: a bad ``--secret-env``, or a run folder that cannot be used.
    """
    from mlspec.commands.checked import compile_loaded, write_or_report

    batch = pipeline == "batch"
    if batch:
        # Its steps run in the run's workspace: local paths (the registry, the batch's input
        # and output) must not depend on a working directory, as for kfp.local.
        from mlspec.commands.localrun import absolute_data_uri, absolute_tracking_uri

        project = loaded.project
        project.registry.tracking_uri = absolute_tracking_uri(project.registry.tracking_uri)
        project.batch.input = absolute_data_uri(project.batch.input)
        project.batch.output = absolute_data_uri(project.batch.output)

    secrets = parse_secret_env(secret_env)
    compiled = compile_loaded(loaded, spec, ["tekton"], profile)
    if compiled is None:
        return EXIT_FAILED
    if not write_or_report(run_dir / "compiled", compiled.files):
        return EXIT_USAGE
    # With a batch section the folder also holds the batch pipeline's PipelineRun
    # (generateName NAME-batch-): the training run is the one named NAME-.
    name = loaded.project.metadata.name
    if batch:  # the batch PipelineRun (NAME-batch-); its summary goes to run_dir/batch/
        (run_dir / "batch").mkdir(exist_ok=True)
        return rehearse_folder(run_dir / "compiled" / "tekton", run_dir / "batch", secrets,
                               None, run_name=f"{name}-batch-")
    return rehearse_folder(run_dir / "compiled" / "tekton", run_dir, secrets, loaded.project,
                           run_name=f"{name}-")


def rehearse_folder(tekton_dir: Path, run_dir: Path, secrets: dict[str, dict[str, str]],
                    project=None, run_name: str | None = None) -> int:
    """Rehearse the PipelineRun of a folder of Tekton YAML (the one whose (generate)name is
    ``run_name`` when the folder has several); print progress and a summary."""
    from rich.console import Console

    console = Console(file=sys.stdout, highlight=False, soft_wrap=True)
    try:
        manifests = load_folder(tekton_dir)
        pr = pipeline_run(manifests, run_name)
        sources = Sources(secrets={**manifests.secrets, **secrets},
                          config_maps=dict(manifests.config_maps))
        outcome = rehearse(pr, run_dir / "tekton", sources, Path(sys.executable).parent,
                           Progress(console))
    except ManifestError as exc:
        console.print(f"[red]error:[/] the Tekton YAML cannot be rehearsed: {exc}",
                      markup=True, highlight=False)
        return EXIT_FAILED
    log = run_dir / "run.log"
    write_log(outcome, log)
    summary = summarize(outcome, project, log)
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    print_report(console, summary, project)
    return EXIT_OK if summary["ok"] else EXIT_FAILED


class Progress:
    """One line per task event: started, retrying, finished (state, duration), skipped."""

    def __init__(self, console) -> None:
        self.console, self.lock = console, threading.Lock()

    def __call__(self, event: Event) -> None:
        task = event.task
        if event.kind == "started":
            line = f"{_ICONS['started']} {task.name:<16} started    {task.taskrun}"
        elif event.kind == "retrying":
            attempt = event.attempt
            line = (f"{_ICONS['retrying']} {task.name:<16} retrying   try "
                    f"{len(task.attempts)} {attempt.status.lower() if attempt else ''}: "
                    f"{attempt.message if attempt else ''}")
        elif event.kind == "skipped":
            line = f"{_ICONS['skipped']} {task.name:<16} skipped    {task.reason}"
        else:
            icon = _ICONS.get(task.status, "[red]✗[/]")
            timing = f"{task.seconds:6.1f}s" if task.seconds is not None else "       "
            tries = f" after {len(task.attempts)} tries" if len(task.attempts) > 1 else ""
            if task.matrix_results is not None:  # a matrix: one TaskRun per combination
                tries = f" ({len(task.attempts)} TaskRuns, retries included)"
            reason = f"  {task.reason}" if task.status != "succeeded" and task.reason else ""
            line = f"{icon} {task.name:<16} {task.status:<10} {timing}{tries}{reason}"
        with self.lock:
            self.console.print(line, highlight=False)


def write_log(outcome: RunOutcome, path: Path) -> None:
    """Every step's output in task order, each line ``[task : step]`` prefixed."""
    with open(path, "w", encoding="utf-8") as out:
        for state in outcome.tasks.values():
            for n, attempt in enumerate(state.attempts):
                if len(state.attempts) > 1:
                    out.write(f"[{state.name}] --- try {n + 1}: {attempt.pod} "
                              f"{attempt.status}\n")
                for step in attempt.steps:
                    try:
                        text = step.log.read_text(encoding="utf-8", errors="replace")
                    except OSError:
                        continue
                    for line in text.splitlines():
                        out.write(f"[{state.name} : {step.name}] {line}\n")


# --- the summary -----------------------------------------------------------------------------
def summarize(outcome: RunOutcome, project, log: Path) -> dict[str, Any]:
    """``mlspec run``'s summary (steps, metrics, gate, registration, ok…) for a rehearsal."""
    states = list(outcome.tasks.values())
    failed = [s for s in states if s.failed and not s.ignored]
    files = _report_files(project)
    metrics, decision, registration = (_read(outcome, files.get(k))
                                       for k in ("metrics", "decision", "registration"))
    gate_ok = True if project is None else \
        isinstance(decision, dict) and decision.get("passed") is True
    registered = True if project is None else registration is not None
    return {
        "engine": "tekton",
        "steps": {s.name: {"status": _STATUS[s.status], "seconds": round(s.seconds or 0.0, 2)}
                  for s in states},
        "metrics": metrics, "gate": decision, "registration": registration,
        "artifacts": str(outcome.folder), "log": str(log),
        "seconds": round(outcome.seconds, 2),
        "error": None if outcome.succeeded or failed else outcome.message,
        "failed_step": failed[0].name if failed else None,
        "failure": _failure_lines(failed[0]) if failed else [],
        "ok": outcome.succeeded and not failed and gate_ok and registered,
        "tekton": {
            "pipelinerun": outcome.name, "status": outcome.status, "message": outcome.message,
            "results": outcome.results,
            "workspaces": {k: str(v) for k, v in outcome.workspaces.items()},
            "tasks": {s.name: {"status": s.status, "reason": s.reason, "taskrun": s.taskrun,
                               "tries": len(s.attempts),
                               "pods": [str(a.folder) for a in s.attempts]} for s in states},
        },
    }


def _report_files(project) -> dict[str, str]:
    """The file names of the evaluate, gate and register outputs, from the pipeline graph."""
    if project is None:
        return {}
    from mlspec.compile.graph import build_graph

    graph = build_graph(project)
    wanted = {"evaluate": "metrics", "gate": "decision", "register": "registration"}
    out = {}
    for step in graph.steps:
        if step.name in wanted:
            out[wanted[step.name]] = step.output(wanted[step.name]).file
    return out


def _read(outcome: RunOutcome, file: str | None) -> Any:
    if not file:
        return None
    for folder in outcome.workspaces.values():
        try:
            return json.loads((folder / file).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
    return None


def _failure_lines(state: TaskState) -> list[str]:
    lines = [state.reason] if state.reason else []
    if state.attempts:
        for step in state.attempts[-1].steps:
            if step.reason in ("Completed", "Skipped"):
                continue
            try:
                text = step.log.read_text(encoding="utf-8", errors="replace").splitlines()
            except OSError:
                text = []
            text = [t.strip() for t in text if t.strip()]
            errors = [t for t in text if t.lower().startswith(("error", "mlspec"))]
            lines.extend((errors or text)[-5:])
    return lines


def print_report(console, summary: dict[str, Any], project) -> None:
    """The PipelineRun's status and results, then ``mlspec run``'s summary."""
    from mlspec.commands.summary import print_summary

    tekton = summary["tekton"]
    colour = "green" if tekton["status"] in ("Succeeded", "Completed") else "red"
    console.print(f"pipelinerun {tekton['pipelinerun']} [{colour}]{tekton['status']}[/]: "
                  f"{tekton['message']}")
    for name, value in sorted(tekton["results"].items()):
        console.print(f"result     {name} = {value}", markup=False)
    if project is not None:
        note = _registry_note(project, tekton["workspaces"])
        if note:
            console.print(note, markup=False)
    shown = dict(summary, failure=summary["failure"][1:] if summary["failure"] else [])
    if summary["failed_step"] and summary["failure"]:
        console.print(f"[red]{summary['failed_step']}: {summary['failure'][0]}[/]",
                      markup=True, highlight=False)
    print_summary(console, shown)


def _registry_note(project, workspaces: dict[str, str]) -> str:
    uri = project.registry.tracking_uri
    if not uri.startswith("sqlite:///") or uri.startswith("sqlite:////"):
        return ""
    where = next(iter(workspaces.values()), "the workspace")
    return (f"registry   {uri} is relative: the steps resolved it in their workingDir "
            f"({where}), as a cluster's pods would, on a volume that goes with the run")
