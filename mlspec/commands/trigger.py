"""The retraining trigger: Alertmanager's webhook receiver that starts a retraining run.

``mlspec trigger serve --spec SPEC`` listens for Alertmanager webhook POSTs (payload version 4).
A firing alert that carries ``mlspec_retrain="true"`` for this project starts ``mlspec run SPEC``
(the compiled KFP pipeline under kfp.local: train, evaluate, gate, register a new version).
One run at a time: alerts that arrive while a run is going are recorded against that run
(coalesced) instead of queueing more runs. ``GET /status`` reports the runs so far.

Routes: ``POST /alerts`` (also ``/``), ``GET /status``, ``GET /healthz``. Bad requests get a
4xx with ``{"error": ...}``; the server never answers 500 for a malformed payload.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from mlspec import contract

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
MAX_BODY = 1024 * 1024  # Alertmanager payloads are small; anything bigger is not one.
DEFAULT_PORT = 9095
RUN_TIMEOUT_S = 4 * 3600
ALERT_PATHS = ("/", "/alerts")


class PayloadError(ValueError):
    """The body is not an Alertmanager webhook payload."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _log(message: str) -> None:
    print(f"{_now()} trigger: {message}", flush=True)


# --- payload ----------------------------------------------------------------------------------
def _str_map(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise PayloadError(f"{where} must be an object of strings")
    return value


def parse_payload(body: bytes) -> list[dict[str, Any]]:
    """The alerts of an Alertmanager webhook payload (version 4), checked for shape.

    Raises:
        PayloadError: not JSON, not version 4, or an alert without status or labels.
    """
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PayloadError(f"body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise PayloadError("payload must be a JSON object")
    if data.get("version") != "4":
        raise PayloadError(f"unsupported payload version {data.get('version')!r} (expected '4')")
    alerts = data.get("alerts")
    if not isinstance(alerts, list):
        raise PayloadError("payload has no 'alerts' list")
    for i, alert in enumerate(alerts):
        if not isinstance(alert, dict):
            raise PayloadError(f"alerts[{i}] must be an object")
        if alert.get("status") not in ("firing", "resolved"):
            raise PayloadError(f"alerts[{i}].status must be 'firing' or 'resolved'")
        _str_map(alert.get("labels"), f"alerts[{i}].labels")
        _str_map(alert.get("annotations", {}), f"alerts[{i}].annotations")
    return alerts


def retraining_alerts(alerts: list[dict[str, Any]], project: str) -> list[dict[str, Any]]:
    """The firing alerts that ask this project to retrain."""
    return [a for a in alerts
            if a["status"] == "firing"
            and a["labels"].get(contract.RETRAIN_LABEL) == "true"
            and a["labels"].get(contract.PROJECT_LABEL, project) == project]


# --- runs -------------------------------------------------------------------------------------
@dataclass
class Run:
    """One retraining run and what started it."""

    id: int
    reason: list[str]
    started_at: str
    log: str
    finished_at: str | None = None
    seconds: float | None = None
    exit_code: int | None = None
    ok: bool | None = None
    coalesced: int = 0
    registration: dict[str, Any] | None = None
    error: str | None = None


@dataclass
class Retrainer:
    """Starts ``mlspec run`` for the spec, one run at a time."""

    spec: Path
    project: str
    workdir: Path
    profile: str | None = None
    timeout_s: float = RUN_TIMEOUT_S
    runs: list[Run] = field(default_factory=list)
    received: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "mlspec", "run", str(self.spec)]
        if self.profile:
            cmd += ["--profile", self.profile]
        return cmd

    def submit(self, alerts: list[dict[str, Any]]) -> tuple[str, int]:
        """Start a run, or fold ``alerts`` into the running one: ("started"|"coalesced", id)."""
        reason = sorted({_describe(a) for a in alerts})
        with self.lock:
            self.received += len(alerts)
            current = self.runs[-1] if self.runs else None
            if current is not None and current.finished_at is None:
                current.coalesced += len(alerts)
                return "coalesced", current.id
            run = Run(id=len(self.runs) + 1, reason=reason, started_at=_now(),
                      log=str(self.workdir / f"retrain-{len(self.runs) + 1}.log"))
            self.runs.append(run)
        threading.Thread(target=self._execute, args=(run,), daemon=True,
                         name=f"retrain-{run.id}").start()
        return "started", run.id

    def _execute(self, run: Run) -> None:
        _log(f"run {run.id} started: {' '.join(self.command())} (reason: {', '.join(run.reason)})")
        began = time.monotonic()
        try:
            with open(run.log, "wb") as log:
                self.process = subprocess.Popen(
                    self.command(), cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL, start_new_session=True)
                code = self.process.wait(timeout=self.timeout_s)
        except subprocess.TimeoutExpired:
            self.stop()
            code, run.error = EXIT_FAILED, f"timed out after {self.timeout_s:.0f}s"
        except OSError as exc:
            code, run.error = EXIT_FAILED, f"cannot start the run: {exc}"
        registration = self._registration()
        with self.lock:
            run.exit_code, run.ok = code, code == 0
            run.seconds = round(time.monotonic() - began, 2)
            run.registration = registration if code == 0 else None
            run.finished_at = _now()
            self.process = None
        version = (registration or {}).get("version")
        _log(f"run {run.id} finished: exit {code} in {run.seconds}s"
             + (f", registered {self.project} version {version}" if code == 0 and version else ""))

    def _registration(self) -> dict[str, Any] | None:
        """What ``mlspec run`` registered, from its summary.json (None when unknown)."""
        from mlspec.commands.run import SUMMARY_FILE, default_run_dir

        summary = default_run_dir(self.project, self.workdir) / SUMMARY_FILE
        try:
            return json.loads(summary.read_text()).get("registration")
        except (OSError, ValueError, AttributeError):
            return None

    def stop(self) -> None:
        """End a running retraining and everything it started (its own process group)."""
        process = self.process
        if process is not None and process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def status(self) -> dict[str, Any]:
        with self.lock:
            runs = [asdict(r) for r in self.runs]
        return {
            "version": 1,
            "project": self.project,
            "alerts_received": self.received,
            "running": bool(runs) and runs[-1]["finished_at"] is None,
            "runs": runs,
            "last": runs[-1] if runs else None,
        }


def _describe(alert: dict[str, Any]) -> str:
    labels = alert["labels"]
    name = labels.get("alertname", "alert")
    feature = labels.get("feature")
    return f"{name}({feature})" if feature else name


# --- HTTP -------------------------------------------------------------------------------------
class Handler(BaseHTTPRequestHandler):
    """Alertmanager webhook and status endpoints."""

    server_version = "mlspec-trigger"
    retrainer: Retrainer  # set on the subclass made by make_server
    token: str | None = None

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib's name
        pass  # one line per event is logged by the trigger itself

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body, sort_keys=True).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 - stdlib's name
        if self.path == "/status":
            self._reply(HTTPStatus.OK, self.retrainer.status())
        elif self.path == "/healthz":
            self._reply(HTTPStatus.OK, {"ok": True})
        elif self.path in ALERT_PATHS:
            self._reply(HTTPStatus.METHOD_NOT_ALLOWED, {"error": "POST alerts here"})
        else:
            self._reply(HTTPStatus.NOT_FOUND, {"error": f"no route {self.path}"})

    def do_POST(self) -> None:  # noqa: N802 - stdlib's name
        if self.path not in ALERT_PATHS:
            self._reply(HTTPStatus.NOT_FOUND, {"error": f"no route {self.path}"})
            return
        if self.token is not None and self.headers.get("Authorization") != f"Bearer {self.token}":
            self._reply(HTTPStatus.UNAUTHORIZED, {"error": "missing or wrong bearer token"})
            return
        body, problem = self._body()
        if problem is not None:
            status, message = problem
            self._reply(status, {"error": message})
            return
        try:
            alerts = parse_payload(body)
        except PayloadError as exc:
            self._reply(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
            return
        wanted = retraining_alerts(alerts, self.retrainer.project)
        _log(f"received {len(alerts)} alert(s), {len(wanted)} asking to retrain: "
             + ", ".join(sorted({_describe(a) for a in alerts})))
        if not wanted:
            self._reply(HTTPStatus.OK, {"accepted": False,
                                        "reason": "no firing retraining alert for this project"})
            return
        outcome, run_id = self.retrainer.submit(wanted)
        self._reply(HTTPStatus.ACCEPTED, {"accepted": True, "run": run_id, "outcome": outcome})

    def _body(self) -> tuple[bytes, tuple[int, str] | None]:
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            return b"", (HTTPStatus.LENGTH_REQUIRED, "Content-Length is required")
        if int(length) > MAX_BODY:
            self.close_connection = True
            return b"", (HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"body over {MAX_BODY} bytes")
        return self.rfile.read(int(length)), None


def make_server(retrainer: Retrainer, host: str, port: int,
                token: str | None = None) -> ThreadingHTTPServer:
    """An HTTP server bound to ``host:port`` (port 0: any free port) for ``retrainer``."""
    handler = type("BoundHandler", (Handler,), {"retrainer": retrainer, "token": token})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


def serve_command(spec: str, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
                  workdir: str | None = None, profile: str | None = None) -> int:
    """``mlspec trigger serve``: run the webhook receiver until SIGTERM or Ctrl-C.

    Args:
        spec: The project's mlproject.yaml; each retraining runs ``mlspec run`` on it.
        host: Address to bind (127.0.0.1 by default; 0.0.0.0 in a container).
        port: Port to bind (0: any free port; the chosen one is printed).
        workdir: Where runs execute (relative tracking URIs resolve here); default: the
            current directory.
        profile: The spec profile each run uses.

    Returns:
        0 after a clean shutdown, 1 for an invalid spec, 2 for an unusable address or folder.
    """
    from mlspec.commands.checked import load_checked

    # The same checks as `mlspec run` (schema and lint): a spec every retraining would refuse
    # is refused now, with all its diagnostics, not at the first alert.
    loaded, refused = load_checked(spec, profile, local=True)
    if refused is not None:
        return refused
    folder = Path(workdir or ".").resolve()
    if not folder.is_dir():
        print(f"error: workdir {folder} is not a folder", file=sys.stderr)
        return EXIT_USAGE
    retrainer = Retrainer(spec=Path(spec).resolve(), project=loaded.project.metadata.name,
                          workdir=folder, profile=profile)
    try:
        server = make_server(retrainer, host, port, token=os.environ.get("MLSPEC_TRIGGER_TOKEN"))
    except OSError as exc:
        print(f"error: cannot listen on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE

    def stop(signum: int, frame: Any) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    _log(f"listening on http://{host}:{server.server_address[1]} for {retrainer.project} "
         f"(runs in {folder})")
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        retrainer.stop()
    return EXIT_OK
