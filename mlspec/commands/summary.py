"""The run report both engines print: ``mlspec run`` (kfp.local) and ``--engine tekton``.

A leaf module so the rehearsal can print the same report without importing ``commands.run``
(which dispatches to the rehearsal: importing it back would make a circle).
"""

from __future__ import annotations

import json
from typing import Any


def print_summary(console, summary: dict[str, Any]) -> None:
    """The final report: metrics, the gate's decision and reasons, the registration, paths."""
    metrics = summary["metrics"]
    if isinstance(metrics, dict):
        values = metrics.get("metrics", metrics)
        shown = "  ".join(f"{k} [bold]{_fmt(v)}[/]" for k, v in sorted(values.items())
                          if isinstance(v, (int, float)))
        console.print(f"metrics    {shown}")
    decision = summary["gate"]
    if isinstance(decision, dict):
        verdict = "[green]passed[/]" if decision.get("passed") else "[red]failed[/]"
        console.print(f"gate       {verdict}")
        for reason in _reasons(decision):
            console.print(f"           - {reason}", markup=False)
    registration = summary["registration"]
    if isinstance(registration, dict):
        name = registration.get("model_name") or registration.get("name")
        version, alias = registration.get("version"), registration.get("alias")
        console.print(f"registered {name} version {version}"
                      + (f", alias {alias}" if alias else ""), markup=False)
    elif isinstance(decision, dict) and not decision.get("passed"):
        console.print("registered nothing (the gate failed)")
    print_outcome(console, summary, "run")


def print_outcome(console, summary: dict[str, Any], what: str) -> None:
    """The end of every run report: the failed step and its lines (or the error), where the
    artifacts and the log are, and the verdict."""
    if summary["failed_step"]:
        console.print(f"[red]step {summary['failed_step']} failed[/]")
        for line in summary["failure"]:
            console.print(f"           {line}", markup=False)
    elif summary["error"]:
        console.print(f"[red]{summary['error']}[/]", markup=False)
    if summary.get("artifacts"):
        console.print(f"artifacts  {summary['artifacts']}", markup=False)
    console.print(f"log        {summary['log']}", markup=False)
    state = "[green]succeeded[/]" if summary["ok"] else "[red]failed[/]"
    console.print(f"{what} {state} in {summary['seconds']:.1f}s")


def _reasons(decision: dict[str, Any]) -> list[str]:
    reasons = decision.get("reasons") or []
    out = []
    for reason in reasons:
        if isinstance(reason, dict):
            out.append(reason.get("message") or json.dumps(reason, sort_keys=True))
        else:
            out.append(str(reason))
    return out


def _fmt(value: float) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)
