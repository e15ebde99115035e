"""A safe YAML reader that keeps the source position of every node.

It builds plain Python values straight from PyYAML's (C) event stream, iteratively, so that it
can refuse what a spec file must never be: duplicate keys, alias bombs, deep nesting, several
documents, a top level that is not a mapping. Scalars are resolved with YAML 1.2's core schema,
so ``NO``, ``on`` and ``yes`` stay strings and ``1e3`` is the number 1000; plain scalars that
YAML 1.1 tools would read differently are reported as warnings (MLS011), never silently changed.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from mlspec.errors import Diagnostic, Severity

try:  # the C parser is ~10x faster; fall back to pure Python where libyaml is missing
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - depends on the PyYAML build
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

MAX_BYTES = 1_000_000
MAX_DEPTH = 64
MAX_NODES = 100_000

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class Pos:
    """1-based line and column."""

    line: int
    column: int


@dataclass
class PositionedYaml:
    """A parsed document: the plain value, where each path starts, and warnings on the way."""

    data: dict[str, Any]
    positions: dict[Path, Pos]
    lines: list[str]
    warnings: list[Diagnostic] = field(default_factory=list)

    def position_of(self, path: Path) -> Pos:
        """The position of ``path``, or of its nearest ancestor that exists in the file."""
        path = tuple(path)
        while path:
            pos = self.positions.get(path)
            if pos is not None:
                return pos
            path = path[:-1]
        return self.positions.get((), Pos(1, 1))


class YamlProblem(Exception):
    """The file cannot be read as a spec; carries one positioned diagnostic."""

    def __init__(
        self, code: str, message: str, line: int = 1, column: int = 1, hint: str | None = None
    ):
        super().__init__(message)
        self.diagnostic = Diagnostic(code, Severity.ERROR, message, "", line, column, hint)


# YAML 1.2 core schema resolution of plain scalars.
_NULL = {"", "~", "null", "Null", "NULL"}
_TRUE = {"true", "True", "TRUE"}
_FALSE = {"false", "False", "FALSE"}
_INT_RE = re.compile(r"[-+]?[0-9]+\Z")
_OCT_RE = re.compile(r"0o[0-7]+\Z")
_HEX_RE = re.compile(r"0x[0-9a-fA-F]+\Z")
_FLOAT_RE = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?\Z")
_INF_RE = re.compile(r"[-+]?\.(inf|Inf|INF)\Z")
_NAN_RE = re.compile(r"\.(nan|NaN|NAN)\Z")
# Plain scalars YAML 1.1 reads as booleans, octals or base-60 numbers; YAML 1.2 does not.
_YAML11_BOOL = {
    "y",
    "Y",
    "yes",
    "Yes",
    "YES",
    "n",
    "N",
    "no",
    "No",
    "NO",
    "on",
    "On",
    "ON",
    "off",
    "Off",
    "OFF",
}
_YAML11_OCTAL_RE = re.compile(r"[-+]?0[0-7]+\Z")
_YAML11_SEXAGESIMAL_RE = re.compile(r"[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?\Z")
# YAML 1.1 numbers with underscores or in binary are strings in 1.2; an exponent without a dot
# (1e3) is a number in 1.2 but a string to YAML 1.1 tools such as PyYAML.
_YAML11_UNDERSCORE_RE = re.compile(r"[-+]?(0b[01_]+|0x[0-9a-fA-F_]+|[0-9][0-9_]*(\.[0-9_]*)?)\Z")
_YAML11_BINARY_RE = re.compile(r"[-+]?0b[01_]+\Z")
_NO_DOT_EXPONENT_RE = re.compile(r"[-+]?[0-9]+[eE][-+]?[0-9]+\Z")


def resolve_plain(value: str) -> Any:
    """The YAML 1.2 core-schema value of a plain (unquoted) scalar."""
    if value in _NULL:
        return None
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    if _INT_RE.match(value):
        return int(value)
    if _OCT_RE.match(value):
        return int(value[2:], 8)
    if _HEX_RE.match(value):
        return int(value[2:], 16)
    if _FLOAT_RE.match(value):
        return float(value)
    if _INF_RE.match(value):
        return -math.inf if value.startswith("-") else math.inf
    if _NAN_RE.match(value):
        return math.nan
    return value


def _yaml11_note(value: str) -> str | None:
    if value in _YAML11_BOOL:
        return (
            f"'{value}' is the string \"{value}\" here (YAML 1.2) but a boolean to YAML 1.1 tools"
        )
    if _YAML11_OCTAL_RE.match(value) and value.lstrip("+-") != "0":
        return (f"'{value}' is the decimal number {int(value)} here (YAML 1.2) but octal to "
                "YAML 1.1 tools")
    if _YAML11_SEXAGESIMAL_RE.match(value):
        return f"'{value}' is a string here (YAML 1.2) but a base-60 number to YAML 1.1 tools"
    if "_" in value and _YAML11_UNDERSCORE_RE.match(value) or _YAML11_BINARY_RE.match(value):
        return f"'{value}' is a string here (YAML 1.2) but a number to YAML 1.1 tools"
    if _NO_DOT_EXPONENT_RE.match(value):
        return (
            f"'{value}' is the number {float(value):g} here (YAML 1.2) but a string to "
            "YAML 1.1 tools"
        )
    return None


def decode(raw: bytes) -> str:
    """Bytes to text, refusing what is too big, binary or not UTF-8."""
    if len(raw) > MAX_BYTES:
        raise YamlProblem(
            "MLS003", f"file is {len(raw):,} bytes; a spec may be at most {MAX_BYTES:,}"
        )
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    if b"\x00" in raw:
        line = raw[: raw.index(b"\x00")].count(b"\n") + 1
        raise YamlProblem("MLS002", "file is binary (it contains NUL bytes), not a YAML spec", line)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise YamlProblem(
            "MLS002", f"file is not valid UTF-8 (byte 0x{raw[exc.start]:02x})", line, column
        ) from None


def _pos(mark: Any) -> Pos:
    return Pos(mark.line + 1, mark.column + 1)


class _Frame:
    """A mapping or sequence under construction."""

    __slots__ = ("value", "path", "pending_key", "key_pos", "anchor")

    def __init__(self, value: Any, path: Path, anchor: str | None):
        self.value = value
        self.path = path
        self.pending_key: str | None = None
        self.key_pos: Pos | None = None
        self.anchor = anchor


class _Builder:
    def __init__(self, text: str):
        self.text = text
        self.positions: dict[Path, Pos] = {}
        self.warnings: list[Diagnostic] = []
        self.anchors: dict[str, tuple[Any, int]] = {}
        self.nodes = 0
        self.stack: list[_Frame] = []
        self.root: Any = None
        self.documents = 0

    # -- helpers ---------------------------------------------------------------------------
    def _count(self, n: int, mark: Any) -> None:
        self.nodes += n
        if self.nodes > MAX_NODES:
            p = _pos(mark)
            raise YamlProblem(
                "MLS007",
                f"document expands to more than {MAX_NODES:,} nodes (an alias bomb?)",
                p.line,
                p.column,
            )

    def _child_path(self, mark: Any) -> tuple[Path, Pos]:
        """The path of the node that starts now, and the position to record for it."""
        if not self.stack:
            return (), _pos(mark)
        top = self.stack[-1]
        if isinstance(top.value, list):
            return top.path + (len(top.value),), _pos(mark)
        assert top.pending_key is not None and top.key_pos is not None
        return top.path + (top.pending_key,), top.key_pos

    def _attach(self, value: Any) -> None:
        if not self.stack:
            self.root = value
            return
        top = self.stack[-1]
        if isinstance(top.value, list):
            top.value.append(value)
        else:
            top.value[top.pending_key] = value
            top.pending_key = None

    def _expecting_key(self) -> bool:
        return (
            bool(self.stack)
            and isinstance(self.stack[-1].value, dict)
            and self.stack[-1].pending_key is None
        )

    # -- events ----------------------------------------------------------------------------
    def on_scalar(self, ev: Any) -> None:
        self._count(1, ev.start_mark)
        plain = not ev.style and ev.implicit[0]
        if self._expecting_key():
            self._on_key(ev, plain)
            return
        path, pos = self._child_path(ev.start_mark)
        if ev.tag not in (None, "!"):
            value = self._tagged(ev)
        elif plain:
            value = resolve_plain(ev.value)
            note = _yaml11_note(ev.value)
            if note:
                self.warnings.append(
                    Diagnostic(
                        "MLS011",
                        Severity.WARNING,
                        note,
                        _dotted(path),
                        pos.line,
                        pos.column,
                        f"quote it ('{ev.value}') or write the value you mean",
                    )
                )
        else:
            value = ev.value
        self.positions[path] = pos
        if ev.anchor:
            self.anchors[ev.anchor] = (value, 1)
        self._attach(value)

    @staticmethod
    def _tagged(ev: Any) -> Any:
        if ev.tag == "tag:yaml.org,2002:str":
            return ev.value
        p = _pos(ev.start_mark)
        raise YamlProblem(
            "MLS004",
            f"unsupported YAML tag {ev.tag!r}",
            p.line,
            p.column,
            "a spec uses plain YAML values only; quote the value for a string",
        )

    def _on_key(self, ev: Any, plain: bool) -> None:
        top = self.stack[-1]
        key = ev.value
        pos = _pos(ev.start_mark)
        if plain and key == "<<":
            raise YamlProblem(
                "MLS004",
                "merge keys ('<<') are not supported in a spec",
                pos.line,
                pos.column,
                "write the keys out, or use profiles",
            )
        if key in top.value:
            first = self.positions.get(top.path + (key,))
            where = f" (first defined on line {first.line})" if first else ""
            raise YamlProblem(
                "MLS005",
                f"duplicate key '{key}'{where}",
                pos.line,
                pos.column,
                "a later key would silently replace the earlier one; keep one",
            )
        top.pending_key = key
        top.key_pos = pos

    def on_collection_start(self, ev: Any, container: Any) -> None:
        self._count(1, ev.start_mark)
        if self._expecting_key():
            p = _pos(ev.start_mark)
            raise YamlProblem(
                "MLS004", "a mapping key must be a plain string, not a collection", p.line, p.column
            )
        if len(self.stack) >= MAX_DEPTH:
            p = _pos(ev.start_mark)
            raise YamlProblem(
                "MLS006", f"nesting is deeper than {MAX_DEPTH} levels", p.line, p.column
            )
        if ev.tag not in (None, "!", "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"):
            p = _pos(ev.start_mark)
            raise YamlProblem("MLS004", f"unsupported YAML tag {ev.tag!r}", p.line, p.column)
        path, pos = self._child_path(ev.start_mark)
        self.positions[path] = pos
        self.stack.append(_Frame(container, path, ev.anchor))

    def on_collection_end(self, ev: Any) -> None:
        frame = self.stack.pop()
        if frame.anchor:
            self.anchors[frame.anchor] = (frame.value, self._size(frame.value))
        self._attach(frame.value)

    def on_alias(self, ev: Any) -> None:
        p = _pos(ev.start_mark)
        if self._expecting_key():
            raise YamlProblem("MLS004", "an alias cannot be a mapping key", p.line, p.column)
        if ev.anchor not in self.anchors:
            raise YamlProblem("MLS004", f"unknown alias '*{ev.anchor}'", p.line, p.column)
        value, size = self.anchors[ev.anchor]
        self._count(size, ev.start_mark)
        path, pos = self._child_path(ev.start_mark)
        self.positions[path] = pos
        # A deep copy keeps the result a tree: aliased values never share mutable state.
        self._attach(_copy(value))

    @staticmethod
    def _size(value: Any) -> int:
        # Iterative so that a wide or deep anchored value cannot exhaust the stack.
        count, todo = 0, [value]
        while todo:
            item = todo.pop()
            count += 1
            if isinstance(item, dict):
                todo.extend(item.values())
            elif isinstance(item, list):
                todo.extend(item)
        return count


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _dotted(path: Path) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def parse(text: str) -> PositionedYaml:
    """Parse one YAML document into plain values with positions.

    Raises:
        YamlProblem: when the text is not a single, well-formed YAML mapping.
    """
    builder = _Builder(text)
    try:
        for ev in yaml.parse(text, Loader=_Loader):
            kind = type(ev)
            if kind is yaml.ScalarEvent:
                builder.on_scalar(ev)
            elif kind is yaml.MappingStartEvent:
                builder.on_collection_start(ev, {})
            elif kind is yaml.SequenceStartEvent:
                builder.on_collection_start(ev, [])
            elif kind in (yaml.MappingEndEvent, yaml.SequenceEndEvent):
                builder.on_collection_end(ev)
            elif kind is yaml.AliasEvent:
                builder.on_alias(ev)
            elif kind is yaml.DocumentStartEvent:
                builder.documents += 1
                if builder.documents > 1:
                    p = _pos(ev.start_mark)
                    raise YamlProblem(
                        "MLS010",
                        "the file holds more than one YAML document",
                        p.line,
                        p.column,
                        "keep one spec per file",
                    )
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or "invalid YAML"
        context = f" {exc.context}" if exc.context else ""
        raise YamlProblem("MLS004", f"YAML syntax error: {problem}{context}", line, col) from None
    except yaml.reader.ReaderError as exc:  # a control character the YAML reader refuses
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        raise YamlProblem(
            "MLS002", f"unacceptable character #x{exc.character:04x} in the file", line, column
        ) from None
    except yaml.YAMLError as exc:
        raise YamlProblem("MLS004", f"YAML error: {exc}".splitlines()[0], 1, 1) from None
    except RecursionError:
        raise YamlProblem("MLS006", "nesting is too deep to read") from None

    if builder.documents == 0 or builder.root is None:
        raise YamlProblem("MLS008", "the file is empty; a spec starts with 'apiVersion: mlspec/v1'")
    if not isinstance(builder.root, dict):
        found = "a list" if isinstance(builder.root, list) else f"a {type(builder.root).__name__}"
        raise YamlProblem(
            "MLS009",
            f"the top level is {found}; a spec is a mapping of sections",
            1,
            1,
            "start with 'apiVersion: mlspec/v1' and 'kind: MLProject'",
        )
    return PositionedYaml(builder.root, builder.positions, text.splitlines(), builder.warnings)


def dotted(path: Path) -> str:
    """``("model", "params", "max_depth")`` -> ``"model.params.max_depth"``; ints as ``[i]``."""
    return _dotted(path)
