"""uvicorn's httptools protocol with a lean path for JSON inference: no ASGI task, one write per response.

Without batching every request pays the serving work on top of its own predict, so that work
bounds throughput against the model's floor. uvicorn serves a request by building an ASGI scope,
starting a task, calling the middleware chain, and writing headers and body in two system calls.
For ``POST /v2/models/NAME/infer`` and ``POST /v1/models/NAME:predict`` with a plain JSON body, this
protocol skips all of that: it collects the body from the parser's callbacks, queues the request
with :meth:`MlflowPyfuncModel.enqueue` and writes status line, headers and body in one
``transport.write`` from the batch future's callback.

Everything else is uvicorn's own code path, unchanged: other routes (health, metadata, metrics,
KServe's handlers), requests the lean route declines (binary tensors, CloudEvents, other content
types, ``Expect: 100-continue``, query strings, upgrades) and pipelined requests that arrive while
another is in flight (uvicorn queues those in order). A request that asks for binary outputs is
known only once its body is parsed; it is handed to the ASGI app then, as uvicorn would have.
Responses carry what uvicorn would send: its default headers (``date``, ``server``),
``content-type``, ``content-length`` and ``connection: close`` when the connection ends.
Keep-alive, the keep-alive timeout and graceful shutdown are uvicorn's: the lean request stands
in for uvicorn's request cycle with the same flags.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol, RequestResponseCycle
from uvicorn.server import ServerState

from model_wrappers.decode import Arrays
from model_wrappers.fast_path import Fallback, JsonRequest, error_answer, takes_headers
from model_wrappers.instrumentation import Arrival
from model_wrappers.metrics import ServingMetrics
from model_wrappers.model import MlflowPyfuncModel


class LeanRoute:
    """The inference URLs of one model that the lean protocol answers, and what it records per request."""

    def __init__(self, model: MlflowPyfuncModel, metrics: ServingMetrics) -> None:
        """Answer ``model``'s V1 and V2 JSON inference; count requests into ``metrics``."""
        self.model = model
        self.metrics = metrics
        self.protocol_of_url = {
            f"/v2/models/{model.name}/infer".encode(): "v2",
            f"/v1/models/{model.name}:predict".encode(): "v1",
        }


class _NoEvent:
    """uvicorn sets its cycle's message event when the connection is lost; nobody waits on a lean one."""

    def set(self) -> None:
        """Nothing waits."""


_NO_EVENT = _NoEvent()


class _LeanCycle:
    """One lean request, with the attributes uvicorn's protocol reads from its request cycle."""

    __slots__ = ("arrival", "body", "disconnected", "keep_alive", "protocol", "response_complete", "started")
    message_event = _NO_EVENT

    def __init__(self, *, keep_alive: bool, protocol: str, arrival: Arrival) -> None:
        self.body = b""
        self.disconnected = False
        self.keep_alive = keep_alive
        self.response_complete = False
        self.protocol = protocol
        self.arrival = arrival
        self.started = time.perf_counter()


class LeanHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol answering one model's JSON inference directly (module docstring)."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        route: LeanRoute,
    ) -> None:
        """Uvicorn's protocol (uvicorn passes the first arguments), plus the lean ``route``."""
        super().__init__(config, server_state, app_state, _loop)
        self.route = route
        # Status line and uvicorn's default headers, rebuilt when uvicorn replaces those (the date, each second).
        self._head_for: list[tuple[bytes, bytes]] | None = None
        self._heads: dict[int, bytes] = {}

    # --- parser callbacks: the lean request, or uvicorn's --------------------------------------------

    def on_headers_complete(self) -> None:
        """Take the request on the lean path if it qualifies, else let uvicorn start its ASGI cycle."""
        protocol = self.route.protocol_of_url.get(self.url)
        if (
            protocol is not None
            and self.parser.get_method() == b"POST"
            and not self.expect_100_continue
            and not self.parser.should_upgrade()
            and (self.cycle is None or self.cycle.response_complete)  # else uvicorn queues it behind the one in flight
            and takes_headers(self.headers)
        ):
            keep_alive = self.parser.get_http_version() != "1.0" and self.parser.should_keep_alive()
            arrival = self.route.model.arrivals.begin()
            self.cycle = _LeanCycle(keep_alive=keep_alive, protocol=protocol, arrival=arrival)  # type: ignore[assignment]
            return
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        """Collect a lean request's body (read in full, as KServe's handlers do); uvicorn's otherwise."""
        cycle: object = self.cycle  # uvicorn types it as its own cycle; a lean one stands in
        if isinstance(cycle, _LeanCycle):
            cycle.body += body
        else:
            super().on_body(body)

    def on_message_complete(self) -> None:
        """Queue a lean request for the model; uvicorn's otherwise."""
        cycle: object = self.cycle  # uvicorn types it as its own cycle; a lean one stands in
        if not isinstance(cycle, _LeanCycle):
            super().on_message_complete()
            return
        model = self.route.model
        request = JsonRequest(cycle.body, v2=cycle.protocol == "v2", model_name=model.name)
        try:
            future = model.enqueue(request)
        except Fallback:
            self._hand_to_app(cycle)
        except Exception as error:  # not ready, or not what the signature takes
            self._answer(cycle, *error_answer(error))
        else:
            future.add_done_callback(lambda done: self._answer_outputs(cycle, request, done))
        finally:  # queued or not, the request is no longer on its way to a batch
            model.arrivals.end(cycle.arrival)

    def connection_lost(self, exc: Exception | None) -> None:
        """uvicorn's; a lean request cut off before its body was complete is no longer on its way to a batch."""
        cycle: object = self.cycle
        if isinstance(cycle, _LeanCycle):
            self.route.model.arrivals.end(cycle.arrival)  # idempotent: a queued request has ended it already
        super().connection_lost(exc)

    # --- answers -----------------------------------------------------------------------------------

    def _answer_outputs(self, cycle: _LeanCycle, request: JsonRequest, done: asyncio.Future[Arrays]) -> None:
        try:
            status, answer = 200, request.encode(done.result())
        except Exception as error:  # the model (or encoding its outputs) failed
            status, answer = error_answer(error)
        self._answer(cycle, status, answer)

    def _answer(self, cycle: _LeanCycle, status: int, answer: Any) -> None:
        """Write the whole response in one write, record it, and let uvicorn continue the connection."""
        try:
            payload = orjson.dumps(answer)
        except orjson.JSONEncodeError as error:  # outputs JSON cannot hold: KServe's 500, not a hung caller
            status, body = error_answer(error)
            payload = orjson.dumps(body)
        self.route.metrics.observe_request(cycle.protocol, str(status), time.perf_counter() - cycle.started)
        if cycle.disconnected:  # as uvicorn: nothing to write to, and the connection is gone
            return
        parts = [self._head(status), b"content-length: ", str(len(payload)).encode(), b"\r\n"]
        if not cycle.keep_alive:
            parts.append(b"connection: close\r\n")
        parts += (b"\r\n", payload)
        self.transport.write(b"".join(parts))
        cycle.response_complete = True
        if not cycle.keep_alive:
            self.transport.close()
        self.on_response_complete()  # uvicorn: the next pipelined request, or the keep-alive timer

    def _head(self, status: int) -> bytes:
        """Status line, uvicorn's default headers and the content type (cached until uvicorn renews its headers)."""
        defaults = self.server_state.default_headers
        if defaults is not self._head_for:
            self._head_for, self._heads = defaults, {}
        head = self._heads.get(status)
        if head is None:
            lines = [STATUS_LINE[status], *(name + b": " + value + b"\r\n" for name, value in defaults)]
            head = self._heads[status] = b"".join([*lines, b"content-type: application/json\r\n"])
        return head

    def _hand_to_app(self, cycle: _LeanCycle) -> None:
        """Serve the request through the ASGI app after all: what uvicorn's ``on_headers_complete`` would do."""
        scope = self.scope
        http_version = self.parser.get_http_version()
        if http_version != "1.1":
            scope["http_version"] = http_version
        # The URL matched one of the route's exactly: no query string, nothing percent-encoded.
        scope["method"] = "POST"
        scope["path"] = self.root_path + self.url.decode("ascii")
        scope["raw_path"] = self.root_path.encode("ascii") + self.url
        scope["query_string"] = b""
        asgi = RequestResponseCycle(
            scope=scope,
            transport=self.transport,
            flow=self.flow,
            logger=self.logger,
            access_logger=self.access_logger,
            access_log=self.access_log,
            default_headers=self.server_state.default_headers,
            message_event=asyncio.Event(),
            expect_100_continue=False,
            keep_alive=cycle.keep_alive,
            on_response=self.on_response_complete,
        )
        asgi.body = bytearray(cycle.body)
        asgi.more_body = False
        asgi.disconnected = cycle.disconnected
        asgi.message_event.set()  # the whole body is there: the app's first receive() returns it
        self.cycle = asgi
        self._start_asgi_task(asgi, self.app)
