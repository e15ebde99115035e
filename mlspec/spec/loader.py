"""File -> positioned YAML -> (profile overlay) -> ``Project``, with positioned diagnostics.

Nothing here raises on bad input: every problem becomes a ``Diagnostic`` with a code, the spec
path, and the line and column in the file. ``load_spec`` is the one entry point.
"""

from __future__ import annotations

import hashlib
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path as FsPath
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from mlspec.errors import Diagnostic, Severity, UsageError, did_you_mean
from mlspec.spec import yamlpos
from mlspec.spec.models import Project
from mlspec.spec.yamlpos import Pos, PositionedYaml, YamlProblem, dotted

if TYPE_CHECKING:
    from pydantic_core import ErrorDetails

# Error codes of the schema layer (lint rules use MLS2xx and up).
UNREADABLE = "MLS001"
UNKNOWN_KEY = "MLS101"
MISSING_KEY = "MLS102"
WRONG_TYPE = "MLS103"
BAD_CHOICE = "MLS104"
OUT_OF_RANGE = "MLS105"
INVALID = "MLS100"

_TYPE_CODES = {
    "missing": MISSING_KEY,
    "extra_forbidden": UNKNOWN_KEY,
    "literal_error": BAD_CHOICE,
    "enum": BAD_CHOICE,
    "greater_than": OUT_OF_RANGE,
    "greater_than_equal": OUT_OF_RANGE,
    "less_than": OUT_OF_RANGE,
    "less_than_equal": OUT_OF_RANGE,
    "string_too_long": OUT_OF_RANGE,
    "string_too_short": OUT_OF_RANGE,
    "too_long": OUT_OF_RANGE,
    "too_short": OUT_OF_RANGE,
    "string_pattern_mismatch": INVALID,
}


@dataclass
class LoadedSpec:
    """The outcome of reading one spec file: the model when valid, and every diagnostic."""

    path: str
    project: Project | None
    diagnostics: list[Diagnostic] = field(default_factory=list)
    doc: PositionedYaml | None = None
    raw: bytes = b""
    profile: str | None = None
    unreadable: bool = False

    @property
    def valid(self) -> bool:
        return self.project is not None and not any(d.is_error for d in self.diagnostics)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.raw).hexdigest()


def read_spec_bytes(path: str) -> bytes:
    """Read a spec file (``-`` for stdin); raises OSError when it cannot be read."""
    if path == "-":
        import sys

        return sys.stdin.buffer.read(yamlpos.MAX_BYTES + 1)
    p = FsPath(path)
    if p.is_dir():
        raise IsADirectoryError(f"{path} is a directory")
    with p.open("rb") as fh:
        return fh.read(yamlpos.MAX_BYTES + 1)


def parse_document(path: str) -> tuple[PositionedYaml | None, bytes, list[Diagnostic], bool]:
    """Read and parse one file: (document, raw bytes, diagnostics, unreadable?)."""
    try:
        raw = read_spec_bytes(path)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        return (
            None,
            b"",
            [
                Diagnostic(
                    UNREADABLE, Severity.ERROR, f"cannot read {path}: {reason}", "", 1, 1, file=path
                )
            ],
            True,
        )
    try:
        doc = yamlpos.parse(yamlpos.decode(raw))
    except YamlProblem as problem:
        return None, raw, [_with_file(problem.diagnostic, path)], False
    return doc, raw, [_with_file(d, path) for d in doc.warnings], False


def load_spec(path: str, profile: str | None = None) -> LoadedSpec:
    """Read, parse and validate one spec, applying ``profile`` when given.

    Raises:
        UsageError: when ``profile`` names no profile of the spec.
    """
    doc, raw, diagnostics, unreadable = parse_document(path)
    result = LoadedSpec(path, None, diagnostics, doc, raw, profile, unreadable)
    if doc is None:
        return result
    data, positions = doc.data, doc.positions
    if profile is not None:
        data, positions = apply_profile(doc, profile)
    view = PositionedYaml(data, positions, doc.lines)
    project, errors = validate_data(data, view, path)
    result.project = project
    result.diagnostics.extend(errors)
    result.doc = view
    return result


# --- profiles ---------------------------------------------------------------------------------
def apply_profile(doc: PositionedYaml, name: str) -> tuple[dict[str, Any], dict[Any, Pos]]:
    """Deep-merge profile ``name`` over the base.

    Positions of overlaid values point at the profile's lines.
    """
    profiles = doc.data.get("profiles")
    if not isinstance(profiles, dict) or name not in profiles:
        names = sorted(profiles) if isinstance(profiles, dict) else []
        hint = did_you_mean(name, names)
        known = f" (profiles: {', '.join(names)})" if names else " (the spec defines no profiles)"
        raise UsageError(f"unknown profile '{name}'{known}" + (f"; {hint}" if hint else ""))
    overlay = profiles[name]
    if not isinstance(overlay, dict):
        return doc.data, doc.positions  # the schema reports the wrong type
    merged = deep_merge({k: v for k, v in doc.data.items() if k != "profiles"}, overlay)
    positions = dict(doc.positions)
    prefix = ("profiles", name)
    for path, pos in doc.positions.items():
        if path[:2] == prefix and len(path) > 2:
            positions[path[2:]] = pos
    return merged, positions


def deep_merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """Mappings merge key by key; any other value (lists included) replaces the base's."""
    out = dict(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


# --- pydantic errors -> diagnostics ------------------------------------------------------------
def validate_data(
    data: dict[str, Any], doc: PositionedYaml, file: str
) -> tuple[Project | None, list[Diagnostic]]:
    """Validate plain data against ``Project``; on failure, positioned diagnostics."""
    try:
        return Project.model_validate(data), []
    except ValidationError as exc:
        return None, _diagnostics_from(exc, data, doc, file)


def _diagnostics_from(
    exc: ValidationError, data: Any, doc: PositionedYaml, file: str
) -> list[Diagnostic]:
    grouped: dict[tuple[Any, ...], list[ErrorDetails]] = {}
    for err in exc.errors(include_url=False):
        path = _data_path(err["loc"], data, err["type"])
        grouped.setdefault(path, []).append(err)
    out = []
    for path, errs in grouped.items():
        pos = doc.position_of(path)
        out.append(_one_diagnostic(path, errs, pos, file))
    return out


def _data_path(loc: tuple[Any, ...], data: Any, err_type: str) -> tuple[Any, ...]:
    """Keep the parts of pydantic's ``loc`` that index the data; drop union and validator tags."""
    path: list[Any] = []
    node = data
    for i, part in enumerate(loc):
        if isinstance(node, dict) and isinstance(part, str) and part in node:
            path.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            path.append(part)
            node = node[part]
        elif err_type == "missing" and i == len(loc) - 1 and isinstance(node, dict):
            path.append(part)
        # anything else is a tag pydantic adds ('str', 'list[str]', '[key]', ...)
    return tuple(path)


def _one_diagnostic(
    path: tuple[Any, ...], errs: list[ErrorDetails], pos: Pos, file: str
) -> Diagnostic:
    err = errs[0]
    kind = err["type"]
    spec_path = dotted(path)
    hint = None
    if kind == "extra_forbidden":
        key = path[-1] if path else "?"
        allowed = allowed_keys(path[:-1])
        hint = did_you_mean(str(key), allowed)
        if not hint and allowed:
            hint = "allowed keys: " + ", ".join(sorted(allowed))
        message = f"unknown key '{key}'" + (f" in '{dotted(path[:-1])}'" if len(path) > 1 else "")
    elif kind == "missing":
        parent = dotted(path[:-1]) or "the top level"
        message = f"missing required key '{path[-1]}' in {parent}"
    elif kind in ("literal_error", "enum"):
        expected = err.get("ctx", {}).get("expected", "")
        given = err.get("input")
        message = f"'{spec_path}' must be one of {expected}; got {_show(given)}"
        choices = [c.strip(" '\"") for c in str(expected).replace(" or ", ",").split(",")]
        hint = did_you_mean(str(given), choices)
    elif kind in ("model_type", "model_attributes_type", "dict_type"):
        message = f"'{spec_path}' must be a mapping of keys; got {_show(err.get('input'))}"
        hint = (
            "the key has no value; give it one or remove it" if err.get("input") is None else None
        )
    else:
        messages = []
        for e in errs:
            msg = e["msg"]
            if msg not in messages:
                messages.append(msg)
        joined = (
            messages[0]
            if len(messages) == 1
            else "invalid value (" + "; or ".join(messages[:4]) + ")"
        )
        message = f"'{spec_path}': {joined[0].lower()}{joined[1:]}; got {_show(err.get('input'))}"
        hint = _type_hint(kind, err.get("input"))
    code = _TYPE_CODES.get(
        kind, WRONG_TYPE if kind.endswith("_type") or kind.endswith("_parsing") else INVALID
    )
    return Diagnostic(code, Severity.ERROR, message, spec_path, pos.line, pos.column, hint, file)


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _type_hint(kind: str, given: Any) -> str | None:
    if kind == "string_type" and isinstance(given, (int, float, bool)):
        return (
            f"quote it if you mean the text: '{given}'"
            if not isinstance(given, bool)
            else "YAML read this as a boolean; quote it if you mean the text"
        )
    if kind == "bool_type" and isinstance(given, str):
        return "write true or false (YAML 1.2: yes/no/on/off are strings)"
    if kind in ("int_type", "float_type") and isinstance(given, str):
        return "write the number without quotes"
    return None


def allowed_keys(path: tuple[Any, ...]) -> list[str]:
    """Field names of the section at ``path`` (for "did you mean" on unknown keys)."""
    annotation: Any = Project
    for part in path:
        annotation = _step(annotation, part)
        if annotation is None:
            return []
    for member in _members(annotation):
        if isinstance(member, type) and issubclass(member, BaseModel):
            return list(member.model_fields)
    return []


def _members(annotation: Any) -> list[Any]:
    """The alternatives of an annotation, with ``Annotated`` and ``X | None`` unwrapped."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _members(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [m for arg in typing.get_args(annotation) for m in _members(arg)]
    return [annotation]


def _step(annotation: Any, part: Any) -> Any:
    """The annotation one level down, following a field, a dict value or a list item."""
    for member in _members(annotation):
        origin, args = typing.get_origin(member), typing.get_args(member)
        if (
            isinstance(member, type)
            and issubclass(member, BaseModel)
            and part in member.model_fields
        ):
            return member.model_fields[part].annotation
        if origin is dict and isinstance(part, str) and len(args) == 2:
            return args[1]
        if origin is list and isinstance(part, int) and args:
            return args[0]
    return None


def _with_file(d: Diagnostic, file: str) -> Diagnostic:
    return Diagnostic(d.code, d.severity, d.message, d.path, d.line, d.column, d.hint, file)
