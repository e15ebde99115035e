"""``mlspec init``: write a starter ``mlproject.yaml`` from a template that is known to validate."""

from __future__ import annotations

import os
import re
import sys
import tempfile
from pathlib import Path

from mlspec.errors import UsageError
from mlspec.resources import templates_dir

TEMPLATES = ("classification", "regression", "torch")
DEFAULT_NAMES = {"classification": "iris-classifier", "regression": "diabetes-regressor",
                 "torch": "wine-torch"}
NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
MAX_NAME = 40


def render_template(template: str, name: str, file_name: str = "mlproject.yaml") -> str:
    """The starter spec's text for ``template`` with ``metadata.name`` set to ``name``."""
    import jinja2

    if template not in TEMPLATES:
        raise UsageError(f"unknown template '{template}' (templates: {', '.join(TEMPLATES)})")
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir() / "init")),
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)
    return env.get_template(f"{template}.yaml.j2").render(name=name, file_name=file_name)


def check_name(name: str) -> str:
    """``name`` when it is a DNS-1123 label of at most 40 characters; else UsageError."""
    if len(name) > MAX_NAME or not NAME_RE.match(name):
        raise UsageError(f"--name '{name}' is not a valid project name: use at most {MAX_NAME} "
                         "lower-case letters, digits and '-', starting and ending with a letter "
                         "or digit (it names Kubernetes objects)")
    return name


def default_name(path: str, template: str) -> str:
    """A name from the folder the spec goes into, when that makes a valid label."""
    folder = Path(path).resolve().parent.name if path != "-" else ""
    candidate = re.sub(r"[^a-z0-9]+", "-", folder.lower()).strip("-")[:MAX_NAME].strip("-")
    if candidate and NAME_RE.match(candidate):
        return candidate
    return DEFAULT_NAMES[template]


def init_command(template: str, path: str, name: str | None = None, force: bool = False) -> int:
    """Write the starter spec to ``path`` (``-`` for stdout).

    Returns:
        0 when written; 1 when the rendered spec would not validate (a bug).

    Raises:
        UsageError: an invalid name, an unknown template, or an existing file without --force.
    """
    project_name = check_name(name) if name is not None else default_name(path, template)
    target = Path(path)
    text = render_template(template, project_name, target.name if path != "-" else "mlproject.yaml")
    problems = _problems(text)
    if problems:
        print(f"error: the {template} template does not validate: {problems[0]}", file=sys.stderr)
        return 1
    if path == "-":
        sys.stdout.write(text)
        return 0
    if target.is_dir():
        raise UsageError(f"{path} is a directory; give a file path such as {path}/mlproject.yaml")
    if target.exists() and not force:
        raise UsageError(f"{path} already exists; use --force to overwrite it")
    target.parent.mkdir(parents=True, exist_ok=True)
    _write_atomically(target, text)
    print(f"wrote {path} ({template} template, name {project_name}); "
          f"check it with: mlspec validate {path} (for a cluster: --strict --profile prod)")
    return 0


def _problems(text: str) -> list[str]:
    """Errors (and warnings) of the rendered text, checked the way validate checks a file, but
    for this machine: the starter's sqlite registry is right for ``mlspec run`` (MLS232 is for
    the cluster, which its ``prod`` profile covers)."""
    from mlspec.lint import lint
    from mlspec.lint.registry import CLUSTER_ONLY
    from mlspec.spec.loader import validate_data
    from mlspec.spec.yamlpos import YamlProblem, parse

    try:
        doc = parse(text)
    except YamlProblem as problem:
        return [problem.diagnostic.message]
    project, diagnostics = validate_data(doc.data, doc, "<template>")
    if project is not None:
        diagnostics += lint(project, doc)
    return [f"{d.code} {d.message}" for d in doc.warnings + diagnostics
            if d.code not in CLUSTER_ONLY]


def _write_atomically(target: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
