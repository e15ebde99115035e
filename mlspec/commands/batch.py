"""``mlspec run --pipeline batch``: the compiled batch scoring pipeline under kfp.local.

The same machinery as a training run (``mlspec.commands.run``) with the batch pipeline's
file, arguments and report: relative ``batch.input``/``batch.output`` paths and a sqlite
registry are made absolute against the current directory, as for training.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlspec.commands.localrun import (
    LocalPipeline,
    StepState,
    absolute_data_uri,
    absolute_tracking_uri,
    display_path,
    failure_lines,
    read_step_json,
)
from mlspec.commands.summary import print_outcome
from mlspec.compile.graph import build_batch_graph, resolved_spec

BATCH_SUMMARY_FILE = "batch-summary.json"


def batch_arguments(project) -> dict[str, str]:
    """The batch pipeline's ``spec`` argument, local paths made absolute."""
    from mlspec.compile.targets.kfp import SPEC_PARAM, spec_parameter

    spec = resolved_spec(project)
    spec["registry"]["tracking_uri"] = absolute_tracking_uri(spec["registry"]["tracking_uri"])
    for key in ("input", "output"):
        spec["batch"][key] = absolute_data_uri(spec["batch"][key])
    return {SPEC_PARAM: spec_parameter(spec)}


def summarize_batch(states: dict[str, StepState], run_root: Path | None, run_dir: Path,
                    seconds: float, error: str | None) -> dict[str, Any]:
    """The outcome of a batch run: the steps and the report step's batch report."""
    failed = [s for s in states.values() if s.status == "failed"]
    report = read_step_json(run_root, "report", "report")
    return {
        "steps": {s.name: {"status": s.status, "seconds": round(s.seconds or 0.0, 2)}
                  for s in states.values()},
        "report": report,
        "artifacts": display_path(run_root) if run_root else None,
        "log": str(run_dir / "run.log"),
        "seconds": round(seconds, 2),
        "error": error,
        "failed_step": failed[0].name if failed else None,
        "failure": failure_lines(failed[0]) if failed else [],
        "ok": not failed and error is None and isinstance(report, dict)
        and report.get("passed") is True,
    }


def print_batch_summary(console, summary: dict[str, Any]) -> None:
    """Rows scored and set aside, the worst violations, drift, where the predictions are."""
    report = summary["report"]
    if isinstance(report, dict):
        model = report.get("model") or {}
        console.print(f"model      {model.get('uri')}", markup=False)
        console.print(f"scored     {report['scored']:,} of {report['rows']:,} rows in "
                      f"{len(report.get('partitions') or [])} partition(s)", markup=False)
        if report["violation_rows"]:
            console.print(f"violations {report['violation_rows']:,} rows set aside "
                          f"({report['violation_fraction']:.1%})", markup=False)
            for feature, kinds in sorted(report["violations"].items()):
                shown = ", ".join(f"{n:,} {kind}" for kind, n in sorted(kinds.items()))
                console.print(f"           - {feature}: {shown}", markup=False)
        drift = report.get("drift") or {}
        drifted = [f["name"] for f in drift.get("features", []) if f.get("drifted")]
        console.print("drift      " + (f"[red]{', '.join(drifted)}[/]" if drifted
                                       else "none"))
        console.print(f"output     {report['output']}", markup=False)
    print_outcome(console, summary, "batch run")


def _graph(project):
    graph = build_batch_graph(project)
    if graph is None:  # run_command checks first; a guard for direct callers
        raise ValueError("the project has no batch section")
    return graph


def batch_pipeline() -> LocalPipeline:
    """The batch scoring pipeline as ``mlspec run --pipeline batch`` runs it."""
    return LocalPipeline("kfp/batch-pipeline.yaml", _graph, batch_arguments, summarize_batch,
                         print_batch_summary, BATCH_SUMMARY_FILE)
