"""The adaptive batcher with a real (tiny) predict function: rows, order, limits, failures, drain."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from model_wrappers.batching import AdaptiveBatcher, DrainingError
from model_wrappers.decode import Arrays
from model_wrappers.metrics import ServingMetrics
from serving_core.errors import InvalidInputError


class RecordingSum:
    """Row sums times 10; remembers each call's row count; fails on negative input."""

    def __init__(self, pause_s: float = 0.01) -> None:
        self.calls: list[int] = []
        self.pause = threading.Event()
        self.pause_s = pause_s

    def __call__(self, arrays: Arrays, rows: int) -> Arrays:
        self.calls.append(rows)
        values = arrays["x"]
        if (values < 0).any():
            raise ValueError("negative input")
        self.pause.wait(self.pause_s)
        return {"y": values.sum(axis=1) * 10}


def metrics() -> ServingMetrics:
    return ServingMetrics("m", max_batch_size=8, registry=CollectorRegistry())


def request_rows(caller: int) -> Arrays:
    rows = 1 + caller % 3
    return {"x": np.arange(rows * 2, dtype=np.float64).reshape(rows, 2) + caller * 100}


async def run_callers(batcher: AdaptiveBatcher, callers: list[int]) -> list[Arrays | BaseException]:
    return await asyncio.gather(
        *(batcher.submit(request_rows(c), request_rows(c)["x"].shape[0]) for c in callers), return_exceptions=True
    )


def test_each_caller_gets_its_rows_in_order_within_the_batch_limit() -> None:
    predict = RecordingSum()
    batcher = AdaptiveBatcher(predict, max_batch_size=8, max_latency_s=0.05, metrics=metrics())
    results = asyncio.run(run_callers(batcher, list(range(20))))
    for caller, result in enumerate(results):
        assert isinstance(result, dict)
        assert result["y"].tolist() == (request_rows(caller)["x"].sum(axis=1) * 10).tolist()
    assert sum(predict.calls) == sum(request_rows(c)["x"].shape[0] for c in range(20))
    assert max(predict.calls) <= 8
    assert len(predict.calls) < 20  # callers shared predict calls


def test_a_lone_caller_does_not_wait_for_the_latency_budget() -> None:
    predict = RecordingSum(pause_s=0)
    batcher = AdaptiveBatcher(predict, max_batch_size=8, max_latency_s=5.0, metrics=metrics())

    async def one() -> float:
        loop = asyncio.get_running_loop()
        started = loop.time()
        await batcher.submit(request_rows(0), 1)
        return loop.time() - started

    assert asyncio.run(one()) < 1.0


def test_a_failing_caller_fails_alone() -> None:
    predict = RecordingSum()
    batcher = AdaptiveBatcher(predict, max_batch_size=64, max_latency_s=0.05, metrics=metrics())

    async def callers() -> list[Arrays | BaseException]:
        bad = {"x": np.array([[-1.0, 0.0]])}
        good = [batcher.submit(request_rows(c), request_rows(c)["x"].shape[0]) for c in range(5)]
        return await asyncio.gather(batcher.submit(bad, 1), *good, return_exceptions=True)

    results = asyncio.run(callers())
    assert isinstance(results[0], ValueError)
    for caller, result in enumerate(results[1:]):
        assert isinstance(result, dict)
        assert result["y"].tolist() == (request_rows(caller)["x"].sum(axis=1) * 10).tolist()


def test_requests_with_different_trailing_shapes_are_not_stacked() -> None:
    predict = RecordingSum()
    batcher = AdaptiveBatcher(predict, max_batch_size=64, max_latency_s=0.05, metrics=metrics())

    async def callers() -> list[Arrays | BaseException]:
        wide = {"x": np.ones((1, 3))}
        return await asyncio.gather(batcher.submit(request_rows(0), 1), batcher.submit(wide, 1), return_exceptions=True)

    narrow, wide = asyncio.run(callers())
    assert isinstance(narrow, dict)
    assert narrow["y"].tolist() == [10.0]
    assert isinstance(wide, dict)
    assert wide["y"].tolist() == [30.0]


def test_drain_finishes_queued_work_then_refuses() -> None:
    predict = RecordingSum(pause_s=0.05)
    batcher = AdaptiveBatcher(predict, max_batch_size=2, max_latency_s=0.0, metrics=metrics())

    async def scenario() -> tuple[list[Arrays | BaseException], BaseException | None]:
        pending = asyncio.gather(*(batcher.submit(request_rows(0), 1) for _ in range(6)), return_exceptions=True)
        await asyncio.sleep(0)
        await batcher.drain()
        results = await pending
        try:
            await batcher.submit(request_rows(0), 1)
        except RuntimeError as error:
            return results, error
        return results, None

    results, refused = asyncio.run(scenario())
    assert all(isinstance(result, dict) for result in results)
    assert isinstance(refused, RuntimeError)


def test_invalid_limits_are_rejected() -> None:
    with pytest.raises(InvalidInputError, match="max batch size must be at least 1, got 0"):
        AdaptiveBatcher(RecordingSum(), max_batch_size=0, max_latency_s=0.0, metrics=metrics())
    with pytest.raises(InvalidInputError, match="predict on the event loop serves one request per call, not 8"):
        AdaptiveBatcher(RecordingSum(), max_batch_size=8, max_latency_s=0.0, metrics=metrics(), predict_on_loop=True)


def test_drain_waits_on_the_last_batch_without_polling(monkeypatch: pytest.MonkeyPatch) -> None:
    real_sleep = asyncio.sleep

    async def yield_only(delay: float, result: object = None) -> object:
        assert delay == 0, f"something polled with asyncio.sleep({delay})"
        return await real_sleep(0, result)

    monkeypatch.setattr(asyncio, "sleep", yield_only)
    predict = RecordingSum(pause_s=0.05)
    batcher = AdaptiveBatcher(predict, max_batch_size=2, max_latency_s=0.0, metrics=metrics())

    async def scenario() -> tuple[list[Arrays | BaseException], BaseException | None]:
        pending = asyncio.gather(*(batcher.submit(request_rows(0), 1) for _ in range(5)), return_exceptions=True)
        await asyncio.sleep(0)
        await asyncio.gather(batcher.drain(), batcher.drain())  # a second drain waits on the same event
        assert pending.done()  # every caller had its answer when drain returned
        try:
            await batcher.submit(request_rows(0), 1)
        except DrainingError as error:
            return await pending, error
        return await pending, None

    results, refused = asyncio.run(scenario())
    assert all(isinstance(result, dict) for result in results)
    assert sum(predict.calls) == 5
    assert isinstance(refused, RuntimeError)
    assert str(refused) == "the model server is shutting down"


def test_drain_of_an_idle_batcher_returns_at_once() -> None:
    batcher = AdaptiveBatcher(RecordingSum(pause_s=0), max_batch_size=2, max_latency_s=0.0, metrics=metrics())

    async def scenario() -> None:
        await batcher.submit(request_rows(0), 1)  # the worker now waits for the next caller
        await asyncio.wait_for(batcher.drain(), timeout=5)
        await asyncio.wait_for(
            AdaptiveBatcher(RecordingSum(), max_batch_size=1, max_latency_s=0.0, metrics=metrics()).drain(), timeout=5
        )

    asyncio.run(scenario())


def test_predict_on_the_loop_answers_each_caller_before_the_next_predict() -> None:
    # Without batching a predict thread only adds GIL hand-offs; on the loop, the batcher must still
    # let each answered caller run (send its response, read new requests) before the next predict.
    events: list[str] = []
    loop_thread: list[int] = []

    def predict(arrays: Arrays, rows: int) -> Arrays:
        on_loop = threading.get_ident() == loop_thread[0]
        events.append(f"predict {int(arrays['x'][0, 0]) // 100} on the loop thread: {on_loop}")
        return {"y": arrays["x"].sum(axis=1) * 10}

    batcher = AdaptiveBatcher(predict, max_batch_size=1, max_latency_s=0.05, metrics=metrics(), predict_on_loop=True)

    async def caller(number: int) -> None:
        await batcher.submit({"x": request_rows(number)["x"][:1]}, 1)
        events.append(f"caller {number} answered")

    async def scenario() -> None:
        loop_thread.append(threading.get_ident())
        await asyncio.gather(*(caller(number) for number in range(3)))
        await batcher.drain()

    asyncio.run(scenario())
    assert events == [
        "predict 0 on the loop thread: True",
        "caller 0 answered",
        "predict 1 on the loop thread: True",
        "caller 1 answered",
        "predict 2 on the loop thread: True",
        "caller 2 answered",
    ]


def test_predict_runs_in_its_own_thread_by_default() -> None:
    threads: list[int] = []

    def predict(arrays: Arrays, rows: int) -> Arrays:
        threads.append(threading.get_ident())
        return {"y": arrays["x"].sum(axis=1)}

    batcher = AdaptiveBatcher(predict, max_batch_size=8, max_latency_s=0.0, metrics=metrics())

    async def scenario() -> int:
        await batcher.submit(request_rows(0), 1)
        await batcher.drain()
        return threading.get_ident()

    loop_thread = asyncio.run(scenario())
    assert len(threads) == 1
    assert threads[0] != loop_thread


def test_without_batching_callers_are_served_in_arrival_order_and_a_failure_stays_with_its_caller() -> None:
    # Batching off: no worker task; one caller's predict per loop iteration, oldest first.
    predict = RecordingSum(pause_s=0)
    registry = CollectorRegistry()
    recorded = ServingMetrics("m", max_batch_size=1, registry=registry)
    batcher = AdaptiveBatcher(predict, max_batch_size=1, max_latency_s=0.05, metrics=recorded, predict_on_loop=True)

    async def scenario() -> tuple[list[asyncio.Future[Arrays]], list[int]]:
        rows = [{"x": np.array([[1.0, 2.0]])}, {"x": np.array([[-1.0, 0.0]])}, {"x": np.array([[3.0, 4.0]])}]
        futures = [batcher.enqueue(arrays, 1) for arrays in rows]
        settled_per_iteration = []
        while not all(future.done() for future in futures):
            await asyncio.sleep(0)
            settled_per_iteration.append(sum(future.done() for future in futures))
        await batcher.drain()
        return futures, settled_per_iteration

    (good, bad, other), settled = asyncio.run(scenario())
    assert settled == [1, 2, 3]
    assert good.result()["y"].tolist() == [30.0]
    assert isinstance(bad.exception(), ValueError)
    assert other.result()["y"].tolist() == [70.0]
    assert predict.calls == [1, 1, 1]
    assert registry.get_sample_value("model_batch_requests_count", {"model_name": "m"}) == 3
    assert registry.get_sample_value("model_queue_depth", {"model_name": "m"}) == 0
