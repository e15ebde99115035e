"""Live processes for the end-to-end tests: free ports, a shared deadline, started programs that
are always stopped (each in its own session, killed with its group), and JSON over HTTP."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def healthy(url: str) -> bool:
    """Whether ``url`` answers 200 (a health endpoint); connection errors propagate to
    :func:`wait_for`, which retries."""
    with urllib.request.urlopen(url, timeout=2) as response:
        return response.status == 200


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Timeline:
    """Events with their time since the start of the test."""

    def __init__(self, budget_s: float) -> None:
        self.budget_s = budget_s
        self.start = time.monotonic()
        self.events: list[tuple[float, str]] = []

    def __call__(self, event: str) -> None:
        self.events.append((time.monotonic() - self.start, event))

    def remaining(self) -> float:
        return self.budget_s - (time.monotonic() - self.start)

    def text(self) -> str:
        return "\n".join(f"  {t:7.2f}s  {event}" for t, event in self.events)


class Processes:
    """Starts processes in their own sessions and ends every one of them, whatever happens."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.started: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, args: list[str], cwd: Path) -> subprocess.Popen[bytes]:
        log = open(self.logs / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        process = subprocess.Popen(args, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        self.started.append((name, process))
        return process

    def tail(self, name: str, lines: int = 15) -> str:
        path = self.logs / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop_all(self) -> None:
        for _, process in reversed(self.started):
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    continue
        for _, process in reversed(self.started):
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                process.wait(timeout=5)

    def check_alive(self) -> None:
        for name, process in self.started:
            if process.poll() is not None and name != "train":
                raise AssertionError(f"{name} exited with {process.returncode}:\n{self.tail(name)}")


@contextmanager
def processes(logs: Path) -> Iterator[Processes]:
    procs = Processes(logs)
    try:
        yield procs
    finally:
        procs.stop_all()


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def post_json(url: str, body: dict) -> Any:
    request = urllib.request.Request(url, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def wait_for(what: str, predicate: Callable[[], Any], timeline: Timeline, procs: Processes,
          interval: float = 0.25) -> Any:
    """Poll ``predicate`` until it returns something truthy, within the test's budget."""
    while timeline.remaining() > 0:
        procs.check_alive()
        try:
            value = predicate()
        except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
            value = None
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}\ntimeline:\n{timeline.text()}")


@contextmanager
def exporter(text: Callable[[], str], status: int = 200) -> Iterator[int]:
    """A Prometheus text exporter on 127.0.0.1 answering every GET with ``text()`` (called per
    scrape, so counters can grow); yields its port and stops it afterwards."""
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            body = text().encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
