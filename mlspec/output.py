"""``mlspec compile``: spec -> lint -> graph -> target renderers -> files, written atomically.

Everything is rendered in memory first; then the files, ``kustomization.yaml`` and
``manifest.json`` go to a temporary folder beside the destination, which is swapped in with
renames. A failed or interrupted compile therefore leaves the previous output as it was.
On Linux the swap itself is one atomic ``renameat2(RENAME_EXCHANGE)``.
The same spec gives byte-identical output (sorted keys, no timestamps, no absolute paths).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from mlspec.errors import Diagnostic, Severity, SpecError, UsageError, did_you_mean
from mlspec.targets import PIPELINE_TARGETS, TARGETS, OutputFile, renderer

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2
MANIFEST, KUSTOMIZATION = "manifest.json", "kustomization.yaml"
# Targets every compile writes besides the spec's pipeline engines.
ALWAYS_TARGETS = ("serving", "monitoring")


@dataclass
class Compiled:
    """What a compile produced, before or after it was written."""

    name: str
    files: list[OutputFile]
    targets: list[str]


def compile_command(spec: str, output: str | None, targets: list[str], profile: str | None,
                    strict: bool = False) -> int:
    """The ``mlspec compile`` command: returns the exit code.

    Raises:
        UsageError: unknown profile or target, or an output folder that is not ours.
    """
    loaded, refused = load_checked(spec, profile, strict)
    if refused is not None:
        return refused
    dest = Path(output) if output else Path("build") / loaded.project.metadata.name
    compiled = compile_loaded(loaded, spec, targets, profile, strict)
    if compiled is None:
        return EXIT_INVALID
    if not write_or_report(dest, compiled.files):
        return EXIT_USAGE
    print(f"compiled {compiled.name} -> {dest} ({len(compiled.files)} files; "
          f"targets: {', '.join(compiled.targets)})")
    return EXIT_OK


def load_checked(spec: str, profile: str | None, strict: bool = False):
    """Read, validate and lint a spec for a command, printing its diagnostics (with code
    frames). Returns ``(loaded, None)`` when the spec may be used, else ``(loaded, exit code)``:
    EXIT_USAGE when it cannot be read, EXIT_INVALID when it has errors (or warnings and
    ``strict``). What ``compile``, ``run`` and ``submit`` all do first.

    Raises:
        UsageError: unknown profile.
    """
    from mlspec.spec.loader import load_spec

    loaded = load_spec(spec, profile)
    if loaded.unreadable:
        print_diagnostics(loaded.diagnostics, spec)
        return loaded, EXIT_USAGE
    diagnostics = check_spec(loaded, spec)
    if diagnostics:
        print_diagnostics(diagnostics, spec, _lines(loaded), strict)
    failing = any(d.is_error or (strict and d.severity is Severity.WARNING) for d in diagnostics)
    if failing or loaded.project is None:
        return loaded, EXIT_INVALID
    return loaded, None


def compile_loaded(loaded, spec: str, targets: list[str], profile: str | None,
                   strict: bool = False) -> Compiled | None:
    """Render a checked spec's targets; a value a target cannot carry is printed at its line
    and None returned."""
    try:
        return compile_project(loaded.project, targets, spec_sha256=loaded.sha256,
                               spec_name=Path(spec).name, profile=profile)
    except SpecError as exc:
        print_diagnostics(positioned(exc.diagnostics, loaded), spec, _lines(loaded), strict)
        return None


def render_checked(loaded, target: str) -> list[OutputFile] | None:
    """One target's files for a checked spec (what ``submit`` sends); a value the target cannot
    carry is printed at its line, as ``compile`` prints it, and None returned."""
    from mlspec.graph import build_graph

    try:
        return renderer(target)(loaded.project, build_graph(loaded.project))
    except SpecError as exc:
        print_diagnostics(positioned(exc.diagnostics, loaded), loaded.path, _lines(loaded))
        return None


def write_or_report(dest: Path, files: list[OutputFile]) -> bool:
    """Write the files atomically at ``dest``; an I/O error is one line on stderr (False)."""
    try:
        write_atomically(dest, files)
    except OSError as exc:
        print(f"error: cannot write {dest}: {exc.strerror or exc}", file=sys.stderr)
        return False
    return True


def positioned(diagnostics: list[Diagnostic], loaded) -> list[Diagnostic]:
    """Give a renderer's diagnostics (spec path only) the line and column of that path."""
    import dataclasses

    if loaded.doc is None:
        return list(diagnostics)
    out = []
    for d in diagnostics:
        if d.line is None and d.path:
            pos = loaded.doc.position_of(d.keys or tuple(d.path.split(".")))
            d = dataclasses.replace(d, line=pos.line, column=pos.column, file=loaded.path)
        out.append(d)
    return out


def _lines(loaded) -> list[str]:
    return list(loaded.doc.lines) if loaded.doc is not None else []


def check_spec(loaded, spec_path: str) -> list[Diagnostic]:
    """Schema diagnostics plus the lint rules'."""
    from mlspec.lint import lint

    diagnostics = list(loaded.diagnostics)
    if loaded.project is None or any(d.is_error for d in diagnostics):
        return diagnostics
    diagnostics.extend(lint(loaded.project, loaded.doc, spec_path))
    return diagnostics


def select_targets(project, requested: list[str]) -> list[str]:
    """The targets to compile: ``--target`` ones, else the spec's engines + serving, monitoring.

    Raises:
        UsageError: for a name that is not a target (with a "did you mean" hint).
    """
    for name in requested:
        if name not in TARGETS:
            hint = did_you_mean(name, TARGETS)
            raise UsageError(f"unknown target {name!r}" + (f"; {hint}" if hint else "")
                             + f" (targets: {', '.join(TARGETS)})")
    if requested:
        wanted = set(requested)
    else:
        wanted = {t for t in project.targets if t in PIPELINE_TARGETS} | set(ALWAYS_TARGETS)
    # A stable order: the order of TARGETS.
    return [name for name in TARGETS if name in wanted]


def compile_project(project, requested: list[str], spec_sha256: str, spec_name: str,
                    profile: str | None = None) -> Compiled:
    """Render the selected targets and add ``kustomization.yaml`` and ``manifest.json``.

    Raises:
        UsageError: unknown target.
        SpecError: a target cannot express the spec.
    """
    from mlspec.graph import build_graph

    graph = build_graph(project)
    names, files = [], []
    for name in select_targets(project, requested):
        try:
            render = renderer(name)
        except ModuleNotFoundError:
            raise UsageError(f"target {name!r}: module {TARGETS[name]} is missing "
                             "(a broken install? reinstall mlspec)") from None
        files.extend(render(project, graph))
        names.append(name)
    _check_paths(files)
    files.append(OutputFile(KUSTOMIZATION, kustomization(files)))
    files.sort(key=lambda f: f.path)
    files.append(OutputFile(MANIFEST, manifest(files, spec_sha256, spec_name, profile, names)))
    return Compiled(project.metadata.name, files, names)


def _check_paths(files: list[OutputFile]) -> None:
    """Renderers must write distinct, relative paths inside the output folder."""
    seen: set[str] = set()
    for f in files:
        path = PurePosixPath(f.path)
        if path.is_absolute() or ".." in path.parts or str(path) in (MANIFEST, KUSTOMIZATION) \
                or "\\" in f.path or not f.path or str(path) != f.path:
            raise ValueError(f"renderer produced an invalid output path {f.path!r}")
        if f.path in seen:
            raise ValueError(f"two renderers write {f.path!r}")
        seen.add(f.path)


# --- kustomization and manifest ---------------------------------------------------------------
def kustomization(files: list[OutputFile]) -> str:
    """A ``kustomization.yaml`` listing every file that holds Kubernetes objects."""
    import yaml

    resources = sorted(f.path for f in files if is_kubernetes_manifest(f))
    doc = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
           "resources": resources}
    return yaml.safe_dump(doc, sort_keys=True, default_flow_style=False)


def is_kubernetes_manifest(f: OutputFile) -> bool:
    """True for YAML whose every document is an object ``kubectl apply`` can apply:
    ``apiVersion``, ``kind`` and ``metadata.name``.

    KFP IR, plain Prometheus rule files and promtool tests have no ``kind``; a PipelineRun with
    ``generateName`` is for ``kubectl create`` (each create a new run), so they all stay out.
    """
    import yaml

    if not f.path.endswith((".yaml", ".yml")):
        return False
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        docs = [d for d in yaml.load_all(f.content, Loader=loader) if d is not None]
    except yaml.YAMLError:
        return False
    return bool(docs) and all(isinstance(d, dict) and "apiVersion" in d and "kind" in d
                              and isinstance(d.get("metadata"), dict)
                              and d["metadata"].get("name") for d in docs)


def manifest(files: list[OutputFile], spec_sha256: str, spec_name: str, profile: str | None,
             targets: list[str]) -> str:
    """``manifest.json``: every file with its sha256, the spec's sha256 and mlspec's version."""
    from mlspec import __version__

    doc = {
        "mlspec_version": __version__,
        "spec": {"file": spec_name, "sha256": spec_sha256, "profile": profile},
        "targets": targets,
        "files": [{"path": f.path, "sha256": _sha256(f.content), "bytes": len(f.content.encode())}
                  for f in sorted(files, key=lambda f: f.path)],
    }
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --- atomic write -----------------------------------------------------------------------------
def write_atomically(dest: Path, files: list[OutputFile]) -> None:
    """Write ``files`` into a temp folder beside ``dest``, then swap it in with renames.

    Raises:
        UsageError: ``dest`` exists and is not an earlier mlspec output (no ``manifest.json``),
            so replacing it could destroy someone's files.
        OSError: the files cannot be written; ``dest`` is then unchanged.
    """
    dest = Path(dest)
    _check_replaceable(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.parent))
    try:
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it private; the output is not
        for f in files:
            path = tmp / f.path
            path.parent.mkdir(parents=True, exist_ok=True)
            # newline="" keeps the bytes exactly as rendered on every platform.
            with open(path, "w", encoding="utf-8", newline="") as fh:
                fh.write(f.content)
        _swap_in(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _check_replaceable(dest: Path) -> None:
    if not dest.exists() and not dest.is_symlink():
        return
    if not dest.is_dir() or dest.is_symlink():
        raise UsageError(f"{dest} exists and is not a folder")
    if any(dest.iterdir()) and not (dest / MANIFEST).is_file():
        raise UsageError(f"{dest} is not empty and holds no {MANIFEST} from an earlier compile; "
                         "refusing to replace it (choose another -o)")


def _swap_in(tmp: Path, dest: Path) -> None:
    """Replace ``dest`` by ``tmp``. On Linux one ``renameat2(RENAME_EXCHANGE)`` swaps the two
    folders atomically; elsewhere the old folder is renamed aside, the new one renamed in (and
    the old one put back if that fails), then the old one removed."""
    if not dest.exists():
        os.rename(tmp, dest)
        return
    if _exchange(tmp, dest):
        shutil.rmtree(tmp, ignore_errors=True)  # tmp now holds the previous output
        return
    old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.old-", dir=dest.parent))
    os.rmdir(old)
    os.rename(dest, old)
    try:
        os.rename(tmp, dest)
    except BaseException:
        os.rename(old, dest)
        raise
    shutil.rmtree(old, ignore_errors=True)


_RENAME_EXCHANGE, _AT_FDCWD = 2, -100


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths with Linux's renameat2; False when it is not available."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                          ctypes.c_uint]
    result = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if result == 0:
        return True
    errno = ctypes.get_errno()
    if errno in (38, 22, 95):  # ENOSYS, EINVAL, EOPNOTSUPP: the kernel or file system lacks it
        return False
    raise OSError(errno, os.strerror(errno), str(b))


# --- diagnostics ------------------------------------------------------------------------------
def print_diagnostics(diagnostics: list[Diagnostic], spec_path: str,
                      lines: list[str] | None = None, strict: bool = False) -> None:
    """Print diagnostics to stderr with ``validate``'s text report (code frames)."""
    from mlspec.lint import FileResult
    from mlspec.report import render_text

    render_text([FileResult(spec_path, list(diagnostics), lines=list(lines or []))], strict,
                sys.stderr)
