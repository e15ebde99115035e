"""Diagnostics: the one shape every problem with a spec is reported in.

A diagnostic carries a stable code, a severity, a message, the spec path it is about
(``model.params.max_depth``), the 1-based line and column in the YAML file, and an optional
hint ("did you mean 'max_depth'?"). Formatters (text, json, sarif, github) all read ``to_dict``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True)
class Diagnostic:
    code: str
    severity: Severity
    message: str
    path: str = ""
    line: int | None = None
    column: int | None = None
    hint: str | None = None
    file: str | None = field(default=None, compare=False)
    # The path as keys and list indices, where the reporter has it (a renderer's guard): a
    # dotted path cannot be split back when a key holds a dot ("example.com/pool").
    keys: tuple[str | int, ...] | None = field(default=None, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of DESIGN.md; ``hint`` only when there is one."""
        out: dict[str, Any] = {
            "code": self.code,
            "severity": self.severity.value,
            "message": self.message,
            "path": self.path,
            "line": self.line,
            "column": self.column,
        }
        if self.hint:
            out["hint"] = self.hint
        return out

    def check_tuple(self) -> tuple[str, str, int | None]:
        """A compact form for tests: (code, path, line)."""
        return (self.code, self.path, self.line)

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR


class SpecError(Exception):
    """Raised when a spec cannot be turned into a model; carries its diagnostics."""

    def __init__(self, diagnostics: Iterable[Diagnostic]):
        self.diagnostics = list(diagnostics)
        super().__init__("; ".join(d.message for d in self.diagnostics) or "invalid spec")


class UsageError(Exception):
    """A problem with how a command was called (exit code 2)."""


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """A "did you mean" hint for a misspelled name, or None when nothing is close."""
    matches = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f"did you mean '{matches[0]}'?" if matches else None


def sort_key(d: Diagnostic) -> tuple[int, int, str]:
    return (d.line or 0, d.column or 0, d.code)
