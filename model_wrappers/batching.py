"""Adaptive batching: concurrent callers' rows stacked into one predict call, results split back.

One predict runs at a time (a GPU or a CPU core is the bottleneck); callers that arrive while
it runs form the next batch. A batch closes when it holds ``max_batch_size`` rows, when its
oldest caller has waited ``max_latency``, or at once when no other caller is on its way: none
is being received and the batch holds as many callers as the previous one did (so a lone
caller never waits, and a steady crowd is not split into a batch of one and the rest).
When a merged batch fails, each of its callers is retried alone, so one caller's bad rows
fail only that caller (with 500) and never its neighbours. Once :meth:`AdaptiveBatcher.drain`
begins, new callers get :class:`DrainingError`; drain returns when the queued work is done.

Predict runs in a thread of its own, so the event loop keeps receiving the next batch while it
runs; or, without batching (``predict_on_loop``), on the event loop itself, one caller per loop
iteration in arrival order (what KServe does with a synchronous ``predict``), which is cheaper when
every call holds one request: see :class:`AdaptiveBatcher`.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from model_wrappers.decode import Arrays, stack
from model_wrappers.encode import slice_rows
from model_wrappers.metrics import ServingMetrics
from serving_core.errors import InvalidInputError

logger = logging.getLogger(__name__)

PredictFn = Callable[[Arrays, int], Arrays]


class DrainingError(RuntimeError):
    """The batcher is draining for shutdown and queues no more callers; another replica can serve them."""


@dataclass
class _Pending:
    arrays: Arrays
    rows: int
    enqueued_at: float
    future: asyncio.Future[Arrays] = field(repr=False)

    @property
    def stack_key(self) -> tuple[tuple[str, str, tuple[int, ...]], ...]:
        """Requests stack only with the same inputs, dtypes and trailing shapes."""
        return tuple(sorted((name, array.dtype.str, array.shape[1:]) for name, array in self.arrays.items()))


class AdaptiveBatcher:
    """Queue callers' decoded rows and run them through ``predict`` in batches."""

    def __init__(
        self,
        predict: PredictFn,
        *,
        max_batch_size: int,
        max_latency_s: float,
        metrics: ServingMetrics,
        pending_arrivals: Callable[[], int] = lambda: 0,
        executor: concurrent.futures.Executor | None = None,
        predict_on_loop: bool = False,
    ) -> None:
        """Batch calls to ``predict(arrays, rows) -> output arrays`` (run in ``executor``, a thread by default).

        ``pending_arrivals`` tells how many requests are being received but are not queued yet;
        while it is zero the batcher does not wait for more callers.

        ``predict_on_loop`` (only without batching, ``max_batch_size`` 1) runs ``predict`` on the
        event loop: callers queue in arrival order and each loop iteration runs one of them (a
        ``call_soon`` callback, no worker task), so between two predicts the loop writes the answers
        and reads new requests. Running a predict as soon as its request is parsed would serve the
        connections the kernel reports first again and again (measured: some callers waited 2 s at
        concurrency 32). A predict thread would compete with the event loop for the GIL on
        every request (sklearn, torch and numpy release and retake it many times per call), which
        cost a 1-row RandomForest predict about 1 ms of extra CPU on one core
        (``benchmarks/serving.py``, docs/performance.md). The event loop then answers nothing else
        (health, metrics) while a predict runs.

        Raises:
            InvalidInputError: a limit is out of range, or ``predict_on_loop`` with batching.
        """
        if max_batch_size < 1:
            raise InvalidInputError(f"max batch size must be at least 1, got {max_batch_size}")
        if predict_on_loop and max_batch_size != 1:
            raise InvalidInputError(f"predict on the event loop serves one request per call, not {max_batch_size}")
        if max_latency_s < 0:
            raise InvalidInputError(f"max latency must not be negative, got {max_latency_s * 1000:g} ms")
        self._predict = predict
        self._max_rows = max_batch_size
        self._max_latency_s = max_latency_s
        self._metrics = metrics
        self._pending_arrivals = pending_arrivals
        self._predict_on_loop = predict_on_loop
        self._executor = executor or concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="predict")
        # A deque and one wake-up future: asyncio.Queue with wait_for costs a task per wait.
        self._queue: collections.deque[_Pending] = collections.deque()
        self._wakeup: asyncio.Future[None] | None = None
        self._carry: _Pending | None = None
        self._worker: asyncio.Task[None] | None = None
        self._busy = False
        self._closing = False
        # Set by the worker once closing and idle: drain waits on it instead of polling.
        self._drained: asyncio.Future[None] | None = None
        # Callers in the previous batch: closed-loop clients come back about as many at a time.
        self._previous_batch_requests = 1

    async def submit(self, arrays: Arrays, rows: int) -> Arrays:
        """Queue one caller's rows and wait for exactly its rows of the outputs, in order."""
        return await self.enqueue(arrays, rows)

    def enqueue(self, arrays: Arrays, rows: int) -> asyncio.Future[Arrays]:
        """Queue one caller's rows; the future holds exactly its rows of the outputs, or the model's error.

        For callers that answer from a callback rather than a task (the lean HTTP protocol).

        Raises:
            DrainingError: the batcher is draining for shutdown.
        """
        if self._closing:
            raise DrainingError("the model server is shutting down")
        loop = asyncio.get_running_loop()
        pending = _Pending(arrays=arrays, rows=rows, enqueued_at=loop.time(), future=loop.create_future())
        self._queue.append(pending)
        self._metrics.queue_depth.inc()
        if self._predict_on_loop:
            if not self._busy:
                self._busy = True
                loop.call_soon(self._predict_next)
            return pending.future
        if self._worker is None:
            self._worker = loop.create_task(self._run(), name="adaptive-batcher")
        self._wake()
        return pending.future

    async def drain(self) -> None:
        """Stop taking callers, finish every queued batch, then stop the worker."""
        self._closing = True
        if not self._idle():
            if self._drained is None:
                self._drained = asyncio.get_running_loop().create_future()
            await self._drained
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.cancel()
            await asyncio.gather(worker, return_exceptions=True)

    def _predict_next(self) -> None:
        """Without batching: the oldest caller's predict, on the loop; the next one in the next iteration."""
        pending = self._queue.popleft()
        self._metrics.queue_depth.dec()
        self._metrics.observe_batch(pending.rows, 1)
        try:
            outputs = self._predict(pending.arrays, pending.rows)
        except Exception as error:  # reaches this caller as a 500
            self._fail(pending.future, pending.rows, error)
        else:
            if not pending.future.done():  # the caller may have gone away
                pending.future.set_result(outputs)
        if self._queue:
            asyncio.get_running_loop().call_soon(self._predict_next)
            return
        self._busy = False
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    def _idle(self) -> bool:
        """No batch running and nobody queued or carried over."""
        return not (self._busy or self._carry is not None or self._queue)

    def _wake(self) -> None:
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)

    async def _wait(self, timeout_s: float | None) -> None:
        """Until a caller is queued or ``timeout_s`` passes."""
        loop = asyncio.get_running_loop()
        self._wakeup = loop.create_future()
        timer = None if timeout_s is None else loop.call_later(timeout_s, self._wake)
        try:
            await self._wakeup
        finally:
            if timer is not None:
                timer.cancel()
            self._wakeup = None

    async def _next(self) -> _Pending:
        if self._carry is not None:
            pending, self._carry = self._carry, None
            return pending
        while not self._queue:
            await self._wait(None)
        return self._queue.popleft()

    async def _collect(self) -> list[_Pending]:
        loop = asyncio.get_running_loop()
        batch = [await self._next()]
        self._busy = True
        rows = batch[0].rows
        deadline = batch[0].enqueued_at + self._max_latency_s
        while rows < self._max_rows:
            if not self._queue:
                timeout = deadline - loop.time()
                others_coming = self._pending_arrivals() > 0 or len(batch) < self._previous_batch_requests
                if timeout <= 0 or not others_coming:
                    break
                await self._wait(timeout)
                if not self._queue:
                    break  # the latency budget ran out
            pending = self._queue.popleft()
            if rows + pending.rows > self._max_rows:
                self._carry = pending
                break
            batch.append(pending)
            rows += pending.rows
        self._metrics.queue_depth.dec(len(batch))
        self._previous_batch_requests = len(batch)
        return batch

    async def _run(self) -> None:
        while True:
            batch = await self._collect()
            if len(batch) == 1:
                await self._execute(batch)
            else:
                groups: dict[Any, list[_Pending]] = {}
                for pending in batch:
                    groups.setdefault(pending.stack_key, []).append(pending)
                for group in groups.values():
                    await self._execute(group)
            self._busy = False
            if self._drained is not None and not self._drained.done() and self._idle():
                self._drained.set_result(None)

    async def _execute(self, group: list[_Pending]) -> None:
        rows = sum(pending.rows for pending in group)
        self._metrics.observe_batch(rows, len(group))
        try:
            outputs = await self._run_predict(stack([pending.arrays for pending in group]), rows)
        except Exception as error:  # a model failure must reach the callers, never kill the worker
            if len(group) == 1:
                self._fail(group[0].future, rows, error)
                return
            # One caller's bad rows must not fail the others: rerun each caller alone.
            logger.warning("a batch of %d requests failed (%s); retrying each request alone", len(group), error)
            for pending in group:
                await self._execute_alone(pending)
            return
        if len(group) == 1:
            if not group[0].future.done():  # the caller may have gone away
                group[0].future.set_result(outputs)
            return
        start = 0
        for pending in group:
            if not pending.future.done():  # the caller may have gone away
                pending.future.set_result(slice_rows(outputs, start, start + pending.rows))
            start += pending.rows

    async def _execute_alone(self, pending: _Pending) -> None:
        try:
            outputs = await self._run_predict(pending.arrays, pending.rows)
        except Exception as error:  # reaches this caller as a 500
            self._fail(pending.future, pending.rows, error)
            return
        if not pending.future.done():
            pending.future.set_result(outputs)

    async def _run_predict(self, arrays: Arrays, rows: int) -> Arrays:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._predict, arrays, rows)

    @staticmethod
    def _fail(future: asyncio.Future[Arrays], rows: int, error: Exception) -> None:
        logger.warning("prediction for a request of %d rows failed: %s", rows, error)
        if not future.done():
            future.set_exception(error)
