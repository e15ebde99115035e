"""What a local run is made of, shared by ``mlspec run``'s training and batch pipelines: the
step states the progress display shows, the pipeline's description, local paths made absolute,
and reading the steps' outputs back. A leaf: ``commands.run`` and ``commands.batch`` build on it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class StepState:
    """What the progress display knows about one step."""

    name: str
    status: str = "pending"  # pending | running | done | failed | skipped
    started: float | None = None
    seconds: float | None = None
    lines: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class LocalPipeline:
    """What differs between running the training and the batch pipeline locally."""

    file: str  # under compiled/
    graph: Any  # project -> PipelineGraph
    arguments: Any  # project -> pipeline arguments
    summarize: Any  # (states, run_root, run_dir, seconds, error) -> summary
    print_summary: Any  # (console, summary) -> None
    summary_file: str


def absolute_tracking_uri(uri: str) -> str:
    """``sqlite:///rel.db`` -> ``sqlite:////abs/rel.db`` (against the current directory)."""
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/") and uri != prefix + ":memory:":
        return prefix + str(Path(uri[len(prefix):]).resolve())
    return uri


def absolute_data_uri(uri: str) -> str:
    """A relative file path (no scheme) -> an absolute one; URLs are left alone."""
    if "://" in uri or Path(uri).is_absolute():
        return uri
    return str(Path(uri).resolve())


def display_path(path: Path) -> str:
    """Relative to the current directory when inside it (shorter to read and copy)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def read_step_json(run_root: Path | None, step: str, output: str) -> Any:
    if run_root is None:
        return None
    path = run_root / step / output
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def failure_lines(state: StepState) -> list[str]:
    """The step's own error lines (the runtime prints one clear line), else its last lines."""
    errors = [line for line in state.lines if line.lower().startswith(("error", "mlspec"))]
    return (errors or state.lines)[-5:]
