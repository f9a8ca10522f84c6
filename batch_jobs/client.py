"""A V2 (open inference protocol) REST client for batches of rows, paced by :mod:`batch_jobs.concurrency`.

Answers are sorted by what can help: 200 gives one result per row; 429 and 503 are overload (pause,
shrink the concurrency, send again); another 4xx means a row is bad, so the batch is split in halves
until the bad rows stand alone and become per-item errors with the server's reason; 5xx and broken
connections are retried a few times, then the rows become errors; a redirect is not followed (its items
fail, naming the address to use instead).

Requests go through :class:`batch_jobs.connections.ConnectionPool`, one encoded request ahead of those in
flight, so that the next request leaves the moment an answer arrives.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import orjson
import requests

from batch_jobs.concurrency import ConcurrencyController, ConcurrencySettings
from batch_jobs.connections import ConnectionPool, RawAnswer
from batch_jobs.schema import ModelMetadata, RowEncoder, parse_metadata
from serving_core.errors import AiServingError, NotFoundError, RemoteServiceError, UnreachableError
from serving_core.retry_after import retry_after_seconds

OVERLOAD = (429, 503)
CANCEL_CHECK_S = 1.0


class JobCancelledError(AiServingError):
    """Someone asked the job to stop; finished shards are kept and a re-run resumes after them."""

    exit_code = 10


@dataclass(frozen=True)
class Batch:
    """Items sent in one request: their ids, their rows and, once encoded, the request body.

    Rows are dicts, or (a Parquet file's feature columns, see :meth:`batch_jobs.readers.ParquetRows.matrix`)
    one array of rows x columns with ``rows`` left empty. Rows are encoded when the batch is queued, one
    request ahead of those in flight, so encoding overlaps the predictor's work instead of holding it idle;
    a retry sends the same body again.
    """

    ids: Sequence[int]
    rows: Sequence[dict[str, Any]] = ()
    matrix: np.ndarray | None = None
    body: bytes | None = None
    attempts: int = 0

    def retried(self) -> Batch:
        """The same rows, one attempt later."""
        return dataclasses.replace(self, attempts=self.attempts + 1)

    def halves(self, attempts: int = 0) -> tuple[Batch, Batch]:
        """The first and the second half of the rows (to find a bad row by bisection), encoded again when sent."""
        half = len(self.ids) // 2

        def part(span: slice) -> Batch:
            matrix = None if self.matrix is None else self.matrix[span]
            return Batch(self.ids[span], self.rows[span], matrix, attempts=attempts)

        return part(slice(None, half)), part(slice(half, None))


class ItemError(NamedTuple):
    """An item that failed, and why (a tuple: one is made per failed item)."""

    id: int
    error: str


@dataclass(frozen=True)
class OutputColumn:
    """One output of a V2 answer for all items of a request: ``width`` values per item, in item order."""

    name: str
    values: list[Any]
    width: int
    # One value per item, written as itself rather than a one-element list.
    scalar: bool

    def item(self, position: int) -> Any:
        """The value(s) of the item at ``position`` in the request."""
        if self.scalar:
            return self.values[position]
        return self.values[position * self.width : (position + 1) * self.width]


@dataclass(frozen=True)
class Outcome:
    """What one request did for its items.

    The answered items' outputs stay columns as the server sent them and are split per item only when
    the shard is written (off the send loop).
    """

    answered: Sequence[int] = ()
    outputs: tuple[OutputColumn, ...] = ()
    failed: tuple[ItemError, ...] = ()

    def outputs_of(self, position: int) -> dict[str, Any]:
        """The outputs of the answered item at ``position``: ``{output name: value}``."""
        return {column.name: column.item(position) for column in self.outputs}


class _BatchQueue:
    """Batches to send: retries first, then the next fresh batch, drawn only when needed.

    Drawing lazily keeps a job's memory to the batches in flight, whatever the job's size.
    """

    def __init__(self, batches: Iterable[Batch]) -> None:
        self._fresh = iter(batches)
        self._front: deque[Batch] = deque()

    def __bool__(self) -> bool:
        if not self._front:
            upcoming = next(self._fresh, None)
            if upcoming is None:
                return False
            self._front.append(upcoming)
        return True

    def pop(self) -> Batch:
        """The next batch (call only after the queue tested true)."""
        return self._front.popleft()

    def push_front(self, batch: Batch) -> None:
        """Send ``batch`` before any other (a retry, or a half of a failed batch)."""
        self._front.appendleft(batch)


def output_columns(document: dict[str, Any], rows: int) -> tuple[OutputColumn, ...]:
    """The outputs of a V2 answer for ``rows`` items; an output of one value per row is a scalar per item.

    Raises:
        ValueError: an output's size does not divide into ``rows`` rows.
    """
    columns = []
    for output in document.get("outputs", []):
        data = output.get("data", [])
        shape = output.get("shape", [len(data)])
        if len(data) % rows:
            raise ValueError(f"output {output.get('name')} has {len(data)} values for {rows} rows")
        width = len(data) // rows
        columns.append(OutputColumn(str(output.get("name")), data, width, width == 1 and len(shape) <= 1))
    return tuple(columns)


def fetch_metadata(endpoint_url: str, model_name: str, timeout_s: float = 10.0) -> ModelMetadata:
    """The model's V2 metadata (``GET /v2/models/NAME``).

    Raises:
        UnreachableError: nothing answers at the endpoint.
        NotFoundError: the endpoint serves no model of that name.
        RemoteServiceError: another error answer.
    """
    url = f"{endpoint_url.rstrip('/')}/v2/models/{model_name}"
    try:
        answer = requests.get(url, timeout=timeout_s)
    except requests.RequestException as error:
        raise UnreachableError(
            f"the model endpoint {endpoint_url} did not answer: {error}",
            hint="check the InferenceService is ready, or the endpoint URL",
        ) from error
    if answer.status_code == 404:
        raise NotFoundError(f"{endpoint_url} serves no model {model_name!r}", hint="check the model name")
    if answer.status_code != 200:
        raise RemoteServiceError(
            f"GET {url} answered {answer.status_code}: {answer.text[:300]}", retryable=answer.status_code >= 500
        )
    return parse_metadata(answer.json())


class V2BatchClient:
    """Sends batches to one model's V2 infer endpoint with adaptive concurrency."""

    def __init__(
        self,
        endpoint_url: str,
        model_name: str,
        encoder: RowEncoder,
        settings: ConcurrencySettings,
        *,
        timeout_s: float = 120.0,
        max_attempts: int = 6,
    ) -> None:
        """Call ``endpoint_url`` for ``model_name``; ``max_attempts`` bounds retries of one batch."""
        self.url = f"{endpoint_url.rstrip('/')}/v2/models/{model_name}/infer"
        self.encoder = encoder
        self.controller = ConcurrencyController(settings)
        self.timeout_s = timeout_s
        self.max_attempts = max_attempts

    def run(
        self,
        batches: Iterable[Batch],
        on_outcome: Callable[[Outcome, float], None],
        cancelled: Callable[[], bool] = lambda: False,
    ) -> None:
        """Send every batch; ``on_outcome(outcome, latency_s)`` gets what each finished request did.

        ``latency_s`` is 0 for items that failed without an answer to time (rows that did not fit the
        model, requests given up).

        ``batches`` is drawn as requests can be sent, so it may be a generator over a whole job.

        Raises:
            JobCancelledError: ``cancelled()`` turned true (checked between answers).
        """
        asyncio.run(self._run(batches, on_outcome, cancelled))

    async def _run(
        self,
        batches: Iterable[Batch],
        on_outcome: Callable[[Outcome, float], None],
        cancelled: Callable[[], bool],
    ) -> None:
        pending = _BatchQueue(batches)
        pool = ConnectionPool(self.url, self.controller.sent, self.timeout_s)
        # Requests in flight and the one queued beyond them, with their batches.
        waiting: dict[asyncio.Future[RawAnswer], Batch] = {}
        next_cancel_check = 0.0
        try:
            while pending or waiting:
                now = time.monotonic()
                # At most once a second: on S3 each check is a request.
                if now >= next_cancel_check:
                    next_cancel_check = now + CANCEL_CHECK_S
                    if cancelled():
                        raise JobCancelledError("the job was cancelled", hint="run it again to resume")
                pool.capacity = self.controller.allowed(now)
                # One request more than may be in flight waits encoded in the pool, so that an answer's callback
                # sends it at once; encoding happens while the predictor works.
                while pending and len(waiting) <= pool.capacity:
                    batch, bad = self._encoded(pending.pop())
                    if bad:
                        on_outcome(Outcome(failed=bad), 0.0)
                    if batch.ids:
                        waiting[pool.submit(batch.body or b"")] = batch
                if not waiting:
                    continue
                wait_s = 0.5 if pool.in_flight else min(0.5, max(0.01, self.controller.paused_until - now))
                done, _ = await asyncio.wait(waiting, timeout=wait_s, return_when="FIRST_COMPLETED")
                for future in done:
                    self._handle(waiting.pop(future), future.result(), pending, on_outcome)
        finally:
            pool.close()

    def _encoded(self, batch: Batch) -> tuple[Batch, tuple[ItemError, ...]]:
        """The batch with its request body, less the rows that do not fit the model (returned as errors)."""
        if batch.body is not None:
            return batch, ()
        if batch.matrix is not None:  # checked as a whole when the file was read
            return dataclasses.replace(batch, body=self.encoder.body_of(batch.matrix)), ()
        request, bad = self.encoder.request_of(batch.rows)
        try:
            body = orjson.dumps(request)
        except orjson.JSONEncodeError as error:  # e.g. an integer beyond 64 bits
            return Batch(()), tuple(ItemError(item, f"bad row: {error}") for item in batch.ids)
        if not bad:
            return dataclasses.replace(batch, body=body), ()
        kept = [position for position in range(len(batch.ids)) if position not in bad]
        return (
            Batch(tuple(batch.ids[p] for p in kept), tuple(batch.rows[p] for p in kept), body=body,
                  attempts=batch.attempts),
            tuple(ItemError(batch.ids[position], f"bad row: {reason}") for position, reason in bad.items()),
        )  # fmt: skip

    def _handle(
        self,
        batch: Batch,
        answer: RawAnswer,
        pending: _BatchQueue,
        on_outcome: Callable[[Outcome, float], None],
    ) -> None:
        if answer.status == 200:
            try:
                outputs = output_columns(orjson.loads(answer.body), len(batch.ids))
            except (ValueError, TypeError, AttributeError) as error:
                on_outcome(Outcome(failed=tuple(ItemError(item, f"unreadable answer: {error}") for item in batch.ids)),
                           0.0)  # fmt: skip
                return
            self.controller.on_answer(answer.sequence, answer.latency_s)
            on_outcome(Outcome(batch.ids, outputs), answer.latency_s)
            return
        reason = f"HTTP {answer.status}: {_detail(answer.body)}" if answer.status else _detail(answer.body)
        if 300 <= answer.status < 400:
            # Requests are not sent on to another address: the job's endpoint is the one to fix.
            where = answer.headers.get("location", "another address")
            reason = f"HTTP {answer.status}: the endpoint redirects to {where}; pass that URL as the endpoint"
            on_outcome(Outcome(failed=tuple(ItemError(item, reason) for item in batch.ids)), 0.0)
            return
        if answer.status in OVERLOAD:
            retry_after = retry_after_seconds(answer.headers.get("retry-after"))
            self.controller.on_overload(answer.sequence, time.monotonic(), retry_after)
        retry = answer.status in OVERLOAD or answer.status == 0 or answer.status >= 500
        if retry and batch.attempts + 1 < self.max_attempts:
            if answer.status not in OVERLOAD:
                # A broken answer is not overload, but give the server a moment before the same rows again.
                self.controller.paused_until = max(self.controller.paused_until, time.monotonic() + 0.05)
            pending.push_front(batch.retried())
            return
        if answer.status not in OVERLOAD and answer.status != 0 and len(batch.ids) > 1:
            # A bad row spoils its whole request (4xx, or a model that fails with 5xx): halve until the bad
            # rows stand alone. Halves of a batch that kept failing get one try each.
            for half in reversed(batch.halves(self.max_attempts - 1 if retry else 0)):
                pending.push_front(half)
            return
        suffix = f" after {batch.attempts + 1} attempts" if retry else ""
        on_outcome(Outcome(failed=tuple(ItemError(item, reason + suffix) for item in batch.ids)), 0.0)


def _detail(body: bytes) -> str:
    """The server's error message: the ``error`` field of a JSON answer, else the text, shortened."""
    text = body.decode(errors="replace")
    try:
        document = json.loads(text)
    except ValueError:
        return text[:300]
    if isinstance(document, dict) and "error" in document:
        return str(document["error"])[:300]
    return text[:300]
