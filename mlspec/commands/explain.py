"""``mlspec explain CODE``: what a diagnostic code catches and how to fix it."""

from __future__ import annotations

import sys
from typing import TextIO

from mlspec.lint.codes import all_codes, describe

EXIT_OK = 0


def explain_command(code: str, out: TextIO | None = None) -> int:
    """Print what a code catches and how to fix it (``list`` prints every code)."""
    stream = out or sys.stdout
    if code.strip().lower() in ("list", "all"):
        for c, (name, severity, doc) in all_codes().items():
            stream.write(f"{c}  {severity.value:<7}  {name:<32} {doc.splitlines()[0]}\n")
        return EXIT_OK
    name, severity, doc = describe(code)
    key = next(c for c, v in all_codes().items() if v[0] == name)
    stream.write(f"{key} {name} ({severity.value})\n\n{doc}\n")
    return EXIT_OK
