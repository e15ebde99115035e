"""Write a compile's files: ``kustomization.yaml``, ``manifest.json`` and the atomic swap.

Everything is rendered in memory first; then the files go to a temporary folder beside the
destination, which is swapped in with renames. A failed or interrupted compile therefore leaves
the previous output as it was. On Linux the swap itself is one atomic
``renameat2(RENAME_EXCHANGE)``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path, PurePosixPath

from mlspec.compile.targets import OutputFile
from mlspec.errors import UsageError

MANIFEST, KUSTOMIZATION = "manifest.json", "kustomization.yaml"


def check_paths(files: list[OutputFile]) -> None:
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

    KFP IR, plain Prometheus rule files, promtool tests and the plain Alertmanager config have
    no ``kind``, and JSON (the Grafana dashboard) is not listed; a PipelineRun with
    ``generateName`` is for ``kubectl create`` (each create a new run), so they all stay out.
    A renderer makes a file a resource by writing it as such an object (the monitoring target's
    AlertmanagerConfig and dashboard ConfigMap), not by a flag. Deploy templates (annotation
    ``mlspec.dev/deploy: template``: serving objects whose model version a deploy pins) stay
    out too: applied as compiled they would serve nothing.
    """
    import yaml

    from mlspec.contract import DEPLOY_ANNOTATION, DEPLOY_TEMPLATE

    if not f.path.endswith((".yaml", ".yml")):
        return False
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        docs = [d for d in yaml.load_all(f.content, Loader=loader) if d is not None]
    except yaml.YAMLError:
        return False
    return bool(docs) and all(isinstance(d, dict) and "apiVersion" in d and "kind" in d
                              and isinstance(d.get("metadata"), dict)
                              and d["metadata"].get("name")
                              and (d["metadata"].get("annotations") or {}).get(DEPLOY_ANNOTATION)
                              != DEPLOY_TEMPLATE for d in docs)


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


