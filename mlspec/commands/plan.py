"""``mlspec plan OLD NEW``: read two specs (files or ``REV:PATH``) and print the change's risk
and the rollout strategy it picks (the classification is :mod:`mlspec.compile.plan`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from typing import Any

from mlspec.compile.plan import Plan, plan
from mlspec.errors import UsageError

EXIT_OK, EXIT_INVALID = 0, 1


# --- reading specs ----------------------------------------------------------------------------
def read_ref(ref: str) -> tuple[str, bytes]:
    """The bytes of a spec file, or of ``REV:PATH`` at a git revision (via ``git show``)."""
    if os.path.exists(ref) or ":" not in ref:
        try:
            with open(ref, "rb") as fh:
                return ref, fh.read()
        except OSError as exc:
            raise UsageError(f"cannot read {ref}: {exc.strerror or exc}") from None
    rev, _, path = ref.partition(":")
    candidates = [path] if path.startswith(("./", "/")) else [f"./{path}", path]
    last = ""
    for candidate in candidates:
        try:
            done = subprocess.run(["git", "show", f"{rev}:{candidate}"], capture_output=True,
                                  check=False)
        except OSError as exc:
            raise UsageError(f"cannot run git to read {ref}: {exc.strerror or exc}") from None
        if done.returncode == 0:
            return ref, done.stdout
        last = (done.stderr.decode(errors="replace").strip().splitlines()[-1:] or [""])[0]
    raise UsageError(f"cannot read {ref} from git: {last}")


def load_loaded(ref: str) -> Any:
    """Load a spec (file or ``REV:PATH``) through the normal loader; returns ``LoadedSpec``."""
    from mlspec.spec.loader import load_spec

    if os.path.exists(ref) or ":" not in ref:
        return load_spec(ref)
    _, raw = read_ref(ref)
    with tempfile.TemporaryDirectory(prefix="mlspec-plan-") as tmp:
        path = os.path.join(tmp, "mlproject.yaml")
        with open(path, "wb") as fh:
            fh.write(raw)
        loaded = load_spec(path)
    loaded.path = ref
    return loaded


def load_project(ref: str) -> Any:
    """A valid ``Project`` from a file or ``REV:PATH``.

    Raises:
        UsageError: unreadable, or not a valid spec.
    """
    loaded = load_loaded(ref)
    if loaded.unreadable:
        raise UsageError(loaded.diagnostics[0].message)
    if not loaded.valid:
        first = next((d for d in loaded.diagnostics if d.is_error), None)
        detail = f": {first.message}" if first else ""
        raise UsageError(f"{ref} is not a valid spec{detail}")
    return loaded.project


# --- the command ------------------------------------------------------------------------------
def plan_command(old: str, new: str, output_format: str = "text") -> int:
    """``mlspec plan``: print the classified changes; 0, or 1 when a spec is invalid.

    Raises:
        UsageError: a spec cannot be read.
    """
    projects = []
    for ref in (old, new):
        loaded = load_loaded(ref)
        if loaded.unreadable:
            raise UsageError(loaded.diagnostics[0].message)
        if not loaded.valid:
            first = next((d for d in loaded.diagnostics if d.is_error), None)
            where = f":{first.line}:{first.column}" if first else ""
            message = f"{first.code} {first.message}" if first else "invalid"
            print(f"error: {ref}{where}: {message}", file=sys.stderr)
            return EXIT_INVALID
        projects.append(loaded.project)
    result = plan(projects[0], projects[1])
    if output_format == "json":
        sys.stdout.write(json.dumps(result.to_dict(), indent=2) + "\n")
    else:
        _print_text(result)
    return EXIT_OK


def _print_text(result: Plan) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    if not result.changes:
        console.print("no changes: risk low, strategy canary")
        return
    table = Table(title=None, show_edge=False)
    for column in ("path", "change", "risk"):
        table.add_column(column)
    for change in result.changes:
        table.add_row(change.path, change.change, change.risk)
    console.print(table)
    console.print(f"risk: {result.risk}    strategy: {result.strategy}")
