"""Print check results in one of four formats, all reading the same ``FileResult`` list.

``text`` (a human report with a code frame; colour through rich on a terminal, plain text when
piped), ``json`` (DESIGN.md's stable shape), ``sarif`` (SARIF 2.1.0 for code-scanning uploads)
and ``github`` (workflow annotation lines). rich is imported only when colour is wanted, so CI
runs stay fast.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Collection
from typing import Any, TextIO

from mlspec.errors import Diagnostic, Severity
from mlspec.lint import FileResult
from mlspec.lint.codes import describe
from mlspec.lint.secrets import SECRET_CODE

FORMATS = ("text", "json", "sarif", "github")
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFO_URI = "https://github.com/mlspec/mlspec/blob/main/docs/spec.md"


def passes(result: FileResult, strict: bool) -> bool:
    """A file passes with no errors, and with no warnings under ``strict``."""
    return result.errors == 0 and not (strict and result.warnings)


def _hint_suffix(d: Diagnostic) -> str:
    return f" ({d.hint})" if d.hint else ""


# --- text -------------------------------------------------------------------------------------
_STYLES = {"error": "bold red", "warning": "bold yellow", "info": "bold blue",
           "path": "bold", "hint": "cyan", "frame": "dim", "caret": "bold red", "ok": "green"}
Segment = tuple[str, str | None]


def render_text(results: list[FileResult], strict: bool, out: TextIO) -> None:
    lines: list[list[Segment]] = []
    for result in results:
        if not result.diagnostics:
            lines.append([(result.path, "path"), (": ok", "ok")])
        for d in result.diagnostics:
            lines.extend(_text_diagnostic(result, d))
    errors = sum(r.errors for r in results)
    warnings = sum(r.warnings for r in results)
    failed = sum(not passes(r, strict) for r in results)
    summary = (f"{len(results)} file{'s' * (len(results) != 1)} checked: "
               f"{errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}")
    if failed:
        summary += f"; {failed} invalid" + (" (--strict)" if strict and not errors else "")
    lines.append([(summary, "error" if failed else "ok")])
    _emit(lines, out)


def _text_diagnostic(result: FileResult, d: Diagnostic) -> list[list[Segment]]:
    where = f"{result.path}:{d.line or 1}:{d.column or 1}:"
    sev = d.severity.value
    out: list[list[Segment]] = [[(where, "path"), (" ", None), (sev, sev), (f" {d.code} ", sev),
                                 (d.message, None)]]
    if d.hint:
        out.append([("  hint: ", "hint"), (d.hint, "hint")])
    secrets = {s.line for s in result.diagnostics if s.code == SECRET_CODE}
    out.extend(_code_frame(result.lines, d.line, d.column, secrets))
    return out


# A YAML line's key part (indent, list dash, key, colon): what a redacted line keeps.
_KEY_PART = re.compile(r"\s*(?:-\s+)?(?:[^:#'\"\s][^:#]*|'[^']*'|\"[^\"]*\"):(?=\s|$)")


def redact(text: str) -> str:
    """A line holding a credential, as the code frame shows it: its key, never its value."""
    key = _KEY_PART.match(text)
    kept = key.group(0) if key else text[:len(text) - len(text.lstrip())]
    return f"{kept} <redacted>"


def _code_frame(lines: list[str], line: int | None, column: int | None,
                secrets: Collection[int | None] = ()) -> list[list[Segment]]:
    """The line before and the line of the diagnostic, numbered, with a caret at the column; a
    line where MLS233 found a credential shows its key only (CI logs are read by many)."""
    if not line or not lines or line > len(lines):
        return []
    width = len(str(line))
    frame: list[list[Segment]] = []
    for number in range(max(1, line - 1), line + 1):
        text = lines[number - 1][:200].replace("\t", " ")
        if number in secrets:
            text = redact(text)
        marker = ">" if number == line else " "
        frame.append([(f"  {marker} {number:>{width}} | ", "frame"), (text, None)])
    caret = " " * (max(column or 1, 1) - 1) + "^"
    frame.append([(f"    {' ' * width} | ", "frame"), (caret, "caret")])
    return frame


def _emit(lines: list[list[Segment]], out: TextIO) -> None:
    colour = out is sys.stdout and (out.isatty() or bool(os.environ.get("FORCE_COLOR"))) \
        and not os.environ.get("NO_COLOR")
    if not colour:
        out.write("".join("".join(text for text, _ in line) + "\n" for line in lines))
        return
    from rich.console import Console
    from rich.text import Text

    console = Console(file=out, highlight=False, soft_wrap=True)
    for line in lines:
        parts = [(text, _STYLES.get(style or "", "")) for text, style in line]
        console.print(Text.assemble(*parts))


# --- json -------------------------------------------------------------------------------------
def json_report(results: list[FileResult], strict: bool) -> dict[str, Any]:
    """DESIGN.md's stable JSON shape."""
    return {
        "version": 1,
        "files": [{"path": r.path, "valid": passes(r, strict),
                   "diagnostics": [d.to_dict() for d in r.diagnostics]} for r in results],
        "summary": {"files": len(results), "errors": sum(r.errors for r in results),
                    "warnings": sum(r.warnings for r in results)},
    }


def render_json(results: list[FileResult], strict: bool, out: TextIO) -> None:
    out.write(json.dumps(json_report(results, strict), indent=2) + "\n")


# --- sarif ------------------------------------------------------------------------------------
_SARIF_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}


def sarif_report(results: list[FileResult]) -> dict[str, Any]:
    """A SARIF 2.1.0 log with one run; the rules are those that produced a result."""
    from mlspec import __version__

    diagnostics = [(r, d) for r in results for d in r.diagnostics]
    codes = sorted({d.code for _, d in diagnostics})
    index = {code: i for i, code in enumerate(codes)}
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "mlspec", "version": __version__,
                                "informationUri": INFO_URI,
                                "rules": [_sarif_rule(code) for code in codes]}},
            "columnKind": "unicodeCodePoints",
            "results": [_sarif_result(r, d, index[d.code]) for r, d in diagnostics],
        }],
    }


def _sarif_rule(code: str) -> dict[str, Any]:
    name, severity, doc = describe(code)
    summary = doc.split("\n", 1)[0]
    return {
        "id": code,
        "name": "".join(part.capitalize() for part in name.replace(".", "-").split("-")),
        "shortDescription": {"text": summary},
        "fullDescription": {"text": doc},
        "help": {"text": doc},
        "helpUri": f"{INFO_URI}#{code.lower()}",
        "defaultConfiguration": {"level": _SARIF_LEVEL[severity]},
    }


def _sarif_result(result: FileResult, d: Diagnostic, rule_index: int) -> dict[str, Any]:
    uri = _artifact_uri(result.path)
    location: dict[str, Any] = {
        "physicalLocation": {
            "artifactLocation": {"uri": uri},
            "region": {"startLine": d.line or 1, "startColumn": d.column or 1},
        },
    }
    if d.path:
        location["logicalLocations"] = [{"fullyQualifiedName": d.path, "kind": "member"}]
    return {
        "ruleId": d.code,
        "ruleIndex": rule_index,
        "level": _SARIF_LEVEL[d.severity],
        "message": {"text": d.message + _hint_suffix(d)},
        "locations": [location],
    }


def _artifact_uri(path: str) -> str:
    """Relative paths stay relative (code scanning resolves them); absolute ones become file:."""
    if path == "-":
        return "stdin"
    if os.path.isabs(path):
        from pathlib import Path

        return Path(path).as_uri()
    from urllib.parse import quote

    return quote(path.replace(os.sep, "/"))


def render_sarif(results: list[FileResult], strict: bool, out: TextIO) -> None:
    out.write(json.dumps(sarif_report(results), indent=2) + "\n")


# --- github -----------------------------------------------------------------------------------
_GITHUB_COMMAND = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}


def escape_data(text: str) -> str:
    """Escape a workflow command's message as the Actions runner expects."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """Escape a workflow command property value (``:`` and ``,`` separate properties)."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def render_github(results: list[FileResult], strict: bool, out: TextIO) -> None:
    for result in results:
        for d in result.diagnostics:
            props = ",".join(f"{key}={escape_property(str(value))}" for key, value in (
                ("file", result.path), ("line", d.line or 1), ("col", d.column or 1),
                ("title", d.code)))
            out.write(f"::{_GITHUB_COMMAND[d.severity]} {props}::"
                      f"{escape_data(d.message + _hint_suffix(d))}\n")


RENDERERS = {
    "text": render_text,
    "json": render_json,
    "sarif": render_sarif,
    "github": render_github,
}
