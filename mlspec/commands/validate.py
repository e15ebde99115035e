"""``mlspec validate SPEC...``: run the checks on every file and print the report
(formats in :mod:`mlspec.commands.report`), with a fast path that skips the CLI framework.
"""

from __future__ import annotations

import sys
from typing import TextIO

from mlspec.commands.report import FORMATS, RENDERERS, passes
from mlspec.errors import Diagnostic, Severity, UsageError
from mlspec.lint import INTERNAL_ERROR, FileResult, check_file

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2


def validate_files(paths: list[str], fmt: str = "text", strict: bool = False,
                   profile: str | None = None, out: TextIO | None = None) -> int:
    """Check every spec, print the report in ``fmt``, and return the exit code.

    Returns:
        0 when every file is valid; 1 when a file has an error (or, with ``strict``, a warning);
        2 when a file cannot be read.

    Raises:
        UsageError: no files, an unknown format, or an unknown profile.
    """
    if not paths:
        raise UsageError("give at least one spec file")
    if fmt not in FORMATS:
        raise UsageError(f"unknown format '{fmt}' (formats: {', '.join(FORMATS)})")
    results = [_check_safely(path, profile) for path in paths]
    stream = out or sys.stdout
    RENDERERS[fmt](results, strict, stream)
    if any(r.unreadable for r in results):
        return EXIT_USAGE
    if any(not passes(r, strict) for r in results):
        return EXIT_INVALID
    return EXIT_OK


def _check_safely(path: str, profile: str | None) -> FileResult:
    """check_file, with a bug in mlspec reported as a diagnostic (MLS299), never a traceback."""
    try:
        return check_file(path, profile)
    except UsageError:
        raise
    except Exception as exc:  # noqa: BLE001 - the fuzz tests assert this never happens
        message = f"internal error while checking this file: {type(exc).__name__}: {exc}"
        return FileResult(path, [Diagnostic(INTERNAL_ERROR, Severity.ERROR, message[:500], "", 1, 1,
                                            "please report it with the spec", path)])


# --- a fast path for the CLI -------------------------------------------------------------------
_VALUE_OPTIONS = {"--format": "fmt", "-f": "fmt", "--profile": "profile", "-p": "profile"}


def _plain_validate_args(argv: list[str]) -> tuple[list[str], str, bool, str | None] | None:
    """(specs, format, strict, profile) when ``argv`` is a plain call; None when it is not."""
    specs: list[str] = []
    values: dict[str, str] = {}
    strict = False
    args = iter(argv)
    for arg in args:
        if arg == "--":
            specs.extend(args)
        elif arg == "--strict":
            strict = True
        elif arg in _VALUE_OPTIONS:
            value = next(args, None)
            if value is None:
                return None
            values[_VALUE_OPTIONS[arg]] = value
        elif arg.startswith(("--format=", "--profile=")):
            name, _, value = arg.partition("=")
            values[_VALUE_OPTIONS[name]] = value
        elif arg[:2] in ("-f", "-p") and len(arg) > 2:
            values[_VALUE_OPTIONS[arg[:2]]] = arg[2:]
        elif arg.startswith("-") and arg != "-":
            return None  # --help or an option typer should explain
        else:
            specs.append(arg)
    fmt = values.get("fmt", "text")
    if not specs or fmt not in FORMATS:
        return None
    return specs, fmt, strict, values.get("profile")


def fast_validate(argv: list[str]) -> int | None:
    """Run ``mlspec validate ARGV`` without the CLI framework, or return None to let it handle it.

    ``validate`` runs on every push in users' CI, and typer's start-up is a large share of its
    time. Plain arguments (spec paths, ``--format``/``-f``, ``--strict``, ``--profile``/``-p``)
    are read here with the same meaning; anything else (``--help``, a mistake) returns None so
    that typer prints its usual help or error.
    """
    parsed = _plain_validate_args(argv)
    if parsed is None:
        return None
    specs, fmt, strict, profile = parsed
    try:
        return validate_files(specs, fmt, strict=strict, profile=profile)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
