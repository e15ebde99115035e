"""Semantic lint rules over a validated spec, and the whole check of one file.

``lint(project, doc, file)`` runs every rule of :data:`mlspec.lint.rules.RULES` and positions
each finding at its spec path in the YAML. ``check_file(path)`` is what ``mlspec validate`` runs:
read, parse, validate the schema, lint, and do the same for every profile merged over the base.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mlspec.errors import Diagnostic, Severity, sort_key
from mlspec.spec.models import Project
from mlspec.spec.yamlpos import PositionedYaml, dotted

INTERNAL_ERROR = "MLS299"


def lint(project: Project, doc: PositionedYaml, file: str | None = None) -> list[Diagnostic]:
    """Run every lint rule; one positioned diagnostic per finding, sorted by position."""
    from mlspec.lint.base import Context
    from mlspec.lint.rules import RULES

    ctx = Context(project, doc)
    out: list[Diagnostic] = []
    for rule in RULES:
        try:
            findings = list(rule.check(ctx))
        except Exception as exc:  # noqa: BLE001 - a rule bug must not crash validation
            out.append(Diagnostic(INTERNAL_ERROR, Severity.ERROR,
                                  f"internal error in lint rule {rule.code} ({rule.name}): "
                                  f"{type(exc).__name__}: {exc}", "", 1, 1, None, file))
            continue
        for finding in findings:
            pos = doc.position_of(finding.path)
            out.append(Diagnostic(rule.code, rule.severity, finding.message, dotted(finding.path),
                                  pos.line, pos.column, finding.hint, file))
    return sorted(out, key=sort_key)


@dataclass
class FileResult:
    """Everything ``validate`` found in one file."""

    path: str
    diagnostics: list[Diagnostic] = field(default_factory=list)
    unreadable: bool = False
    project: Project | None = None
    lines: list[str] = field(default_factory=list)

    @property
    def errors(self) -> int:
        return sum(d.severity is Severity.ERROR for d in self.diagnostics)

    @property
    def warnings(self) -> int:
        return sum(d.severity is Severity.WARNING for d in self.diagnostics)

    @property
    def valid(self) -> bool:
        return self.errors == 0


def check_file(path: str, profile: str | None = None) -> FileResult:
    """Schema + lint for one spec file; without ``profile``, every profile is checked too.

    Raises:
        UsageError: when ``profile`` names no profile of the spec.
    """
    from mlspec.spec.loader import load_spec

    loaded = load_spec(path, profile)
    result = FileResult(path, list(loaded.diagnostics), loaded.unreadable, loaded.project)
    doc = loaded.doc
    if doc is None:
        return result
    result.lines = doc.lines
    if loaded.project is not None:
        result.diagnostics.extend(lint(loaded.project, doc, path))
    if profile is None:
        result.diagnostics.extend(_check_profiles(doc, path, result.diagnostics))
    result.diagnostics.sort(key=sort_key)
    return result


def _check_profiles(doc: PositionedYaml, path: str, seen: list[Diagnostic]) -> list[Diagnostic]:
    """Validate and lint each profile merged over the base; report only what is new."""
    from mlspec.spec.loader import apply_profile, validate_data

    profiles = doc.data.get("profiles")
    if not isinstance(profiles, dict):
        return []
    keys = {_key(d) for d in seen}
    out: list[Diagnostic] = []
    for name in profiles:
        if not isinstance(profiles[name], dict):
            continue  # the schema reports it on the base
        data, positions = apply_profile(doc, name)
        view = PositionedYaml(data, positions, doc.lines)
        project, diagnostics = validate_data(data, view, path)
        if project is not None:
            diagnostics = diagnostics + lint(project, view, path)
        overlay = {pos for p, pos in doc.positions.items() if p[:2] == ("profiles", name)}
        for d in diagnostics:
            if _key(d) in keys:
                continue
            keys.add(_key(d))
            in_overlay = any(pos.line == d.line and pos.column == d.column for pos in overlay)
            spec_path = f"profiles.{name}.{d.path}" if in_overlay and d.path else d.path
            out.append(Diagnostic(d.code, d.severity, f"profile '{name}': {d.message}", spec_path,
                                  d.line, d.column, d.hint, path))
    return out


def _key(d: Diagnostic) -> tuple[str, int | None, int | None, str]:
    return (d.code, d.line, d.column, d.message)
