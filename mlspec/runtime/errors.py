"""The one error a step raises for bad input: a clear one-line message, exit code 1."""

from __future__ import annotations


class StepError(Exception):
    """A step cannot do its work (bad data, bad spec value, unreadable file).

    The command line prints ``error: <message>`` on stderr without a traceback and exits 1.
    """
