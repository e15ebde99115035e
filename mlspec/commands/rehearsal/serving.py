"""``mlspec serve --manifest FILE``: an InferenceService's predictor container, run locally.

The manifest's first InferenceService (or the one ``--name`` names) gives its predictor's
container (``kserve-container``, else the first): its command, args, env and envFrom (Secrets
from ``--secret-env``), volumes and mounts, run by ``container.py`` as for a Tekton step, in a
fresh folder ``.mlspec/serve/<name>-<suffix>/`` (``volumes/``, ``home/``, ``tmp/`` — the
container's /tmp unless a volume is mounted there —, ``root/``, ``log``, ``pid``).

Two things differ from the cluster, on purpose, and only through the args and env the manifest
itself passes: the server binds ``--host`` (127.0.0.1) instead of the manifest's 0.0.0.0, and
listens on ``--port`` when given instead of the container port. An arg ``--host VALUE`` /
``--host=VALUE`` (and ``--port``) is rewritten, and env ``MLSPEC_HOST`` / ``PORT`` when the
manifest sets them; a ``--port`` other than the container's with no such place to say it is a
usage error. Readiness is the container's ``readinessProbe`` (``httpGet``), polled on the local
port; the command prints the URL when it passes and runs until interrupted (SIGINT/SIGTERM stop
the container's process group).
"""

from __future__ import annotations

import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from mlspec.commands.rehearsal import container as ctr
from mlspec.commands.rehearsal.sources import Sources, parse_secret_env
from mlspec.errors import UsageError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
SERVE_DIR = Path(".mlspec") / "serve"
DEFAULT_PORT = 8080
_PREDICTOR_FIELDS = frozenset({"name", "ports", "livenessProbe", "readinessProbe"})


def load_predictor(manifest: Path, name: str | None) -> tuple[dict, dict, list[dict]]:
    """(the InferenceService, its predictor's container, the predictor's volumes).

    Raises:
        UsageError: no such file or InferenceService, or a predictor with no container.
    """
    import yaml

    try:
        docs = [d for d in yaml.safe_load_all(manifest.read_text(encoding="utf-8"))
                if isinstance(d, dict)]
    except (OSError, yaml.YAMLError) as exc:
        raise UsageError(f"--manifest {manifest}: {exc}") from None
    services = [d for d in docs if d.get("kind") == "InferenceService"]
    if name is not None:
        services = [d for d in services if (d.get("metadata") or {}).get("name") == name]
    if not services:
        raise UsageError(f"--manifest {manifest}: no InferenceService"
                         + (f" named {name!r}" if name else ""))
    service = services[0]
    predictor = (service.get("spec") or {}).get("predictor") or {}
    containers = predictor.get("containers") or []
    if not containers:
        raise UsageError(f"--manifest {manifest}: the predictor has no containers (a KServe "
                         "model-format predictor needs its serving runtime's image, which the "
                         "rehearsal does not have)")
    chosen = next((c for c in containers if c.get("name") == "kserve-container"), containers[0])
    return service, dict(chosen), list(predictor.get("volumes") or [])


def pinned(service: dict, container: dict, version: int | None,
           manifest: str) -> tuple[dict, dict]:
    """``service`` and its container with ``version`` pinned in (see ``serve_manifest``)."""
    from mlspec.contract import UNPINNED_VERSION
    from mlspec.runtime.errors import StepError
    from mlspec.runtime.rollout.deploy import pin_service

    template = any(str(a).endswith(f"/{UNPINNED_VERSION}") and str(a).startswith("models:/")
                   for a in container.get("args") or [])
    if version is None:
        if template:
            raise UsageError(f"--manifest {manifest}: its InferenceService is a deploy template "
                             f"(models:/NAME/{UNPINNED_VERSION}); give --model-version N to "
                             "serve registry version N, as the deploy step pins it")
        return service, container
    if version < 1:
        raise UsageError(f"--model-version {version}: a registry version is 1 or more")
    try:
        service = pin_service(service, str(version))
    except StepError as exc:
        raise UsageError(f"--manifest {manifest}: {exc}") from None
    containers = service["spec"]["predictor"]["containers"]
    chosen = next(c for c in containers if c.get("name") == container.get("name"))
    return service, dict(chosen)


def container_port(container: dict) -> int:
    ports = container.get("ports") or []
    return int(ports[0].get("containerPort", DEFAULT_PORT)) if ports else DEFAULT_PORT


def rebind(container: dict, host: str, port: int | None) -> dict:
    """The container with its listen address and port said as the rehearsal wants them.

    Raises:
        UsageError: ``port`` differs from the container's and nothing in its args or env
            says the port.
    """
    out = dict(container)
    args = [str(a) for a in out.get("args") or []]
    args, said_port = _rewrite_flag(args, "--port", None if port is None else str(port))
    args, said_host = _rewrite_flag(args, "--host", host)
    out["args"] = args
    env = []
    for item in out.get("env") or []:
        item = dict(item)
        if item.get("name") == "PORT" and port is not None and "value" in item:
            item["value"], said_port = str(port), True
        if item.get("name") == "MLSPEC_HOST" and "value" in item:
            item["value"], said_host = host, True
        env.append(item)
    out["env"] = env
    if not said_host:
        print(f"warning: the container says no listen address; it binds its own default, "
              f"not {host}", file=sys.stderr)
    if port is not None and port != container_port(container) and not said_port:
        raise UsageError(f"--port {port}: the container says its port nowhere in its args "
                         "or env, so it cannot be moved")
    return out


def _rewrite_flag(args: list[str], flag: str, value: str | None) -> tuple[list[str], bool]:
    out: list[str] = []
    found, i = False, 0
    while i < len(args):
        arg = args[i]
        if arg == flag and i + 1 < len(args):
            out.extend((arg, value if value is not None else args[i + 1]))
            found, i = True, i + 2
            continue
        if arg.startswith(flag + "="):
            out.append(f"{flag}={value}" if value is not None else arg)
            found = True
        else:
            out.append(arg)
        i += 1
    return out, found


def prepare(service: dict, container: dict, volumes: list[dict], folder: Path,
            sources: Sources, python_bin: Path) -> ctr.ProcessSpec:
    """The process for the container, in ``folder`` (see the module doc).

    Raises:
        ContainerError: a field it cannot run, a Secret not given, no command.
    """
    where = f"InferenceService {(service.get('metadata') or {}).get('name')} container " \
            f"{container.get('name')}"
    ctr.check_fields(container, where, _PREDICTOR_FIELDS)
    for sub in ("home", "tmp", "root"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    local_volumes = {str(v.get("name")): ctr.volume_folder(v, folder / "volumes"
                                                           / str(v.get("name")), sources,
                                                           f"{where} volume {v.get('name')}")
                     for v in volumes}
    paths = ctr.PathMap()
    paths.add("/tmp", folder / "tmp")
    ctr.mount_volumes(container, local_volumes, paths, where)
    mapped = ctr.map_literals(container, paths)
    meta = service.get("metadata") or {}
    fields = {"metadata.name": f"{meta.get('name')}-predictor-rehearsal",
              "metadata.namespace": str(meta.get("namespace") or "default")}
    declared = ctr.declared_env(mapped, sources, where, fields)
    env = ctr.environment(declared, python_bin, folder / "home", folder / "tmp")
    argv = ctr.argv([str(c) for c in mapped.get("command") or []],
                    [str(a) for a in mapped.get("args") or []], declared, env["PATH"], where)
    cwd = ctr.working_dir(mapped.get("workingDir"), folder / "root", folder / "root", folder)
    return ctr.ProcessSpec(argv, env, cwd)


def readiness_url(container: dict, port: int) -> str | None:
    probe = (container.get("readinessProbe") or {}).get("httpGet")
    if not probe:
        return None
    return f"http://127.0.0.1:{port}{probe.get('path') or '/'}"


def serve_manifest(manifest: str, name: str | None = None, host: str = "127.0.0.1",
                   port: int | None = None, secret_env: list[str] | None = None,
                   folder: Path | None = None, model_version: int | None = None) -> int:
    """The body of ``mlspec serve --manifest``: returns the exit code.

    A compiled InferenceService is a deploy template (``models:/NAME/unpinned``):
    ``model_version`` pins it, as the pipeline's deploy step does.

    Raises:
        UsageError: see ``load_predictor``, ``rebind`` and ``--secret-env``; a template without
            ``model_version``, or ``model_version`` for a manifest already pinned.
    """
    import secrets as random_names

    sources = Sources(secrets=parse_secret_env(list(secret_env or [])))
    service, container, volumes = load_predictor(Path(manifest), name)
    service, container = pinned(service, container, model_version, manifest)
    local_port = port if port is not None else container_port(container)
    container = rebind(container, host, port)
    service_name = str((service.get("metadata") or {}).get("name"))
    folder = folder or SERVE_DIR / f"{service_name}-{random_names.token_hex(3)}"
    folder.mkdir(parents=True, exist_ok=False)
    try:
        spec = prepare(service, container, volumes, folder.resolve(), sources,
                       Path(sys.executable).parent)
    except ctr.ContainerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(f"starting {service_name}'s predictor container in {folder} (log: {folder / 'log'})",
          flush=True)
    return _run(spec, folder, readiness_url(container, local_port), local_port, service)


def _run(spec: ctr.ProcessSpec, folder: Path, ready_url: str | None, port: int,
         service: dict) -> int:
    process = ctr.start(spec, folder / "log")
    (folder / "pid").write_text(f"{process.pid}\n", encoding="utf-8")
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set())
                for sig in (signal.SIGINT, signal.SIGTERM)}
    tail = threading.Thread(target=_follow, args=(folder / "log", process, stop), daemon=True)
    tail.start()
    ready = ready_url is None
    try:
        while process.poll() is None and not stop.is_set():
            if not ready and _probe(ready_url):
                ready = True
                name = (service.get("metadata") or {}).get("name")
                print(f"ready: http://127.0.0.1:{port} (POST /v2/models/{name}/infer)",
                      flush=True)
            stop.wait(0.2)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        stopped_by_us = process.poll() is None
        ctr.stop(process)
        stop.set()
        tail.join(timeout=2)
    if stopped_by_us:
        return EXIT_OK
    print(f"\nthe container exited with code {process.returncode}", file=sys.stderr)
    return EXIT_OK if process.returncode == 0 else EXIT_FAILED


def _probe(url: str | None) -> bool:
    if url is None:
        return True
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return 200 <= response.status < 400
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


def _follow(log: Path, process: Any, stop: threading.Event) -> None:
    """Echo the container's log as it grows (as ``kubectl logs -f`` would)."""
    with open(log, "rb") as handle:
        while True:
            chunk = handle.read(65536)
            if chunk:
                sys.stdout.buffer.write(chunk)
                sys.stdout.flush()
                continue
            if stop.is_set() or process.poll() is not None:
                rest = handle.read()
                if rest:
                    sys.stdout.buffer.write(rest)
                    sys.stdout.flush()
                return
            time.sleep(0.1)
