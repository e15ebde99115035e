"""Tekton's variable substitution, pure: find ``$(…)`` references and replace them.

A reference is ``$(`` + a path + ``)``: dotted names (``params.x``, ``workspaces.w.path``,
``tasks.t.results.r``, ``context.taskRun.name``), bracketed names (``params["x"]``,
``results['r'].path``) and an index at the end (``params.a[*]``, ``params.a[0]``). A path whose
first name is one of Tekton's roots (``ROOTS``) is Tekton's to resolve: an unknown one is an
error, as Tekton's validation rejects it. Anything else (``$(date)`` in a script, ``$(HOME)``
in an argument) is left as it is, for the shell or for Kubernetes' own ``$(VAR)`` expansion.

Values are strings, lists (array params and results) or dicts (object params and results). An
array or a whole object goes only where Tekton allows it: as a whole element of an array field
(``command``, ``args``, a when expression's ``values``), where it expands into its elements.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

ROOTS = frozenset({"params", "tasks", "results", "workspaces", "context", "steps",
                   "credentials", "resources", "inputs", "outputs"})
# The content of $(…): no parentheses and no "$" (a nested reference is not a reference).
_REF = re.compile(r"\$\(([^()$]*)\)")
_NAME = re.compile(r"[A-Za-z0-9_\-]+")
_BRACKET = re.compile(r"\[(?:\"([^\"]*)\"|'([^']*)'|(\*)|(\d+))\]")


class SubstitutionError(ValueError):
    """A reference Tekton would reject: unknown, or a value of the wrong shape for its place."""


@dataclass(frozen=True)
class Reference:
    """One ``$(…)`` in a text: its names and its index (``*`` or digits), where it is."""

    text: str
    names: tuple[str, ...]
    index: str | None
    start: int
    end: int

    @property
    def root(self) -> str:
        return self.names[0]

    @property
    def key(self) -> str:
        """The reference as Tekton's documentation writes it (dotted), for messages."""
        return ".".join(self.names) + (f"[{self.index}]" if self.index is not None else "")


def parse_path(content: str) -> tuple[tuple[str, ...], str | None] | None:
    """``params["a.b"][*]`` -> (("params", "a.b"), "*"); None when it is no Tekton path."""
    names: list[str] = []
    index: str | None = None
    pos = 0
    while pos < len(content):
        if index is not None:
            return None  # an index is the last thing in a path
        if content[pos] == "[":
            match = _BRACKET.match(content, pos)
            if match is None:
                return None
            quoted = match.group(1) if match.group(1) is not None else match.group(2)
            if quoted is not None:
                names.append(quoted)
            elif names:
                index = match.group(3) or match.group(4)
            else:
                return None
            pos = match.end()
            continue
        if content[pos] == "." and names:
            pos += 1
        match = _NAME.match(content, pos)
        if match is None:
            return None
        names.append(match.group(0))
        pos = match.end()
    return (tuple(names), index) if names else None


def references(text: str) -> list[Reference]:
    """The Tekton references in a text, in order (roots in ``ROOTS`` only)."""
    found = []
    for match in _REF.finditer(text):
        parsed = parse_path(match.group(1))
        if parsed is None or parsed[0][0] not in ROOTS or len(parsed[0]) < 2:
            continue  # every Tekton variable has two names at least (params.x, tasks.status)
        names, index = parsed
        found.append(Reference(match.group(0), names, index, match.start(), match.end()))
    return found


def task_result_references(text: str) -> list[tuple[str, str]]:
    """``(task, result)`` for every ``$(tasks.T.results.R…)`` in a text."""
    out = []
    for ref in references(text):
        if ref.root == "tasks" and len(ref.names) >= 4 and ref.names[2] == "results":
            out.append((ref.names[1], ref.names[3]))
    return out


class Scope:
    """The values references resolve to, keyed by their names (``("params", "x")``)."""

    def __init__(self, values: Mapping[tuple[str, ...], Any] | None = None):
        self.values: dict[tuple[str, ...], Any] = dict(values or {})

    def set(self, *names: str, value: Any) -> None:
        self.values[tuple(names)] = value

    def child(self, values: Mapping[tuple[str, ...], Any]) -> Scope:
        merged = dict(self.values)
        merged.update(values)
        return Scope(merged)

    def lookup(self, ref: Reference, where: str) -> Any:
        """The value of a reference: a string, or a list/dict for a whole array/object."""
        value = self._value(ref.names)
        if value is _MISSING:
            raise SubstitutionError(f"{where}: unknown reference {ref.text}")
        if ref.index is None:
            return value
        if ref.index == "*":
            if isinstance(value, (list, dict)):
                return value
            raise SubstitutionError(f"{where}: {ref.text}: [*] on a string value")
        if isinstance(value, list):
            position = int(ref.index)
            if position < len(value):
                return value[position]
            raise SubstitutionError(f"{where}: {ref.text}: index out of range ({len(value)})")
        raise SubstitutionError(f"{where}: {ref.text}: an index on a value that is no array")

    def _value(self, names: tuple[str, ...]) -> Any:
        if names in self.values:
            return self.values[names]
        # An object's key: params.obj.key, tasks.t.results.obj.key.
        parent = self.values.get(names[:-1], _MISSING)
        if isinstance(parent, dict) and names[-1] in parent:
            return parent[names[-1]]
        return _MISSING


_MISSING = object()


def substitute(text: str, scope: Scope, where: str) -> str:
    """Replace every Tekton reference in ``text`` by its string value.

    Raises:
        SubstitutionError: an unknown reference, or an array/object where a string must go.
    """
    refs = references(text)
    if not refs:
        return text
    parts: list[str] = []
    pos = 0
    for ref in refs:
        value = scope.lookup(ref, where)
        if not isinstance(value, str):
            raise SubstitutionError(
                f"{where}: {ref.text} is an array or object; it may only stand alone as an "
                "element of an array field (command, args, when values)")
        parts.extend((text[pos:ref.start], value))
        pos = ref.end
    parts.append(text[pos:])
    return "".join(parts)


def substitute_array(items: Iterable[str], scope: Scope, where: str) -> list[str]:
    """An array field: an element that is exactly one array reference expands into its items."""
    out: list[str] = []
    for i, item in enumerate(items):
        item = str(item)
        refs = references(item)
        label = f"{where}[{i}]"
        if len(refs) == 1 and refs[0].start == 0 and refs[0].end == len(item):
            value = scope.lookup(refs[0], label)
            if isinstance(value, list):
                out.extend(str(v) for v in value)
                continue
            if isinstance(value, dict):
                raise SubstitutionError(f"{label}: {refs[0].text} is an object")
        out.append(substitute(item, scope, label))
    return out


def substitute_value(value: Any, scope: Scope, where: str) -> Any:
    """A param value (string, array or object) with its references replaced."""
    if isinstance(value, list):
        return substitute_array(value, scope, where)
    if isinstance(value, dict):
        return {k: substitute(str(v), scope, f"{where}.{k}") for k, v in value.items()}
    return substitute(str(value), scope, where)


def referenced_texts(value: Any) -> list[str]:
    """Every string inside a YAML value (for finding references)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [t for v in value.values() for t in referenced_texts(v)]
    if isinstance(value, list):
        return [t for v in value for t in referenced_texts(v)]
    return []
