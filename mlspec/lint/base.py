"""The parts every lint rule is made of: ``Rule``, ``Finding`` and the ``Context`` it reads.

A rule is a plain function ``check(ctx) -> Iterable[Finding]`` wrapped by :func:`rule` with a
stable code and a severity. Its docstring, in "anti-pattern / best practice" form, is what
``mlspec explain CODE`` prints. Rules only read the validated ``Project``; positions come from
the positioned YAML, so a rule names a spec path and never deals with lines itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from mlspec.errors import Severity
from mlspec.spec.models import Project
from mlspec.spec.yamlpos import PositionedYaml

SpecPath = tuple[str | int, ...]


@dataclass(frozen=True)
class Finding:
    """One problem a rule found: where (spec path), what, and how to fix it."""

    path: SpecPath
    message: str
    hint: str | None = None


@dataclass(frozen=True)
class Context:
    """What a rule may read: the validated project and the plain data it came from."""

    project: Project
    doc: PositionedYaml

    @property
    def data(self) -> dict[str, Any]:
        return self.doc.data

    def given(self, path: SpecPath) -> bool:
        """True when ``path`` is written in the file (not a default)."""
        node: Any = self.doc.data
        for part in path:
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
                node = node[part]
            else:
                return False
        return True


Check = Callable[[Context], Iterable[Finding]]


@dataclass(frozen=True)
class Rule:
    """A lint rule: a stable code, a short name, a severity and the check itself."""

    code: str
    name: str
    severity: Severity
    check: Check

    @property
    def doc(self) -> str:
        import inspect  # lazily: only explain and the docs read docstrings

        return inspect.getdoc(self.check) or ""


def rule(code: str, name: str, severity: Severity = Severity.ERROR) -> Callable[[Check], Rule]:
    """Turn a check function into a :class:`Rule`."""

    def wrap(check: Check) -> Rule:
        return Rule(code, name, severity, check)

    return wrap
