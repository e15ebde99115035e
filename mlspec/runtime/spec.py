"""Reading the resolved spec a step receives: a JSON/YAML file or an inline JSON string."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from mlspec.runtime.errors import StepError, first_line
from mlspec.spec.models import Project


def load_project(spec: str | dict[str, Any] | Project) -> Project:
    """The project of a resolved spec given as a path, an inline JSON string, a dict or a model.

    Raises:
        StepError: the spec cannot be read or is not a valid mlspec project.
    """
    if isinstance(spec, Project):
        return spec
    data = spec if isinstance(spec, dict) else _read(spec)
    data = {k: v for k, v in data.items() if k != "profiles"}
    from pydantic import ValidationError

    try:
        return Project.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise StepError(f"invalid spec at {where}: {first['msg']}"
                        + (f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else "")
                        ) from None


def _read(spec: str) -> dict[str, Any]:
    text = spec.strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise StepError(f"--spec is not valid JSON: {exc}") from None
    else:
        path = Path(spec)
        try:
            raw = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise StepError(f"cannot read spec {spec}: {exc.strerror or exc}") from None
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            try:
                data = yaml.safe_load(raw)
            except yaml.YAMLError as exc:
                raise StepError(f"spec {spec} is not valid YAML: {first_line(exc)}") from None
        else:
            try:
                data = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise StepError(f"spec {spec} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise StepError("the spec must be a mapping (a JSON object)")
    return data


def spec_sha256(project: Project) -> str:
    """A stable hash of the resolved spec (canonical JSON), whatever form it arrived in."""
    canonical = json.dumps(project.model_dump(mode="json", exclude={"profiles"}),
                           sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()
