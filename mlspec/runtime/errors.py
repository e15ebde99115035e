"""The one error a step raises for bad input: a clear one-line message, exit code 1."""

from __future__ import annotations


def first_line(exc: BaseException, with_type: bool = False) -> str:
    """An exception as one line for an error message: its first line (at most 300 characters),
    or its type's name when it has no message; ``with_type`` prefixes the type's name."""
    lines = str(exc).strip().splitlines()
    if not lines:
        return type(exc).__name__
    return f"{type(exc).__name__}: {lines[0][:300]}" if with_type else lines[0][:300]


class StepError(Exception):
    """A step cannot do its work (bad data, bad spec value, unreadable file).

    The command line prints ``error: <message>`` on stderr without a traceback and exits 1.
    """
