"""Keep-alive HTTP/1.1 connections to one V2 endpoint that send the next request from the answer's own callback.

A general HTTP client (aiohttp) turns each answer into tasks and loop turns before the next request leaves:
here about 2 ms per request against a predictor that takes 10, so with one request in flight the predictor
stood idle a sixth of the time and a job needed two in flight (twice the latency) to keep it busy. This
pool holds requests ready to go (bodies encoded ahead) and writes the next one on the connection that just
answered, inside the callback that completed the answer (httptools parses it in C), before the answer is
handed to the job: the predictor waits tens of microseconds between requests, not milliseconds.

Only a successful answer sends the next request from the callback: after an overload answer (429/503) or
a failure, the job decides first (it may pause for Retry-After or lower the concurrency).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httptools

from serving_core.errors import InvalidInputError


@dataclass(frozen=True)
class RawAnswer:
    """What one request got back.

    ``status`` is 0 when no HTTP answer came (refused or broken connection, timeout); ``body`` then says
    why. ``latency_s`` runs from the request's write to its answer's last byte.
    """

    status: int
    body: bytes
    latency_s: float
    sequence: int
    headers: dict[str, str] = field(default_factory=dict)  # names in lower case


@dataclass
class _Exchange:
    body: bytes
    future: asyncio.Future[RawAnswer]
    sequence: int = 0
    sent_at: float = 0.0


@dataclass(frozen=True)
class Endpoint:
    """Where requests go: a connection target and the request head every request starts with."""

    host: str
    port: int
    tls: bool
    path: str
    host_header: str

    @classmethod
    def of(cls, url: str) -> Endpoint:
        """The endpoint of an ``http://`` or ``https://`` URL.

        Raises:
            InvalidInputError: another scheme, or no host.
        """
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidInputError(
                f"the model endpoint {url!r} is not an http:// or https:// URL with a host",
                hint="pass the InferenceService's URL, e.g. http://iris.ai.svc.cluster.local",
            )
        default_port = 443 if parts.scheme == "https" else 80
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        port = parts.port or default_port
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        host_header = host if port == default_port else f"{host}:{port}"
        return cls(parts.hostname, port, parts.scheme == "https", path, host_header)

    def request(self, body: bytes) -> bytes:
        """The whole POST request for a JSON ``body``."""
        head = (
            f"POST {self.path} HTTP/1.1\r\nHost: {self.host_header}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nUser-Agent: aiserving-batch\r\n\r\n"
        )
        return head.encode("latin-1") + body


class _Connection(asyncio.Protocol):
    """One keep-alive connection: one request at a time, its answer parsed as bytes arrive."""

    def __init__(self, pool: ConnectionPool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.exchange: _Exchange | None = None
        self.timer: asyncio.TimerHandle | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._body: list[bytes] = []
        self._headers: dict[str, str] = {}
        self._headers_done = False
        self._length_known = False
        self._closing_reason = ""

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as error:
            self._fail(f"unreadable HTTP answer: {error}")

    def connection_lost(self, exc: Exception | None) -> None:
        self.pool.forget(self)
        if self.exchange is None:
            return
        if self._headers_done and not self._length_known and exc is None:
            self.on_message_complete()  # an answer without length ends where the connection does
            return
        reason = self._closing_reason or (f"{type(exc).__name__}: {exc}" if exc else "the server closed the connection")
        self._resolve(RawAnswer(0, reason.encode(), 0.0, self.exchange.sequence))

    # httptools callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        lowered = name.decode("latin-1").lower()
        self._headers[lowered] = value.decode("latin-1")
        if lowered in ("content-length", "transfer-encoding"):
            self._length_known = True

    def on_headers_complete(self) -> None:
        self._headers_done = True

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        exchange = self.exchange
        if exchange is None:
            self._fail("an answer came with no request in flight")
            return
        status = self._parser.get_status_code()
        if 100 <= status < 200:
            # An interim answer (100 Continue, 103 Early Hints): the final one follows on this connection.
            self._body, self._headers, self._headers_done, self._length_known = [], {}, False, False
            return
        answer = RawAnswer(status, b"".join(self._body), time.monotonic() - exchange.sent_at, exchange.sequence,
                           self._headers)  # fmt: skip
        reusable = self._parser.should_keep_alive() and self._length_known
        self._resolve(answer, reusable)
        if not reusable and self.transport is not None:
            self.transport.close()

    # the pool's side

    def send(self, exchange: _Exchange, request: bytes) -> None:
        """Write ``exchange``'s request; its answer resolves the exchange's future."""
        assert self.transport is not None
        assert self.exchange is None
        self.exchange = exchange
        self._body, self._headers, self._headers_done, self._length_known = [], {}, False, False
        self.timer = asyncio.get_running_loop().call_later(self.pool.timeout_s, self._time_out)
        exchange.sent_at = time.monotonic()
        self.transport.write(request)

    def _time_out(self) -> None:
        self._closing_reason = f"TimeoutError: no answer within {self.pool.timeout_s:g} s"
        if self.transport is not None:
            self.transport.abort()

    def _fail(self, reason: str) -> None:
        self._closing_reason = reason
        if self.transport is not None:
            self.transport.abort()

    def _resolve(self, answer: RawAnswer, reusable: bool = False) -> None:
        exchange, self.exchange = self.exchange, None
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        assert exchange is not None
        self.pool.answered(self, exchange, answer, reusable)


@dataclass
class ConnectionPool:
    """Requests to one endpoint, at most ``capacity`` in flight, the rest queued in order.

    ``on_send(in_flight)`` is called as each request is written (``in_flight`` counts it) and returns the
    request's sequence number, which comes back in its :class:`RawAnswer`.
    """

    url: str
    on_send: Callable[[int], int]
    timeout_s: float = 120.0
    endpoint: Endpoint = field(init=False)
    _capacity: int = 0
    _queued: deque[_Exchange] = field(default_factory=deque)
    _idle: list[_Connection] = field(default_factory=list)
    _open: set[_Connection] = field(default_factory=set)
    _in_flight: int = 0
    _tls: ssl.SSLContext | None = None
    _opening: set[asyncio.Task[None]] = field(default_factory=set)

    def __post_init__(self) -> None:
        """Parse the URL once (every request reuses its head)."""
        self.endpoint = Endpoint.of(self.url)
        if self.endpoint.tls:
            self._tls = ssl.create_default_context()

    @property
    def capacity(self) -> int:
        """The most requests in flight; raising it sends queued requests at once."""
        return self._capacity

    @capacity.setter
    def capacity(self, value: int) -> None:
        self._capacity = value
        self._pump()

    @property
    def in_flight(self) -> int:
        """Requests written (or waiting for their connection to open) and not answered yet."""
        return self._in_flight

    @property
    def queued(self) -> int:
        """Requests waiting for room under the capacity."""
        return len(self._queued)

    def submit(self, body: bytes) -> asyncio.Future[RawAnswer]:
        """Queue a POST of ``body``; it is sent as soon as the capacity allows. The future never raises."""
        future: asyncio.Future[RawAnswer] = asyncio.get_running_loop().create_future()
        self._queued.append(_Exchange(body, future))
        self._pump()
        return future

    def close(self) -> None:
        """Drop every connection; queued requests are not sent (their futures are cancelled)."""
        for exchange in self._queued:
            exchange.future.cancel()
        self._queued.clear()
        for opening in self._opening:
            opening.cancel()
        for connection in list(self._open):
            if connection.transport is not None:
                connection.transport.abort()
        self._open.clear()
        self._idle.clear()

    def answered(self, connection: _Connection, exchange: _Exchange, answer: RawAnswer, reusable: bool) -> None:
        """A connection's request is answered (or failed): free its room, send the next, then hand it over."""
        self._in_flight -= 1
        if reusable:
            self._idle.append(connection)
        if 200 <= answer.status < 300:
            self._pump()  # before the answer is handed over: the predictor gets its next request now
        if not exchange.future.done():
            exchange.future.set_result(answer)

    def forget(self, connection: _Connection) -> None:
        """A connection closed: it takes no more requests."""
        self._open.discard(connection)
        if connection in self._idle:
            self._idle.remove(connection)

    def _pump(self) -> None:
        while self._queued and self._in_flight < self._capacity:
            self._dispatch(self._queued.popleft())

    def _dispatch(self, exchange: _Exchange) -> None:
        """Give ``exchange`` a connection: an idle one, else a new one."""
        if exchange.future.done():  # cancelled while queued
            return
        self._in_flight += 1
        exchange.sequence = self.on_send(self._in_flight)
        if self._idle:
            self._idle.pop().send(exchange, self.endpoint.request(exchange.body))
        else:
            opening = asyncio.get_running_loop().create_task(self._open_and_send(exchange))
            self._opening.add(opening)  # the loop keeps only a weak reference to a task
            opening.add_done_callback(self._opening.discard)

    async def _open_and_send(self, exchange: _Exchange) -> None:
        loop = asyncio.get_running_loop()
        endpoint = self.endpoint
        try:
            _, connection = await asyncio.wait_for(
                loop.create_connection(lambda: _Connection(self), endpoint.host, endpoint.port, ssl=self._tls),
                self.timeout_s,
            )
        except (OSError, TimeoutError) as error:
            self._in_flight -= 1
            if not exchange.future.done():
                exchange.future.set_result(RawAnswer(0, f"{type(error).__name__}: {error}".encode(), 0.0,
                                                     exchange.sequence))  # fmt: skip
            return
        self._open.add(connection)
        connection.send(exchange, endpoint.request(exchange.body))
