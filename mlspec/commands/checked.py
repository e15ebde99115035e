"""What ``compile``, ``run``, ``submit`` and ``trigger serve`` do with a spec before their own
work: read it, check it (schema and lint), print its diagnostics with code frames, render it
through the compiler and write the files, each failure turned into the command's exit code.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path

from mlspec.compile.build import Compiled, compile_project, render_target
from mlspec.compile.targets import OutputFile
from mlspec.compile.writer import write_atomically
from mlspec.errors import Diagnostic, Severity, SpecError, UsageError

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2
# The spec now in production, for ``serving.rollout.strategy: auto`` when no --previous is given
# (a path or REV:PATH). Read here, by the commands; renderers never read the environment.
PREVIOUS_SPEC_ENV = "MLSPEC_PREVIOUS_SPEC"


def load_checked(spec: str, profile: str | None, strict: bool = False, local: bool = False):
    """Read, validate and lint a spec for a command, printing its diagnostics (with code
    frames). Returns ``(loaded, None)`` when the spec may be used, else ``(loaded, exit code)``:
    EXIT_USAGE when it cannot be read, EXIT_INVALID when it has errors (or warnings and
    ``strict``). ``local``: the command runs the pipeline on this machine (``mlspec run``), so
    the rules about what a cluster cannot do (``CLUSTER_ONLY``) do not apply.

    Raises:
        UsageError: unknown profile.
    """
    from mlspec.spec.loader import load_spec

    loaded = load_spec(spec, profile)
    if loaded.unreadable:
        print_diagnostics(loaded.diagnostics, spec)
        return loaded, EXIT_USAGE
    diagnostics = check_spec(loaded, spec)
    if local:
        from mlspec.lint.registry import CLUSTER_ONLY

        diagnostics = [d for d in diagnostics if d.code not in CLUSTER_ONLY]
    if diagnostics:
        print_diagnostics(diagnostics, spec, _lines(loaded), strict)
    failing = any(d.is_error or (strict and d.severity is Severity.WARNING) for d in diagnostics)
    if failing or loaded.project is None:
        return loaded, EXIT_INVALID
    return loaded, None


def previous_project(previous: str | None = None):
    """The previous spec's project for an ``auto`` rollout: ``--previous``, else
    ``$MLSPEC_PREVIOUS_SPEC``, else None (nothing to compare with: canary).

    Raises:
        UsageError: the previous spec cannot be read or is not valid.
    """
    source, ref = ("--previous", previous) if previous else \
        (f"${PREVIOUS_SPEC_ENV}", os.environ.get(PREVIOUS_SPEC_ENV))
    if not ref:
        return None
    from mlspec.commands.plan import load_project

    try:
        return load_project(ref)
    except UsageError as exc:
        raise UsageError(f"{source}: {exc}") from None


def compile_loaded(loaded, spec: str, targets: list[str], profile: str | None,
                   strict: bool = False, previous: str | None = None) -> Compiled | None:
    """Render a checked spec's targets; a value a target cannot carry is printed at its line
    and None returned.

    Raises:
        UsageError: unknown target, or an unreadable previous spec.
    """
    old = previous_project(previous) if _plans_against_previous(loaded) else None
    try:
        return compile_project(loaded.project, targets, spec_sha256=loaded.sha256,
                               spec_name=Path(spec).name, profile=profile, previous=old)
    except SpecError as exc:
        print_diagnostics(positioned(exc.diagnostics, loaded), spec, _lines(loaded), strict)
        return None


def render_checked(loaded, target: str) -> list[OutputFile] | None:
    """One target's files for a checked spec (what ``submit`` sends); a value the target cannot
    carry is printed at its line, as ``compile`` prints it, and None returned."""
    old = previous_project() if _plans_against_previous(loaded) else None
    try:
        return render_target(loaded.project, target, old)
    except SpecError as exc:
        print_diagnostics(positioned(exc.diagnostics, loaded), loaded.path, _lines(loaded))
        return None


def _plans_against_previous(loaded) -> bool:
    # Only an ``auto`` rollout reads the previous spec: a broken one must not fail the others.
    return loaded.project.serving.rollout.strategy == "auto"


def write_or_report(dest: Path, files: list[OutputFile]) -> bool:
    """Write the files atomically at ``dest``; an I/O error is one line on stderr (False)."""
    try:
        write_atomically(dest, files)
    except OSError as exc:
        print(f"error: cannot write {dest}: {exc.strerror or exc}", file=sys.stderr)
        return False
    return True


def positioned(diagnostics: list[Diagnostic], loaded) -> list[Diagnostic]:
    """Give a renderer's diagnostics (spec path only) the line and column of that path."""
    if loaded.doc is None:
        return list(diagnostics)
    out = []
    for d in diagnostics:
        if d.line is None and d.path:
            pos = loaded.doc.position_of(d.keys or tuple(d.path.split(".")))
            d = dataclasses.replace(d, line=pos.line, column=pos.column, file=loaded.path)
        out.append(d)
    return out


def _lines(loaded) -> list[str]:
    return list(loaded.doc.lines) if loaded.doc is not None else []


def check_spec(loaded, spec_path: str) -> list[Diagnostic]:
    """Schema diagnostics plus the lint rules'."""
    from mlspec.lint import lint

    diagnostics = list(loaded.diagnostics)
    if loaded.project is None or any(d.is_error for d in diagnostics):
        return diagnostics
    diagnostics.extend(lint(loaded.project, loaded.doc, spec_path))
    return diagnostics


def print_diagnostics(diagnostics: list[Diagnostic], spec_path: str,
                      lines: list[str] | None = None, strict: bool = False) -> None:
    """Print diagnostics to stderr with ``validate``'s text report (code frames)."""
    from mlspec.commands.report import render_text
    from mlspec.lint import FileResult

    render_text([FileResult(spec_path, list(diagnostics), lines=list(lines or []))], strict,
                sys.stderr)
