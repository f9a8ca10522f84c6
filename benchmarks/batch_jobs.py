"""Batch-job benchmark: the adaptive client vs a sequential and a fixed-concurrency client vs wrk.

One 200,000-row Parquet input (20 features) through our model wrapper serving the serving benchmark's
RandomForest (pinned to one core; every client pinned to another). In the same run:

- the predictor's own peak rows/s and its unloaded p99: wrk with the same request body (``--rows-per-request``
  rows) at concurrency 1 (unloaded) and at each of ``--wrk-concurrency``, before and after the clients (the
  best of all is the peak);
- a sequential client (one request at a time), fixed-concurrency clients (c=64, and any of ``--sweep``: where
  the same client would meet both targets at a fixed concurrency) and the adaptive client, each
  the whole job into a fresh output location; client-side request latencies give each one's p99;
- paired rounds (``--rounds``): wrk at a few concurrencies near the peak, the adaptive job, then wrk again,
  so each job is set against the peak measured around it (this machine's speed drifts by 10-20 % between
  minutes, more than the gap measured): the peak of a round is the concurrency whose before-and-after
  mean is highest (the best single window of many is lifted by noise; it is shown too), and each job is also
  set against the run's peak concurrency (the one whose windows average highest over all rounds, chosen once,
  so that the peak is not the best of several noisy means); each round records the share of the server core
  the hypervisor took (steal) before, during and after its job;
- the predictor's CPU busy share (its process's CPU seconds per wall second) in every wrk window and every job,
  and its CPU time per row: how well a client keeps it fed, apart from the machine's speed in that minute;
- kill-and-resume: ``aiserving job run`` started as a process, killed (SIGKILL) twice part-way, then run to
  the end; every item id must appear exactly once in the results.

Targets: adaptive rows/s ≥ 0.9 x the wrk peak; adaptive p99 ≤ 2 x the unloaded p99; zero lost or
duplicated rows after two kills.

    .venv/bin/python -m benchmarks.batch_jobs [--rows 200000] [--rows-per-request 64] [--markdown out.md]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from batch_jobs.client import Batch, Outcome
from batch_jobs.concurrency import ConcurrencySettings
from batch_jobs.outputs import OutputLocation
from batch_jobs.runner import JobSettings, plan_job, shard_runner, summarise_job
from benchmarks.serving import (
    FEATURES,
    MODEL_NAME,
    REPO_ROOT,
    build_model,
    process_cpu_s,
    run_wrk,
    slug,
    started,
    v2_body,
    wrapper_server,
)
from benchmarks.serving import _latency_ms as wrk_latency_ms


def write_input(path: Path, rows: int) -> None:
    """``rows`` rows of 20 float features as one Parquet file (columns f0..f19)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    values = np.random.default_rng(1).normal(size=(rows, FEATURES))
    table = pa.table({f"f{index}": values[:, index] for index in range(FEATURES)})
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)


def first_rows(path: Path, rows: int) -> np.ndarray:
    """The input's first ``rows`` rows as a (rows, features) array: wrk sends what a job request holds."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    batches: list[pa.RecordBatch] = []
    for batch in pq.ParquetFile(path).iter_batches(batch_size=rows):  # reads no more than one request needs
        batches.append(batch)
        if sum(taken.num_rows for taken in batches) >= rows:
            break
    first = pa.Table.from_batches(batches).slice(0, rows).to_pandas().to_numpy() if batches else np.empty((0, 0))
    if len(first) != rows:
        raise ValueError(f"the input has {len(first)} rows, fewer than one request's {rows}")
    return first


class ServerCpu:
    """The predictor process's CPU time (all its threads, /proc/PID/stat), to tell its busy share of a span.

    On this machine the predictor's CPU time per request moves by 10-20 % between windows of a few seconds
    (the machine's speed), so a client's rows/s against wrk's from another window mixes that drift with how
    well the client keeps the predictor fed; the busy share (CPU seconds per wall second) is the second alone.
    """

    def __init__(self, marker: str) -> None:
        pids = [
            int(entry.name)
            for entry in Path("/proc").iterdir()
            if entry.name.isdigit() and marker in _cmdline(entry) and "taskset" not in _cmdline(entry)
        ]
        if len(pids) != 1:
            raise RuntimeError(f"expected one predictor process whose command line holds {marker}, found {pids}")
        self.pid = pids[0]

    @contextmanager
    def busy(self, into: list[float]) -> Iterator[None]:
        """Append the predictor's CPU seconds per wall second while the block ran."""
        cpu, wall = process_cpu_s(self.pid), time.monotonic()
        yield
        into.append((process_cpu_s(self.pid) - cpu) / (time.monotonic() - wall))


def _cmdline(entry: Path) -> str:
    try:
        return (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


@dataclass
class WrkResult:
    concurrency: int
    rows_per_s: float
    p99_ms: float
    server_busy: float  # the predictor's CPU seconds per second of the measured window


def wrk_point(
    url: str,
    body: dict[str, object],
    concurrency: int,
    rows: int,
    args: argparse.Namespace,
    work: Path,
    server: ServerCpu,
) -> WrkResult:
    run_wrk(url, body, concurrency, args.warmup, args.client_core, work)
    busy: list[float] = []
    with server.busy(busy):
        text = run_wrk(url, body, concurrency, args.duration, args.client_core, work)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if rate is None:
        raise RuntimeError(f"wrk printed no rate:\n{text}")
    return WrkResult(concurrency, float(rate.group(1)) * rows, wrk_latency_ms(text, "99"), busy[0])


class FixedConcurrency:
    """A controller that always allows ``limit`` requests: the fixed-concurrency baseline."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.paused_until = 0.0
        self.decreases = 0
        self.settings = ConcurrencySettings(max_concurrency=limit)
        self._sent = 0

    def allowed(self, now: float) -> int:
        return 0 if now < self.paused_until else self.limit

    @property
    def concurrency(self) -> int:
        return self.limit

    def sent(self, in_flight: int) -> int:
        self._sent += 1
        return self._sent

    def on_answer(self, sequence: int, latency_s: float) -> None:
        """Fixed: answers change nothing."""

    def on_overload(self, sequence: int, now: float, retry_after_s: float | None) -> None:
        self.paused_until = max(self.paused_until, now + (retry_after_s or 0.2))


@dataclass
class ClientResult:
    name: str
    seconds: float
    rows: int
    errors: int
    p50_ms: float
    p99_ms: float
    decreases: int
    median_limit: float  # the concurrency limit at each answer, median over the job
    server_busy: float  # the predictor's CPU seconds per second of the job

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds


def run_client(
    name: str,
    endpoint: str,
    input_uri: str,
    out: Path,
    args: argparse.Namespace,
    fixed: int | None,
    server: ServerCpu,
) -> ClientResult:
    """The whole job through one client in this process (pinned to the client core); request latencies kept."""
    max_concurrency = fixed or (1 if name == "sequential" else args.max_concurrency)
    concurrency = ConcurrencySettings(max_concurrency=max_concurrency, latency_tolerance=args.latency_tolerance,
                                      knee_share=args.knee_share)  # fmt: skip
    settings = JobSettings(rows_per_request=args.rows_per_request, error_budget=0.0, concurrency=concurrency)
    job = plan_job(input_uri, str(out), endpoint_url=endpoint, model_name=MODEL_NAME, shard_size=args.shard_size)
    runner = shard_runner(job, settings)
    if fixed is not None:
        runner.client.controller = FixedConcurrency(fixed)  # type: ignore[assignment]
    latencies: list[float] = []
    limits: list[int] = []
    original = runner.client.run

    def recording_run(batches: Iterable[Batch], on_outcome, cancelled=lambda: False) -> None:  # type: ignore[no-untyped-def]
        def record(outcome: Outcome, latency_s: float) -> None:
            latencies.append(latency_s)
            limits.append(runner.client.controller.concurrency)
            on_outcome(outcome, latency_s)

        original(batches, record, cancelled)

    runner.client.run = recording_run  # type: ignore[method-assign]
    busy: list[float] = []
    started_at = time.monotonic()
    with server.busy(busy):
        runner.run(range(len(job.plan.shards)))
    seconds = time.monotonic() - started_at
    summary = summarise_job(job.output, job.plan, settings)
    measured = np.asarray(latencies) * 1000
    return ClientResult(name, seconds, int(summary["items_done"]), int(summary["errors"]),
                        float(np.percentile(measured, 50)), float(np.percentile(measured, 99)),
                        getattr(runner.client.controller, "decreases", 0), float(np.median(limits)),
                        busy[0])  # fmt: skip


def kill_and_resume(endpoint: str, input_uri: str, out: Path, args: argparse.Namespace, total: int) -> dict[str, int]:
    """``aiserving job run`` killed twice part-way, then run to the end; counts of ids seen."""
    command = [sys.executable, "-m", "aiserving", "job", "run", input_uri, str(out), "--endpoint-url", endpoint,
               "--model-name", MODEL_NAME, "--shard-size", str(args.shard_size), "--rows-per-request",
               str(args.rows_per_request), "--max-concurrency", str(args.max_concurrency), "--no-progress"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    shards = -(-total // args.shard_size)
    kills = 0
    for fraction in (0.3, 0.6):
        process = subprocess.Popen(["taskset", "-c", str(args.client_core), *command], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and process.poll() is None:
            done = len(list((out / "progress").glob("part-*.json"))) if (out / "progress").exists() else 0
            if done >= fraction * shards:
                # Mid-shard: results of the shard in flight are not written yet.
                time.sleep(0.3)
                process.send_signal(signal.SIGKILL)
                kills += 1
                break
            time.sleep(0.05)
        process.wait()
    final = subprocess.run(["taskset", "-c", str(args.client_core), *command], env=env, capture_output=True,
                           text=True, check=False)  # fmt: skip
    if final.returncode != 0:
        raise RuntimeError(f"resumed job failed: {final.stderr[-2000:]}")
    seen: dict[int, int] = {}
    location = OutputLocation(__import__("batch_jobs.uris", fromlist=["open_location"]).open_location(str(out)))
    for index in range(shards):
        for record in location.results(index):
            seen[int(str(record["id"]))] = seen.get(int(str(record["id"])), 0) + 1
    lost = sum(1 for item in range(total) if item not in seen)
    duplicated = sum(count - 1 for count in seen.values() if count > 1)
    return {"kills": kills, "lost": lost, "duplicated": duplicated, "items": len(seen)}


def cpu_ticks(core: int) -> tuple[int, int]:
    """(all, stolen) clock ticks of one core so far (/proc/stat): the hypervisor's share is time the core lost."""
    with open("/proc/stat", encoding="ascii") as stat:
        for line in stat:
            name, *fields = line.split()
            if name == f"cpu{core}":
                ticks = [int(value) for value in fields[:8]]  # user nice system idle iowait irq softirq steal
                return sum(ticks), ticks[7]
    raise RuntimeError(f"/proc/stat has no line for core {core}")


@contextmanager
def stolen_share(core: int, into: list[float]) -> Iterator[None]:
    """Append to ``into`` the share of ``core``'s time the hypervisor took (steal) while the block ran."""
    total_before, stolen_before = cpu_ticks(core)
    yield
    total_after, stolen_after = cpu_ticks(core)
    into.append((stolen_after - stolen_before) / max(total_after - total_before, 1))


@dataclass
class Round:
    """One paired round: wrk at each concurrency just before and just after one adaptive job, and the share of
    the server core the hypervisor took during each of the three (before, job, after)."""

    before: list[WrkResult]
    job: ClientResult
    after: list[WrkResult]
    stolen: list[float]

    @property
    def peak(self) -> tuple[float, int]:
        """The predictor's peak around the job: the concurrency whose before-and-after mean is highest."""
        means = {b.concurrency: (b.rows_per_s + a.rows_per_s) / 2 for b, a in zip(self.before, self.after, strict=True)}
        best = max(means, key=lambda c: means[c])
        return means[best], best

    def windows(self, concurrency: int) -> tuple[WrkResult, WrkResult]:
        """wrk's windows at ``concurrency`` just before and just after the job."""
        (before,) = (point for point in self.before if point.concurrency == concurrency)
        (after,) = (point for point in self.after if point.concurrency == concurrency)
        return before, after

    def bracket(self, concurrency: int) -> float:
        """The mean rows/s of wrk's windows at ``concurrency`` just before and just after the job."""
        before, after = self.windows(concurrency)
        return (before.rows_per_s + after.rows_per_s) / 2

    def busy_at(self, concurrency: int) -> float:
        """The predictor's busy share under wrk at ``concurrency``, mean of the windows before and after the job."""
        before, after = self.windows(concurrency)
        return (before.server_busy + after.server_busy) / 2

    @property
    def best_window(self) -> WrkResult:
        """The single best wrk window of the round (noise lifts the best of many windows)."""
        return max(self.before + self.after, key=lambda point: point.rows_per_s)


def paired_rounds(
    infer: str,
    body: dict[str, object],
    url: str,
    input_uri: str,
    work: Path,
    args: argparse.Namespace,
    server: ServerCpu,
) -> list[Round]:
    """Rounds of wrk near the peak, the adaptive job, and wrk again: on a machine whose speed drifts by more
    than the effect measured, each job is set against the predictor's peak measured around it (A-B-A)."""

    def points() -> list[WrkResult]:
        return [wrk_point(infer, body, c, args.rows_per_request, args, work, server) for c in args.round_concurrency]

    rounds = []
    for number in range(args.rounds):
        stolen: list[float] = []
        with stolen_share(args.server_core, stolen):
            before = points()
        with stolen_share(args.server_core, stolen), pinned(args.client_core):
            job = run_client("adaptive", url, input_uri, work / f"out-round-{number}", args, None, server)
        with stolen_share(args.server_core, stolen):
            after = points()
        result = Round(before, job, after, stolen)
        print(f"round {number + 1}: wrk peak {result.peak[0]:.0f} (best window {result.best_window.rows_per_s:.0f}), "
              f"adaptive {job.rows_per_s:.0f}, stolen {' / '.join(f'{share:.1%}' for share in stolen)}",
              file=sys.stderr)  # fmt: skip
        rounds.append(result)
    return rounds


def run_peak_concurrency(rounds: list[Round]) -> int:
    """The concurrency at which wrk's windows of every round average highest: chosen once for the run, so that
    the peak each job is set against is not the best of several noisy means (which biases the peak upwards)."""
    concurrencies = [point.concurrency for point in rounds[0].before]
    return max(concurrencies, key=lambda c: float(np.mean([result.bracket(c) for result in rounds])))


@contextmanager
def pinned(core: int) -> Iterator[None]:
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {core})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000, help="items in the job")
    parser.add_argument("--rows-per-request", type=int, default=64)
    parser.add_argument("--shard-size", type=int, default=10_000)
    parser.add_argument("--max-concurrency", type=int, default=64, help="the adaptive client's ceiling")
    parser.add_argument("--fixed-concurrency", type=int, default=64)
    parser.add_argument("--sweep", type=int, nargs="*", default=[], help="more fixed concurrencies, e.g. 4 8 16")
    parser.add_argument("--latency-tolerance", type=float, default=2.0)
    parser.add_argument("--knee-share", type=float, default=ConcurrencySettings.knee_share,
                        help="the adaptive limit's knee check (0: off, the limit steers to the tolerance)")  # fmt: skip
    parser.add_argument("--wrk-concurrency", type=int, nargs="+", default=[1, 2, 4, 8, 16, 64])
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk measurement")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--server-core", type=int, default=0)
    parser.add_argument("--client-core", type=int, default=1)
    parser.add_argument("--max-batch-size", type=int, default=256, help="the wrapper's batching limit (rows)")
    parser.add_argument("--max-latency-ms", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=3, help="paired rounds of wrk and the adaptive job (0: none)")
    parser.add_argument("--round-concurrency", type=int, nargs="+", default=[1, 2, 4, 8], help="wrk points per round")
    parser.add_argument("--markdown", type=Path, help="also write the report to this file")
    args = parser.parse_args()
    if shutil.which("wrk") is None or shutil.which("taskset") is None:
        print("needs wrk and taskset: `make bench-deps`", file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory(prefix="bench-batch-") as temp:
        work = Path(temp)
        build_model(work / "model")
        write_input(work / "input" / "rows.parquet", args.rows)
        input_uri = str(work / "input")
        server = wrapper_server(work / "model", work, args.max_batch_size, args.max_latency_ms, "wrapper")
        with started(server, args.server_core, work) as url:
            server_cpu = ServerCpu(str(work / f"{slug(server.name)}.ports.json"))
            infer = url + server.infer_path
            body = v2_body(first_rows(work / "input" / "rows.parquet", args.rows_per_request), "input_0")
            points = [
                wrk_point(infer, body, c, args.rows_per_request, args, work, server_cpu) for c in args.wrk_concurrency
            ]
            for point in points:
                print(
                    f"wrk c={point.concurrency}: {point.rows_per_s:.0f} rows/s, p99 {point.p99_ms:.1f} ms",
                    file=sys.stderr,
                )
            unloaded = next(point for point in points if point.concurrency == 1)
            peak = max(points, key=lambda point: point.rows_per_s)
            results: list[ClientResult] = []
            with pinned(args.client_core):
                fixed_points = [args.fixed_concurrency, *args.sweep]
                for name, fixed in (("sequential", None), *((f"fixed c={c}", c) for c in fixed_points),
                                    ("adaptive", None)):  # fmt: skip
                    result = run_client(name, url, input_uri, work / f"out-{len(results)}", args, fixed, server_cpu)
                    print(f"{name}: {result.rows_per_s:.0f} rows/s, p99 {result.p99_ms:.1f} ms", file=sys.stderr)
                    results.append(result)
            # wrk again after the clients: on a shared machine the peak counts only if it held both times.
            points += [
                wrk_point(infer, body, c, args.rows_per_request, args, work, server_cpu) for c in args.wrk_concurrency
            ]
            peak = max(points, key=lambda point: point.rows_per_s)
            rounds = paired_rounds(infer, body, url, input_uri, work, args, server_cpu)
            resume = kill_and_resume(url, input_uri, work / "out-resume", args, args.rows)
            print(f"kill and resume: {resume}", file=sys.stderr)
    sequential, fixed_result, *swept, adaptive = results
    lines = [
        f"{args.rows:,} rows (Parquet, {FEATURES} features), {args.rows_per_request} rows per request, shards of "
        f"{args.shard_size:,}; RandomForest (50 trees) in our wrapper on core {args.server_core} (max batch "
        f"{args.max_batch_size} rows, {args.max_latency_ms:g} ms); clients and wrk on core {args.client_core}; "
        f"adaptive client: latency tolerance {args.latency_tolerance:g}, knee share {args.knee_share:g}.",
        "",
        "| client | rows/s | p50 ms | p99 ms | errors | 429/503 back-offs | median limit | predictor busy | "
        "predictor CPU µs/row |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for result in results:
        lines.append(f"| {result.name} | {result.rows_per_s:,.0f} | {result.p50_ms:.1f} | {result.p99_ms:.1f} | "
                     f"{result.errors} | {result.decreases} | {result.median_limit:g} | "
                     f"{result.server_busy:.1%} | {result.server_busy / result.rows_per_s * 1e6:.1f} |")  # fmt: skip
    for number, point in enumerate(points):
        when = "before" if number < len(args.wrk_concurrency) else "after"
        lines.append(f"| wrk c={point.concurrency} ({when}) | {point.rows_per_s:,.0f} | | {point.p99_ms:.1f} | | | | "
                     f"{point.server_busy:.1%} | {point.server_busy / point.rows_per_s * 1e6:.1f} |")  # fmt: skip
    unloaded_p99 = sequential.p99_ms
    lines += [
        "",
        f"- adaptive / wrk peak (c={peak.concurrency}): {adaptive.rows_per_s / peak.rows_per_s:.2f}x (target ≥ 0.9)",
        f"- adaptive / sequential: {adaptive.rows_per_s / sequential.rows_per_s:.2f}x; adaptive / fixed c="
        f"{args.fixed_concurrency}: {adaptive.rows_per_s / fixed_result.rows_per_s:.2f}x",
        f"- adaptive p99 / unloaded p99 (sequential client {unloaded_p99:.1f} ms; wrk c=1 {unloaded.p99_ms:.1f} ms): "
        f"{adaptive.p99_ms / unloaded_p99:.2f}x (target ≤ 2); fixed c={args.fixed_concurrency}: "
        f"{fixed_result.p99_ms / unloaded_p99:.2f}x",
        *(
            f"- {result.name}: {result.rows_per_s / peak.rows_per_s:.2f}x the wrk peak, p99 "
            f"{result.p99_ms / unloaded_p99:.2f}x unloaded"
            for result in swept
        ),
        f"- killed {resume['kills']}x and resumed: {resume['items']:,} items, {resume['lost']} lost, "
        f"{resume['duplicated']} duplicated (target 0 and 0)",
    ]
    if rounds:
        ratios = [result.job.rows_per_s / result.peak[0] for result in rounds]
        window_ratios = [result.job.rows_per_s / result.best_window.rows_per_s for result in rounds]
        run_peak = run_peak_concurrency(rounds)
        run_ratios = [result.job.rows_per_s / result.bracket(run_peak) for result in rounds]
        busy_ratios = [result.job.server_busy / result.busy_at(run_peak) for result in rounds]
        lines += [
            "",
            f"Paired rounds (wrk at c = {' '.join(map(str, args.round_concurrency))}, the adaptive job, wrk again; "
            f"{len(rounds)} times). Each round's peak is the concurrency whose mean of the wrk windows before and "
            "after the job is highest; the best single window is shown beside it:",
            "",
            "| round | wrk peak rows/s (c), before/after mean | best single window (c) | adaptive rows/s | ratio | "
            f"ratio to the best window | ratio at the run's peak c={run_peak} | adaptive p99 / unloaded p99 | "
            "server core stolen: before / job / after | predictor busy: job / wrk at the run's peak c |",
            "|---|---|---|---|---|---|---|---|---|---|",
            *(
                f"| {number} | {result.peak[0]:,.0f} (c={result.peak[1]}) | {result.best_window.rows_per_s:,.0f} "
                f"(c={result.best_window.concurrency}) | {result.job.rows_per_s:,.0f} | {ratio:.2f} | {window:.2f} | "
                f"{at_run_peak:.2f} | {result.job.p99_ms / unloaded_p99:.2f} | "
                f"{' / '.join(f'{share:.1%}' for share in result.stolen)} | "
                f"{result.job.server_busy:.1%} / {result.busy_at(run_peak):.1%} |"
                for number, (result, ratio, window, at_run_peak) in enumerate(
                    zip(rounds, ratios, window_ratios, run_ratios, strict=True), 1
                )
            ),
            "",
            f"- median ratio over the rounds: {float(np.median(ratios)):.2f}x (target ≥ 0.9); to the best single "
            f"window: {float(np.median(window_ratios)):.2f}x; at the run's peak concurrency (c={run_peak}, the "
            f"highest mean over all rounds): {float(np.median(run_ratios)):.2f}x",
            f"- the predictor's busy share during the job over its busy share under wrk at c={run_peak} (how well "
            "the job keeps it fed, whatever the machine's speed in that minute): median "
            f"{float(np.median(busy_ratios)):.3f}",
        ]
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n", encoding="utf-8")
    print(json.dumps({"peak_rows_per_s": peak.rows_per_s}), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
