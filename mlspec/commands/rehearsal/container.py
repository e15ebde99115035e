"""A Kubernetes container as a local process: its command, args, env and folders, no image.

One container becomes one process, started in its own session (process group) in a fresh
folder, with exactly the container's command and args and an environment built from nothing:

* a minimal base (``base_environment``): ``PATH`` (the running interpreter's ``bin`` first, so
  that the container's ``python`` is this venv's), ``HOME`` and ``TMPDIR`` (folders of the
  container's own), ``LANG=C.UTF-8`` — never the parent's environment, so ``MLFLOW_*`` and the
  like do not leak in;
* then ``envFrom`` (Secrets and ConfigMaps, with ``prefix``), then ``env`` (``value``, with
  Kubernetes' ``$(VAR)`` expansion against the variables defined before it, and ``valueFrom``
  ``secretKeyRef`` / ``configMapKeyRef`` / ``fieldRef``), later ones winning, as the kubelet
  does. A ``PATH`` the container sets is kept, behind the interpreter's ``bin``.

Container paths: a ``PathMap`` maps the container's absolute paths that the rehearsal provides
(``/tmp``, mounted volumes, Tekton's ``/workspace`` and ``/tekton``) into the container's
folder. It rewrites them in the YAML's own text — ``command``, ``args``, env values,
``workingDir`` and a step's ``script`` — wherever such a path starts a word: at the start, or
after a space, a quote, ``=``, ``:``, ``,``, ``;``, ``(``, ``>``, ``<`` or ``|`` (so
``--out=/tmp/x``, ``sh -c 'cat /tmp/x'`` and ``> /tekton/results/r`` map, while
``http://h/tmp``, ``file:///tmp`` and ``$(workspaces.w.path)/tmp`` do not). This happens
before Tekton's substitution, so the local paths substitution inserts are never rewritten. A
path the map does not know is left alone (it would be in the image). ``command`` and ``args``
then get Kubernetes' ``$(VAR)`` expansion (``$$`` is a literal ``$``).

Pure functions build a ``ProcessSpec``; ``start``, ``run`` and ``stop`` execute it.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import signal
import stat
import subprocess
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlspec.commands.rehearsal.sources import SourceError, Sources
from mlspec.contract import LOCAL_TRAINING_ENV

GRACE_SECONDS = 3.0  # SIGTERM, then SIGKILL (a pod's grace period is 30s; a laptop's is short)
_TEXT_BUSY_RETRIES = 20  # see start(): a just-written script can be briefly busy
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"
# Fields of a container spec the rehearsal executes, and those it reads and ignores (they only
# matter to a scheduler or a kernel's isolation: docs/rehearsal.md). Anything else is refused.
EXECUTED = frozenset({"name", "command", "args", "env", "envFrom", "workingDir", "volumeMounts"})
IGNORED = frozenset({"image", "imagePullPolicy", "computeResources", "resources",
                     "securityContext", "ports", "livenessProbe", "readinessProbe",
                     "startupProbe", "terminationMessagePath", "terminationMessagePolicy"})


class ContainerError(ValueError):
    """The container cannot be started as the YAML says (a missing Secret, no command…)."""


@dataclass(frozen=True)
class ProcessSpec:
    """Exactly what is started: argv, environment and working folder."""

    argv: tuple[str, ...]
    env: Mapping[str, str]
    cwd: Path


@dataclass
class PathMap:
    """Container path prefixes -> local folders (the longest prefix wins)."""

    mounts: dict[str, Path] = field(default_factory=dict)

    def add(self, container_path: str, local: Path) -> None:
        self.mounts[container_path.rstrip("/") or "/"] = Path(local)

    def local(self, path: str) -> str | None:
        """The local path for a container path, or None when no mount holds it."""
        for prefix in sorted(self.mounts, key=len, reverse=True):
            if path == prefix or path.startswith(prefix + "/"):
                return str(self.mounts[prefix]) + path[len(prefix):]
        return None

    def literal(self, text: str) -> str:
        """The YAML's text with every mapped container path that starts a word rewritten."""
        if not self.mounts:
            return text
        prefixes = "|".join(re.escape(p) for p in sorted(self.mounts, key=len, reverse=True))
        pattern = re.compile(rf"(?:(?<=^)|(?<=[\s'\"=:,;(<>|]))({prefixes})(?=/|$|[\s'\";:,)|&<>])")
        return pattern.sub(lambda m: str(self.mounts[m.group(1)]), text)


def check_fields(container: Mapping[str, Any], where: str,
                 extra: frozenset[str] = frozenset()) -> None:
    """Refuse a container field that is neither executed nor knowingly ignored."""
    unknown = sorted(set(container) - EXECUTED - IGNORED - extra)
    if unknown:
        raise ContainerError(f"{where}: {', '.join(unknown)} not rehearsed")


# --- environment -----------------------------------------------------------------------------
def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion: known names replaced, ``$$`` -> ``$``, rest as is."""
    out, i = [], 0
    while i < len(text):
        if text.startswith("$$", i):
            out.append("$")
            i += 2
            continue
        if text.startswith("$(", i):
            end = text.find(")", i + 2)
            if end != -1:
                name = text[i + 2:end]
                out.append(env[name] if name in env else text[i:end + 1])
                i = end + 1
                continue
        out.append(text[i])
        i += 1
    return "".join(out)


def map_literals(container: Mapping[str, Any], paths: PathMap) -> dict[str, Any]:
    """A copy whose container paths are mapped in ``command``, ``args``, env values,
    ``workingDir`` and ``script`` (before any substitution, so that the local paths that
    substitution inserts are never mapped again)."""
    out = dict(container)
    for key in ("command", "args"):
        if key in out:
            out[key] = [paths.literal(str(a)) for a in out[key] or []]
    for key in ("workingDir", "script"):
        if out.get(key):
            out[key] = paths.literal(str(out[key]))
    if out.get("env"):
        out["env"] = [dict(e, value=paths.literal(str(e["value"]))) if "value" in e else dict(e)
                      for e in out["env"]]
    return out


def declared_env(container: Mapping[str, Any], sources: Sources, where: str,
                 fields: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables a container declares (``envFrom``, then ``env``), resolved.

    Raises:
        ContainerError: a Secret/ConfigMap (or key) that is not there and not optional, or a
            ``valueFrom`` the rehearsal cannot resolve.
    """
    env: dict[str, str] = {}
    try:
        for i, source in enumerate(container.get("envFrom") or []):
            env.update(_env_from(source, sources, f"{where}.envFrom[{i}]"))
        for i, item in enumerate(container.get("env") or []):
            label = f"{where}.env[{i}]"
            name = str(item.get("name") or "")
            if not name:
                raise ContainerError(f"{label}: a variable without a name")
            if "valueFrom" in item:
                value = _value_from(item["valueFrom"], sources, fields or {}, f"{label} {name}")
                if value is not None:
                    env[name] = value
            else:
                env[name] = expand(str(item.get("value", "")), env)
    except SourceError as exc:
        raise ContainerError(str(exc)) from None
    return env


def _env_from(source: Mapping[str, Any], sources: Sources, where: str) -> dict[str, str]:
    prefix = str(source.get("prefix") or "")
    if "secretRef" in source:
        ref = source["secretRef"] or {}
        data = sources.secret(str(ref.get("name")), where, bool(ref.get("optional")))
    elif "configMapRef" in source:
        ref = source["configMapRef"] or {}
        data = sources.config_map(str(ref.get("name")), where, bool(ref.get("optional")))
    else:
        raise ContainerError(f"{where}: needs secretRef or configMapRef")
    return {prefix + k: v for k, v in (data or {}).items()}


_FIELD_PATHS = ("metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName",
                "spec.serviceAccountName", "status.podIP", "status.hostIP")


def _value_from(value_from: Mapping[str, Any], sources: Sources, fields: Mapping[str, str],
                where: str) -> str | None:
    for key, kind in (("secretKeyRef", "secret"), ("configMapKeyRef", "configMap")):
        if key in value_from:
            ref = value_from[key] or {}
            return sources.key(kind, str(ref.get("name")), str(ref.get("key")), where,
                               bool(ref.get("optional")))
    if "fieldRef" in value_from:
        path = str((value_from["fieldRef"] or {}).get("fieldPath"))
        if path in fields:
            return fields[path]
        raise ContainerError(f"{where}: fieldRef {path} is not rehearsed "
                             f"(known: {', '.join(sorted(fields) or _FIELD_PATHS)})")
    raise ContainerError(f"{where}: valueFrom {', '.join(value_from)} is not rehearsed")


def base_environment(python_bin: Path, home: Path, tmp: Path) -> dict[str, str]:
    """What every process starts from instead of the parent's environment. One variable says
    that this is a laptop: the train step of a distributed spec trains under a local torchrun
    instead of submitting its TrainJob (there is no cluster to run it)."""
    return {"PATH": f"{python_bin}{os.pathsep}{SYSTEM_PATH}", "HOME": str(home),
            "TMPDIR": str(tmp), "LANG": "C.UTF-8", LOCAL_TRAINING_ENV: "1"}


def environment(declared: Mapping[str, str], python_bin: Path, home: Path,
                tmp: Path) -> dict[str, str]:
    """The base environment overlaid with the declared one (a declared PATH goes behind the
    interpreter's ``bin``)."""
    env = base_environment(python_bin, home, tmp)
    env.update(declared)
    if "PATH" in declared:
        env["PATH"] = f"{python_bin}{os.pathsep}{declared['PATH']}"
    return env


# --- the process -----------------------------------------------------------------------------
def argv(command: list[str], args: list[str], declared: Mapping[str, str], search_path: str,
         where: str) -> tuple[str, ...]:
    """``command`` + ``args`` with ``$(VAR)`` expanded against the declared variables (as the
    kubelet expands them), the program looked up on ``search_path``."""
    if not command:
        raise ContainerError(f"{where}: no command (the image's entrypoint is not known to "
                             "the rehearsal)")
    words = [expand(str(a), declared) for a in command + args]
    if "/" not in words[0] and shutil.which(words[0], path=search_path) is None:
        raise ContainerError(f"{where}: {words[0]!r} is not on PATH ({search_path})")
    return tuple(words)


def working_dir(value: str | None, root: Path, default: Path, rehearsal: Path) -> Path:
    """The process's folder, from a mapped and substituted ``workingDir``: a path inside the
    ``rehearsal``'s folder as it is, any other path inside ``root`` (the container's own file
    system), ``default`` when unset. Created if missing, as a container runtime creates it."""
    if not value:
        folder = default
    elif Path(value).is_absolute() and (Path(value) == rehearsal
                                        or rehearsal in Path(value).parents):
        folder = Path(value)
    else:
        folder = root / value.lstrip("/")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def write_script(script: str, folder: Path, name: str) -> Path:
    """Tekton's ``script``: a file run by its shebang; without one, ``#!/bin/sh`` + ``set -e``."""
    if script.startswith("#!win"):
        raise ContainerError(f"step {name}: a Windows script (#!win) is not rehearsed")
    if not script.startswith("#!"):
        script = "#!/bin/sh\nset -e\n" + script
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"script-{name}"
    path.write_text(script, encoding="utf-8")
    path.chmod(stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP)
    return path


def read_only(folder: Path) -> None:
    """Files 0444, folders 0555: what a read-only mount looks like to its user."""
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            os.chmod(os.path.join(dirpath, name), 0o444)
    for dirpath, _dirs, _files in sorted(os.walk(folder), key=lambda w: -len(w[0])):
        os.chmod(dirpath, 0o555)


def write_data(folder: Path, data: Mapping[str, str], items: list | None, where: str,
               mode_read_only: bool = True) -> None:
    """A ConfigMap/Secret volume: one file per key (or per ``items`` entry)."""
    folder.mkdir(parents=True, exist_ok=True)
    chosen = [(str(i["key"]), str(i.get("path") or i["key"])) for i in items] if items else \
        [(k, k) for k in sorted(data)]
    for key, rel in chosen:
        if key not in data:
            raise ContainerError(f"{where}: no key {key!r}")
        if rel.startswith("/") or ".." in Path(rel).parts:
            raise ContainerError(f"{where}: item path {rel!r} leaves the volume")
        target = folder / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(data[key], encoding="utf-8", newline="")
    if mode_read_only:
        read_only(folder)


def volume_folder(volume: Mapping[str, Any], folder: Path, sources: Sources, where: str) -> Path:
    """Make a pod volume's folder: emptyDir (empty), configMap or secret (read-only data)."""
    try:
        if "emptyDir" in volume:
            folder.mkdir(parents=True, exist_ok=True)
        elif "configMap" in volume:
            ref = volume["configMap"] or {}
            data = sources.config_map(str(ref.get("name")), where, bool(ref.get("optional")))
            write_data(folder, data or {}, ref.get("items"), where)
        elif "secret" in volume:
            ref = volume["secret"] or {}
            data = sources.secret(str(ref.get("secretName")), where, bool(ref.get("optional")))
            write_data(folder, data or {}, ref.get("items"), where)
        else:
            kinds = sorted(set(volume) - {"name"})
            raise ContainerError(f"{where}: volume type {', '.join(kinds)} is not rehearsed")
    except SourceError as exc:
        raise ContainerError(str(exc)) from None
    return folder


def mount_volumes(container: Mapping[str, Any], volumes: Mapping[str, Path], paths: PathMap,
                  where: str) -> None:
    """Add a container's ``volumeMounts`` to its path map (``subPath`` inside the volume)."""
    for i, mount in enumerate(container.get("volumeMounts") or []):
        name = str(mount.get("name"))
        if name not in volumes:
            raise ContainerError(f"{where}.volumeMounts[{i}]: no volume {name!r}")
        local = volumes[name] / str(mount.get("subPath") or "")
        local.mkdir(parents=True, exist_ok=True)
        paths.add(str(mount.get("mountPath")), local)


# --- execution -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Exit:
    """How a process ended: ``reason`` is Completed, Error, TimedOut or Cancelled."""

    code: int | None
    reason: str
    seconds: float


def start(spec: ProcessSpec, log_path: Path) -> subprocess.Popen[bytes]:
    """Start the process in its own session; stdout and stderr go to ``log_path``.

    A step's script was just written by this process; while another thread forks (TaskRuns
    run at once), its child holds a copy of that write descriptor until it execs, and exec'ing
    the script then fails with ETXTBSY ("Text file busy"). That is transient: retry briefly.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(_TEXT_BUSY_RETRIES + 1):
        try:
            with open(log_path, "ab") as log:
                return subprocess.Popen(list(spec.argv), cwd=spec.cwd, env=dict(spec.env),
                                        stdin=subprocess.DEVNULL, stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        except OSError as exc:
            if exc.errno != errno.ETXTBSY or attempt == _TEXT_BUSY_RETRIES:
                raise
            time.sleep(0.01 * (attempt + 1))
    raise AssertionError("unreachable")


def run(spec: ProcessSpec, log_path: Path, timeout: float | None = None,
        cancel: threading.Event | None = None, grace: float = GRACE_SECONDS) -> Exit:
    """Run to the end, or kill its process group at ``timeout`` seconds or on ``cancel``."""
    started = time.monotonic()
    try:
        process = start(spec, log_path)
    except OSError as exc:
        with open(log_path, "a", encoding="utf-8") as log:
            log.write(f"error: cannot start {spec.argv[0]}: {exc.strerror or exc}\n")
        return Exit(None, "Error", time.monotonic() - started)
    reason = None
    while True:
        try:
            code = process.wait(timeout=0.05)
            break
        except subprocess.TimeoutExpired:
            pass
        if timeout is not None and time.monotonic() - started >= timeout:
            reason = "TimedOut"
        elif cancel is not None and cancel.is_set():
            reason = "Cancelled"
        if reason:
            stop(process, grace)
            code = process.returncode
            break
    kill_group(process.pid)  # a container's leftover processes end with it
    seconds = time.monotonic() - started
    return Exit(code, reason or ("Completed" if code == 0 else "Error"), seconds)


def stop(process: subprocess.Popen[bytes], grace: float = GRACE_SECONDS) -> None:
    """SIGTERM to the process group, SIGKILL after ``grace`` seconds."""
    if process.poll() is None:
        _signal_group(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
    kill_group(process.pid)
    process.wait()


def kill_group(pgid: int) -> None:
    _signal_group(pgid, signal.SIGKILL)


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass
