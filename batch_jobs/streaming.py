"""Run the shards of a job: their requests in one stream through one client, finished shards written aside.

The predictor is kept busy from the first shard's first request to the last shard's last answer: the
next shard's requests go out while the previous shard's last answers arrive (no drain between shards),
and a finished shard's files are written by a background thread while later shards' requests go on
(on a local volume each atomic write waits for ``fsync``; on S3 for a PUT).
"""

from __future__ import annotations

import bisect
import gc
import sys
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from batch_jobs.client import Batch, JobCancelledError, Outcome, V2BatchClient
from batch_jobs.outputs import OutputLocation, errors_key, jsonl
from batch_jobs.progress import JobCounters
from batch_jobs.readers import InputFile, ParquetRows, Row, RowCache, Rows
from batch_jobs.settings import JobSettings
from batch_jobs.shards import ShardPlan
from batch_jobs.uris import Storage
from serving_core.errors import RemoteServiceError

# ``on_progress(counters of the shards run so far in this call, concurrency allowed now)``.
ProgressCallback = Callable[[JobCounters, int], None]


@dataclass
class _ShardState:
    """One shard while its requests are in flight."""

    index: int
    first_item: int
    unanswered: int
    # Each segment's first item, input file key and first row: where an item came from.
    segments: list[tuple[int, str, int]]
    answered: list[Outcome] = field(default_factory=list)
    errors: dict[int, str] = field(default_factory=dict)
    counters: JobCounters = field(default_factory=JobCounters)

    def records(self) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
        """The result and error records, in item order, each saying where its item came from.

        Requests hold disjoint runs of ascending items, so the answers in order of their first item give
        the results in item order.
        """
        starts = [first for first, _, _ in self.segments]

        def record(item: int, name: str, value: object) -> dict[str, object]:
            first, key, row = self.segments[bisect.bisect_right(starts, item) - 1]
            return {"id": item, "source": key, "row": row + item - first, name: value}

        results = [
            record(item, "outputs", outcome.outputs_of(position))
            for outcome in sorted(self.answered, key=lambda outcome: outcome.answered[0])
            for position, item in enumerate(outcome.answered)
        ]
        return results, [record(item, "error", self.errors[item]) for item in sorted(self.errors)]


class _BudgetSpent(Exception):
    """Raised inside the answer callback to stop a job whose errors passed the budget."""

    def __init__(self, shard: int) -> None:
        super().__init__(shard)
        self.shard = shard


@dataclass
class ShardRunner:
    """Runs shards of one planned job through one client (its concurrency carries over from shard to shard)."""

    plan: ShardPlan
    input: Storage
    output: OutputLocation
    client: V2BatchClient
    settings: JobSettings
    cache: RowCache
    on_progress: ProgressCallback | None = None
    _states: list[_ShardState] = field(default_factory=list)

    def run(self, indexes: Iterable[int], earlier: JobCounters | None = None) -> dict[int, JobCounters]:
        """Run the shards of ``indexes`` that are not done yet; ``earlier``: the job's shards done before.

        Returns:
            The counters of each shard run (a shard found done is left out).

        Raises:
            JobCancelledError: the job was cancelled (shards finished before are written; the others keep
                no partial output).
            RemoteServiceError: the job's failures passed the error budget (the errors of the shards in
                flight are written for diagnosis, their results are not, so a re-run redoes them).
        """
        done = self.output.done_shards()
        todo = sorted(index for index in set(indexes) if index not in done)
        if not todo:
            return {}
        self._states = []
        firsts: list[int] = []
        finished: dict[int, JobCounters] = {}
        total = JobCounters()
        budget = self.settings.budget_items(self.plan.total_items)
        earlier_errors = earlier.errors if earlier else 0
        writes: list[Future[None]] = []

        def collect(outcome: Outcome, latency_s: float) -> None:
            items = len(outcome.answered) + len(outcome.failed)
            if not items:
                return
            first = outcome.answered[0] if outcome.answered else outcome.failed[0].id
            state = self._states[bisect.bisect_right(firsts, first) - 1]
            if outcome.answered:
                state.answered.append(outcome)
            for item, error in outcome.failed:
                state.errors[item] = error
            answered = latency_s if outcome.answered else None
            state.counters.record(items, len(outcome.failed), answered)
            total.record(items, len(outcome.failed), answered)
            state.unanswered -= items
            if earlier_errors + total.errors > budget:
                raise _BudgetSpent(state.index)
            if not state.unanswered:
                for write in writes:
                    if write.done():
                        write.result()  # a failed write stops the job now, not at its end
                finished[state.index] = state.counters
                writes.append(writer.submit(self._write, state))
                if self.output.cancel_requested():  # besides the client's checks: at every shard's end
                    raise JobCancelledError("the job was cancelled", hint="run it again to resume")
            if self.on_progress is not None:
                self.on_progress(total, self.client.controller.concurrency)

        def batches() -> Iterator[Batch]:
            for index in todo:
                state = self._state(index)
                self._states.append(state)
                firsts.append(state.first_item)
                yield from self._batches(state)

        with (
            _rare_collections(),
            _prompt_thread_switches(),
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="shard-writer") as writer,
        ):
            try:
                self.client.run(batches(), collect, self.output.cancel_requested)
            except _BudgetSpent as spent:
                for state in self._states:
                    if state.unanswered and state.errors:
                        self.output.storage.write(errors_key(state.index), jsonl(state.records()[1]))
                raise RemoteServiceError(
                    f"shard {spent.shard}: {earlier_errors + total.errors} failed items pass the error budget of "
                    f"{budget} ({self.settings.error_budget:g} of {self.plan.total_items} items)",
                    hint=f"see the reasons in {self.output.storage.uri} errors/; fix the input or the model, then "
                    "re-run",
                ) from spent
        for write in writes:
            write.result()  # a failed write fails the job (the shard is not marked done)
        return finished

    def _state(self, index: int) -> _ShardState:
        shard = self.plan.shards[index]
        segments, item = [], shard.first_item
        for segment in shard.segments:
            segments.append((item, self.plan.files[segment.file].key, segment.start))
            item += segment.stop - segment.start
        return _ShardState(index, shard.first_item, shard.items, segments)

    def _batches(self, state: _ShardState) -> Iterator[Batch]:
        """The shard's rows cut into requests (rows read when the stream reaches the shard).

        A request may hold the end of one file and the start of the next. Feature columns of Parquet files go
        as one array (see :meth:`ParquetRows.matrix`); rows as dicts where any part of a request cannot.
        """
        size = self.settings.rows_per_request
        parts: list[tuple[Rows, int, int]] = []
        first = item = state.first_item
        for segment in self.plan.shards[state.index].segments:
            file = self.plan.files[segment.file]
            stored = self.cache.rows_of(InputFile(file.key, file.size, file.version, file.format))
            start = segment.start
            while start < segment.stop:
                stop = min(segment.stop, start + size - (item - first))
                parts.append((stored, start, stop))
                item, start = item + stop - start, stop
                if item - first == size:
                    yield self._batch(range(first, item), parts)
                    first, parts = item, []
        if parts:
            yield self._batch(range(first, item), parts)

    def _batch(self, ids: range, parts: list[tuple[Rows, int, int]]) -> Batch:
        """One request of ``parts`` (rows ``start:stop`` of a file each): one array when every part gives one."""
        columns = self.client.encoder.columns
        if self.client.encoder.mode == "packed":
            matrices = [
                matrix
                for stored, start, stop in parts
                if isinstance(stored, ParquetRows) and (matrix := stored.matrix(columns, start, stop)) is not None
            ]
            if len(matrices) == len(parts):
                return Batch(ids, matrix=np.concatenate(matrices) if len(matrices) > 1 else matrices[0])
        rows: list[Row] = []
        for stored, start, stop in parts:
            rows.extend(stored[start:stop])
        return Batch(ids, tuple(rows))

    def _write(self, state: _ShardState) -> None:
        results, errors = state.records()
        self.output.write_shard(state.index, results, errors, state.counters)
        state.answered, state.errors = [], {}  # written: a long job keeps only the shards in flight


@contextmanager
def _prompt_thread_switches() -> Iterator[None]:
    """Let the request loop take the interpreter from the shard writer within 0.5 ms, not Python's 5 ms.

    Writing a 10,000-item shard holds the interpreter for about 60 ms; an answer that arrives meanwhile waits
    for the writer to give it up, and with one request in flight the predictor waits too.
    """
    interval = sys.getswitchinterval()
    sys.setswitchinterval(min(interval, 0.0005))
    try:
        yield
    finally:
        sys.setswitchinterval(interval)


@contextmanager
def _rare_collections() -> Iterator[None]:
    """Let Python's garbage collector run rarely while a job streams.

    The input's rows (a dict each) and the answers kept until their shard is written are most of the
    process's objects; by default the collector scans them again every few hundred allocations, which
    took a quarter of the client's CPU. Nothing here makes reference cycles worth collecting early.
    """
    threshold = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(max(threshold[0], 100_000), *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()
