"""A small HTTP/1.1 server on asyncio (uvloop when installed) with httptools' parser.

Why not an ASGI framework: the per-request cost of ASGI scopes, receive/send coroutines and
routing is larger than a small model's ``predict``; this protocol hands a complete request to
the app in one call and writes one pre-built response. Keep-alive and pipelining are supported;
responses on a connection are written in request order even when the app answers later (the
micro-batcher answers after its batch ran).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

import httptools

JSON = b"application/json"
TEXT = b"text/plain; version=0.0.4; charset=utf-8"
LINGER_SECONDS = 2.0
IDLE_SECONDS = 75.0  # a keep-alive connection with no bytes for this long is closed
MAX_HEADER_BYTES = 64 * 1024
_REASONS = {s.value: s.phrase.encode() for s in HTTPStatus}


def response(status: int, body: bytes, content_type: bytes = JSON, close: bool = False) -> bytes:
    """The bytes of a complete HTTP/1.1 response."""
    head = b"HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %d\r\n" % (
        status, _REASONS.get(status, b"Unknown"), content_type, len(body))
    if close:
        head += b"connection: close\r\n"
    return head + b"\r\n" + body


class Request:
    """One parsed request: method, path, query, headers of interest, body."""

    __slots__ = ("method", "path", "query", "body", "slot", "conn", "started", "keep_alive")

    def __init__(self, method: str, path: str, query: str, body: bytes, conn: HttpProtocol,
                 slot: list, keep_alive: bool, started: float) -> None:
        self.method = method
        self.path = path
        self.query = query
        self.body = body
        self.conn = conn
        self.slot = slot
        self.keep_alive = keep_alive
        self.started = started

    def reply(self, status: int, body: bytes, content_type: bytes = JSON) -> None:
        """Answer this request (now or later); the connection writes answers in order."""
        self.slot[0] = response(status, body, content_type, close=not self.keep_alive)
        self.slot[1] = not self.keep_alive
        self.conn.flush()


Handler = Callable[[Request], None]


class HttpProtocol(asyncio.Protocol):
    """One connection: parse requests with httptools, dispatch each to ``handler``."""

    def __init__(self, handler: Handler, max_body: int, clock: Callable[[], float],
                 error_body: Callable[[str], bytes]) -> None:
        self.handler = handler
        self.max_body = max_body
        self.clock = clock
        self.error_body = error_body
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.pending: deque[list] = deque()  # [response bytes | None, close?] in request order
        self.url = b""
        self.body: list[bytes] = []
        self.size = 0
        self.rejected = False
        self.expect_continue = False
        self.closed = False
        self.header_bytes = 0
        self.last_active = clock()

    # --- asyncio callbacks -------------------------------------------------------------------
    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        CONNECTIONS.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.transport = None
        CONNECTIONS.discard(self)

    def data_received(self, data: bytes) -> None:
        self.last_active = self.clock()
        if self.rejected:
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._reject(400, "protocol upgrades are not supported")
        except httptools.HttpParserError as exc:
            self._reject(400, f"malformed HTTP request: {exc}")

    # --- httptools callbacks -----------------------------------------------------------------
    def on_message_begin(self) -> None:
        self.url = b""
        self.body = []
        self.size = 0
        self.expect_continue = False
        self.header_bytes = 0

    def on_url(self, url: bytes) -> None:
        self.url += url
        if len(self.url) > 8192:
            self._reject(414, "the URL is too long")

    def on_header(self, name: bytes, value: bytes) -> None:
        self.header_bytes += len(name) + len(value)
        if self.header_bytes > MAX_HEADER_BYTES:
            self._reject(431, "the request headers are too large")
            return
        lower = name.lower()
        if lower == b"content-length":
            try:
                too_big = int(value) > self.max_body
            except ValueError:
                too_big = False  # httptools rejects a malformed length itself
            if too_big:
                self._reject(413, f"the request body is larger than {self.max_body} bytes")
        elif lower == b"expect" and value.lower() == b"100-continue":
            self.expect_continue = True

    def on_headers_complete(self) -> None:
        if self.expect_continue and not self.rejected and self.transport is not None:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        self.size += len(body)
        if self.size > self.max_body:
            self._reject(413, f"the request body is larger than {self.max_body} bytes")
            return
        self.body.append(body)

    def on_message_complete(self) -> None:
        if self.rejected:
            return
        raw = self.url
        path, _, query = raw.partition(b"?")
        slot: list = [None, False]
        self.pending.append(slot)
        request = Request(self.parser.get_method().decode("latin-1"),
                          path.decode("latin-1"), query.decode("latin-1"),
                          b"".join(self.body), self, slot,
                          bool(self.parser.should_keep_alive()), self.clock())
        self.handler(request)

    # --- writing -----------------------------------------------------------------------------
    def flush(self) -> None:
        """Write every answered response at the head of the queue, in request order."""
        pending = self.pending
        transport = self.transport
        while pending and pending[0][0] is not None:
            data, close = pending.popleft()
            if transport is None:
                continue
            transport.write(data)
            if close:
                self._close(transport)
                pending.clear()
                return

    def _close(self, transport: asyncio.Transport) -> None:
        """Close after the last answer. A request we refused may still be arriving: closing
        with unread bytes would reset the connection and the client could lose our answer, so
        end our side and keep discarding its bytes for a moment (a lingering close)."""
        self.transport = None
        if not self.rejected or not transport.can_write_eof():
            transport.close()
            return
        transport.write_eof()
        asyncio.get_running_loop().call_later(LINGER_SECONDS, transport.close)

    def _reject(self, status: int, message: str) -> None:
        """Answer a request we will not read to the end, then close the connection."""
        if self.rejected:
            return
        self.rejected = True
        slot = [response(status, self.error_body(message), close=True), True]
        self.pending.append(slot)
        self.flush()


# Open connections, for the idle sweep (a set: O(1) add/remove per connection, not per request).
CONNECTIONS: set[HttpProtocol] = set()


def close_idle(now: float, idle: float = IDLE_SECONDS) -> int:
    """Close connections that sent nothing for ``idle`` seconds and await no answer."""
    stale = []  # collected first: closing removes a connection from CONNECTIONS
    for conn in CONNECTIONS:
        transport = conn.transport
        if transport is not None and now - conn.last_active > idle and not conn.pending:
            stale.append(transport)
    for transport in stale:
        transport.close()
    return len(stale)


async def _sweep(clock: Callable[[], float], every: float) -> None:
    while True:
        await asyncio.sleep(every)
        close_idle(clock())


async def serve_forever(handler: Handler, host: str, port: int, max_body: int,
                        clock: Callable[[], float], error_body: Callable[[str], bytes],
                        ready: Callable[[int], None] | None = None,
                        stop: asyncio.Event | None = None) -> None:
    """Listen on ``host:port`` until ``stop`` is set; ``ready(port)`` once listening."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: HttpProtocol(handler, max_body, clock, error_body), host, port,
        backlog=4096, reuse_address=True)
    bound = server.sockets[0].getsockname()[1]
    if ready:
        ready(bound)
    stop = stop or asyncio.Event()
    sweeper = asyncio.create_task(_sweep(clock, IDLE_SECONDS / 5))
    try:
        async with server:
            await stop.wait()
    finally:
        sweeper.cancel()
