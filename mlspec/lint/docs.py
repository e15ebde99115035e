"""Generate the parts of ``docs/spec.md`` that must match the code: the field reference (from
the pydantic models) and the table of diagnostic codes (from the rule registry).

    .venv/bin/python -m mlspec.lint.docs docs/spec.md     # rewrite the generated blocks
    .venv/bin/python -m mlspec.lint.docs --check docs/spec.md

A test runs ``--check``, so the docs cannot drift from the models or the rules.
"""

from __future__ import annotations

import json
import re
import sys
import types
import typing
from pathlib import Path
from typing import Any

from annotated_types import Ge, Gt, Le, Lt, MaxLen, MinLen
from pydantic import BaseModel, StringConstraints
from pydantic_core import PydanticUndefined

from mlspec.spec import models as m
from mlspec.spec.descriptions import FIELD_DESCRIPTIONS as MEANINGS

BEGIN = "<!-- BEGIN GENERATED: {} (python -m mlspec.lint.docs docs/spec.md) -->"
END = "<!-- END GENERATED: {} -->"
_SCALARS = {str: "string", int: "integer", float: "number", bool: "boolean", Any: "any",
            type(None): "null"}


def _is_model(t: Any) -> bool:
    return isinstance(t, type) and issubclass(t, BaseModel)


def _constraints(meta: list[Any]) -> list[str]:
    out = []
    for c in meta:
        if isinstance(c, Ge):
            out.append(f"≥ {c.ge:g}")
        elif isinstance(c, Gt):
            out.append(f"> {c.gt:g}")
        elif isinstance(c, Le):
            out.append(f"≤ {c.le:g}")
        elif isinstance(c, Lt):
            out.append(f"< {c.lt:g}")
        elif isinstance(c, MaxLen):
            out.append(f"at most {c.max_length} long")
        elif isinstance(c, MinLen) and c.min_length:
            out.append("non-empty")
        elif isinstance(c, StringConstraints):
            if c.pattern == m.DNS_LABEL:
                out.append("DNS label")
            elif c.pattern == m.QUANTITY:
                out.append("quantity")
            elif c.pattern == m.DURATION:
                out.append("duration")
            elif c.pattern:
                out.append(f"pattern `{c.pattern}`")
            if c.max_length:
                out.append(f"≤ {c.max_length} chars")
            if c.min_length:
                out.append("non-empty")
        elif hasattr(c, "metadata"):  # pydantic FieldInfo-like carriers
            out.extend(_constraints(list(c.metadata)))
    return out


def type_name(ann: Any) -> str:
    """A short human name of an annotation, with links to nested sections."""
    origin, args = typing.get_origin(ann), typing.get_args(ann)
    if origin is typing.Annotated:
        extra = _constraints(list(args[1:]))
        return type_name(args[0]) + (f" ({', '.join(extra)})" if extra else "")
    if origin in (typing.Union, types.UnionType):
        names = [type_name(a) for a in args if a is not type(None)]
        return " or ".join(names)
    if origin is typing.Literal:
        return " \\| ".join(f"`{v}`" for v in args)
    if origin is list:
        return f"list of {type_name(args[0])}" if args else "list"
    if origin is dict:
        return f"mapping of {type_name(args[0])} → {type_name(args[1])}"
    if _is_model(ann):
        return f"[{ann.__name__}](#{ann.__name__.lower()})"
    return _SCALARS.get(ann, getattr(ann, "__name__", str(ann)))


def field_type(field: Any) -> str:
    """The field's type, with constraints pydantic moved from the annotation to the field."""
    extra = _constraints(list(field.metadata))
    return type_name(field.annotation) + (f" ({', '.join(extra)})" if extra else "")


def default_text(field: Any) -> str:
    if field.is_required():
        return "**required**"
    value = field.default_factory() if field.default_factory else field.default
    if value is PydanticUndefined or value is None:
        return "—"
    if isinstance(value, BaseModel):
        return "(section defaults)"
    return f"`{json.dumps(value)}`" if not isinstance(value, str) else f"`{value}`"


def _walk(model: type[BaseModel], path: str, seen: dict[type[BaseModel], str]) -> None:
    seen.setdefault(model, path)
    for name, field in model.model_fields.items():
        for nested, suffix in _nested(field.annotation):
            if nested not in seen:
                _walk(nested, f"{path}.{name}{suffix}".lstrip("."), seen)


def _nested(ann: Any, suffix: str = "") -> list[tuple[type[BaseModel], str]]:
    origin, args = typing.get_origin(ann), typing.get_args(ann)
    if origin is typing.Annotated:
        return _nested(args[0], suffix)
    if origin in (typing.Union, types.UnionType):
        return [n for a in args for n in _nested(a, suffix)]
    if origin is list and args:
        return _nested(args[0], suffix + "[]")
    if origin is dict and len(args) == 2:
        return _nested(args[1], suffix + ".NAME")
    return [(ann, suffix)] if _is_model(ann) else []


def fields_markdown() -> str:
    """One table per section, in the order the spec reads."""
    sections: dict[type[BaseModel], str] = {}
    _walk(m.Project, "", sections)
    out = []
    for model, path in sections.items():
        title = f"`{path}`" if path else "top level"
        out.append(f"### {model.__name__}\n\n{title}\n")
        out.append("| field | type | default | meaning |\n| --- | --- | --- | --- |")
        for name, field in model.model_fields.items():
            meaning = field.description or MEANINGS.get(f"{model.__name__}.{name}", "")
            out.append(f"| `{name}` | {field_type(field)} | {default_text(field)} | {meaning} |")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def rules_markdown() -> str:
    """The table of every diagnostic code, from the loader's codes and the rule registry."""
    from mlspec.lint.codes import all_codes

    lines = ["| code | name | severity | what it reports |", "| --- | --- | --- | --- |"]
    for code, (name, severity, doc) in all_codes().items():
        summary = doc.splitlines()[0].replace("|", "\\|")
        lines.append(f"| <a id=\"{code.lower()}\"></a>`{code}` | {name} | {severity.value} | "
                     f"{summary} |")
    return "\n".join(lines) + "\n"


def missing_meanings() -> list[str]:
    sections: dict[type[BaseModel], str] = {}
    _walk(m.Project, "", sections)
    return [f"{model.__name__}.{name}" for model in sections
            for name, field in model.model_fields.items()
            if not field.description and f"{model.__name__}.{name}" not in MEANINGS]


def render(text: str) -> str:
    """``text`` with every generated block replaced by its current content."""
    for block, content in (("fields", fields_markdown()), ("rules", rules_markdown())):
        pattern = re.compile(re.escape(BEGIN.format(block)) + r".*?" + re.escape(END.format(block)),
                             re.S)
        if not pattern.search(text):
            raise ValueError(f"docs lack the generated block '{block}'")
        replacement = f"{BEGIN.format(block)}\n{content}{END.format(block)}"
        text = pattern.sub(lambda _match: replacement, text, count=1)  # noqa: B023 - used at once
    return text


def main(argv: list[str]) -> int:
    check = "--check" in argv
    paths = [a for a in argv if a != "--check"] or ["docs/spec.md"]
    path = Path(paths[0])
    current = path.read_text(encoding="utf-8")
    fresh = render(current)
    if check:
        if fresh != current:
            print(f"{path} is out of date: run python -m mlspec.lint.docs {path}", file=sys.stderr)
            return 1
        return 0
    path.write_text(fresh, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
