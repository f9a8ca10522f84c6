"""Batch jobs on real services: SeaweedFS's S3 gateway, our model wrapper, ``aiserving job`` processes.

Every item must land in exactly one result file with the model's own prediction; bad input is refused
before anything is written; per-item failures go to errors files; overload answers are waited out; a
killed ``aiserving job run`` resumes without losing or repeating an item.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import mlflow
import numpy as np
import pandas as pd
import pytest

from aiserving import jobs
from batch_jobs.concurrency import ConcurrencySettings
from batch_jobs.runner import JobSettings, plan_job, run_job
from serving_core.errors import InvalidInputError, NotFoundError, RemoteServiceError
from tests.conftest import REPO_ROOT
from tests.support.s3 import SeaweedS3, empty_bucket, uploaded_files
from tests.support.served_models import RunningServer, running_server, save_slow_sum

FEATURES = ["f0", "f1", "f2", "f3"]


@pytest.fixture(scope="module")
def slow_sum(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """Row sums times 2 after 20 ms per predict; a negative value fails the whole predict call."""
    folder = tmp_path_factory.mktemp("slow-sum")
    with running_server(save_slow_sum(folder / "model"), "slow-sum", folder) as server:
        yield server


@pytest.fixture
def s3_env(s3_store: SeaweedS3, monkeypatch: pytest.MonkeyPatch) -> SeaweedS3:
    for key, value in s3_store.environment().items():
        monkeypatch.setenv(key, value)
    return s3_store


def _features(rows: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(rows, 4)).round(3)


def _upload_mixed_input(store: SeaweedS3, bucket: str) -> np.ndarray:
    """23 rows as JSONL, 17 as CSV and 20 as Parquet under in/; returns the rows in key order."""
    client = store.client()
    parts = [_features(23, 1), _features(17, 2), _features(20, 3)]
    jsonl = "".join(json.dumps(dict(zip(FEATURES, row.tolist(), strict=True))) + "\n" for row in parts[0])
    client.put_object(Bucket=bucket, Key="in/a.jsonl", Body=jsonl.encode())
    client.put_object(Bucket=bucket, Key="in/b.csv", Body=pd.DataFrame(parts[1], columns=FEATURES).to_csv(index=False))
    parquet = io.BytesIO()
    pd.DataFrame(parts[2], columns=FEATURES).to_parquet(parquet)
    client.put_object(Bucket=bucket, Key="in/c/part-0.parquet", Body=parquet.getvalue())
    return np.concatenate(parts)


def _results(found: dict[str, bytes], prefix: str) -> list[dict[str, object]]:
    return [
        json.loads(line)
        for key, data in sorted(found.items())
        if key.startswith(f"{prefix}results/")
        for line in data.decode().splitlines()
    ]


def test_a_job_over_jsonl_csv_and_parquet_on_s3_writes_every_item_once(
    s3_env: SeaweedS3, iris_server: tuple[RunningServer, Path]
) -> None:
    server, model_dir = iris_server
    bucket = empty_bucket(s3_env, "mixed")
    rows = _upload_mixed_input(s3_env, bucket)
    job = plan_job(f"s3://{bucket}/in/", f"s3://{bucket}/out/", endpoint_url=server.url, model_name="iris",
                   shard_size=16)  # fmt: skip
    summary = run_job(job, JobSettings(rows_per_request=5))

    found = uploaded_files(s3_env, bucket, "out/")
    results = _results(found, "out/")
    expected = mlflow.pyfunc.load_model(str(model_dir)).predict(rows.astype(np.float32))
    assert [record["id"] for record in results] == list(range(60))
    assert [record["outputs"] for record in results] == [{"output_0": int(label)} for label in expected]
    assert [(record["source"], record["row"]) for record in results[22:25]] == [
        ("a.jsonl", 22),
        ("b.csv", 0),
        ("b.csv", 1),
    ]
    assert sorted(key for key in found if not key.startswith(("out/results/", "out/errors/", "out/progress/"))) == [
        "out/_SUCCESS", "out/_manifest.json",
    ]  # fmt: skip
    assert json.loads(found["out/_SUCCESS"]) == summary
    assert (summary["items_done"], summary["errors"], summary["shards"]) == (60, 0, 4)

    # A re-run of the same job finds every shard done and touches no result.
    etags = {entry["Key"]: entry["ETag"] for entry in s3_env.client().list_objects_v2(Bucket=bucket)["Contents"]
             if "/results/" in entry["Key"]}  # fmt: skip
    again = plan_job(f"s3://{bucket}/in/", f"s3://{bucket}/out/", endpoint_url=server.url, model_name="iris",
                     shard_size=16)  # fmt: skip
    assert again.resumed
    assert run_job(again, JobSettings())["items_done"] == 60
    after = {entry["Key"]: entry["ETag"] for entry in s3_env.client().list_objects_v2(Bucket=bucket)["Contents"]}
    assert {key: after[key] for key in etags} == etags


def _job(
    server: RunningServer, source: str, out: str, *, shard_size: int = 10, settings: JobSettings | None = None
) -> dict[str, object]:
    job = plan_job(source, out, endpoint_url=server.url, model_name=server.name, shard_size=shard_size)
    return run_job(job, settings or JobSettings())


def test_bad_input_is_refused_before_anything_is_written(
    s3_env: SeaweedS3, iris_server: tuple[RunningServer, Path]
) -> None:
    server, _ = iris_server
    bucket = empty_bucket(s3_env, "bad-input")
    client = s3_env.client()

    with pytest.raises(NotFoundError, match=r"s3://no-such-bucket/in/.*NoSuchBucket"):
        _job(server, "s3://no-such-bucket/in/", f"s3://{bucket}/out-1/")

    client.put_object(Bucket=bucket, Key="wrong/rows.jsonl", Body=b'{"age": 3, "city": "Oslo"}\n')
    with pytest.raises(InvalidInputError, match=r"columns \['age', 'city'\] do not match model 'iris', whose inputs "
                       r"are input_0 \(FP32 \[-1, 4\]\)"):  # fmt: skip
        _job(server, f"s3://{bucket}/wrong/", f"s3://{bucket}/out-2/")

    client.put_object(Bucket=bucket, Key="good/rows.csv", Body=b"f0,f1,f2,f3\n1,2,3,4\n5,6,7,8\n")
    _job(server, f"s3://{bucket}/good/", f"s3://{bucket}/out-3/")
    before = uploaded_files(s3_env, bucket, "out-3/")
    with pytest.raises(InvalidInputError, match="holds the results of another job"):
        _job(server, f"s3://{bucket}/good/", f"s3://{bucket}/out-3/", shard_size=1)
    assert uploaded_files(s3_env, bucket, "out-3/") == before
    assert sorted({key.split("/")[0] for key in uploaded_files(s3_env, bucket, "")}) == ["good", "out-3", "wrong"]


def test_failed_items_go_to_errors_files_and_fail_the_job_only_past_the_budget(
    slow_sum: RunningServer, tmp_path: Path
) -> None:
    source = tmp_path / "in.jsonl"
    rows = [[float(n), 1.0, 2.0] for n in range(40)]
    rows[7][1] = -1.0  # the model refuses negative values: its whole request fails
    rows[31][2] = -5.0
    lines = [json.dumps({"input_0": row}) for row in rows]
    # Past the rows checked before the job starts: does not fit the signature, so it is never sent.
    lines[25] = json.dumps({"input_0": [1.0, "n/a", 2.0]})
    source.write_text("\n".join(lines) + "\n")
    settings = JobSettings(rows_per_request=8, error_budget=0.1)

    summary = _job(slow_sum, str(source), str(tmp_path / "out"), settings=settings)

    assert (summary["items_done"], summary["errors"]) == (37, 3)
    errors = [json.loads(line) for path in sorted((tmp_path / "out" / "errors").iterdir())
              for line in path.read_text().splitlines()]  # fmt: skip
    assert [(error["id"], error["row"]) for error in errors] == [(7, 7), (25, 25), (31, 31)]
    assert "negative values are not allowed" in errors[0]["error"]
    assert errors[1]["error"] == "bad row: input_0 is FP64 but the row holds 'n/a'"
    results = [json.loads(line) for path in sorted((tmp_path / "out" / "results").iterdir())
               for line in path.read_text().splitlines()]  # fmt: skip
    assert {record["id"]: record["outputs"]["output_0"] for record in results}[8] == 2 * (8.0 + 1.0 + 2.0)

    strict = JobSettings(rows_per_request=8, error_budget=0.05)  # 2 of 40 may fail
    with pytest.raises(RemoteServiceError, match="3 failed items pass the error budget of 2"):
        _job(slow_sum, str(source), str(tmp_path / "strict"), settings=strict)
    assert not (tmp_path / "strict" / "_SUCCESS").exists()


def test_parquet_feature_columns_go_as_one_array_and_a_bad_row_is_still_found_alone(
    slow_sum: RunningServer, tmp_path: Path
) -> None:
    source = tmp_path / "in"
    source.mkdir()
    first = pd.DataFrame(_features(12, 5)[:, :3], columns=["a", "b", "c"]).abs()
    first.loc[9, "b"] = -1.0  # the model refuses negative values: its whole request fails
    first.to_parquet(source / "part-0.parquet")
    second = pd.DataFrame({"c": [1, 2, 3, 4, 5], "a": [1, 1, 1, 1, 1], "b": [2, 2, 2, 2, 2]})  # integers, other order
    second.to_parquet(source / "part-1.parquet")
    third = pd.DataFrame({"a": [1.0, None, 3.0], "b": [1.0, 1.0, 1.0], "c": [0.5, 0.5, 0.5]})  # a null: rows path
    third.to_parquet(source / "part-2.parquet")
    settings = JobSettings(rows_per_request=8, error_budget=0.2)

    summary = _job(slow_sum, str(source), str(tmp_path / "out"), shard_size=20, settings=settings)

    assert (summary["items_done"], summary["errors"]) == (18, 2)
    errors = [json.loads(line) for path in sorted((tmp_path / "out" / "errors").iterdir())
              for line in path.read_text().splitlines()]  # fmt: skip
    assert [(error["id"], error["source"], error["row"]) for error in errors] == [
        (9, "part-0.parquet", 9), (18, "part-2.parquet", 1),
    ]  # fmt: skip
    assert "negative values are not allowed" in errors[0]["error"]
    assert errors[1]["error"] == "bad row: input_0 is FP64 but the row holds None"
    results = [json.loads(line) for path in sorted((tmp_path / "out" / "results").iterdir())
               for line in path.read_text().splitlines()]  # fmt: skip
    rows = pd.concat([first, second[["a", "b", "c"]], third]).to_numpy(dtype=float)
    expected = {item: 2 * rows[item].sum() for item in range(20) if item not in (9, 18)}
    assert [record["id"] for record in results] == sorted(expected)
    assert {record["id"]: record["outputs"]["output_0"] for record in results} == pytest.approx(expected)
    # A request holding the end of one file and the start of the next (items 8-15) keeps each item's place.
    assert [(record["source"], record["row"]) for record in results if record["id"] in (11, 12)] == [
        ("part-0.parquet", 11), ("part-1.parquet", 0),
    ]  # fmt: skip


class _Overloaded(BaseHTTPRequestHandler):
    """A V2 endpoint that answers every third request with 503 and Retry-After: 0.3."""

    calls: ClassVar[int] = 0
    arrivals: ClassVar[list[tuple[float, bool]]] = []  # (when, answered 503)
    lock = threading.Lock()

    def log_message(self, *args: object) -> None:
        pass

    def _reply(self, status: int, document: dict[str, object], headers: dict[str, str] | None = None) -> None:
        body = json.dumps(document).encode()
        self.send_response(status)
        for key, value in {"Content-Type": "application/json", **(headers or {})}.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._reply(200, {"name": "echo", "inputs": [{"name": "x", "datatype": "FP64", "shape": [-1]}]})

    def do_POST(self) -> None:
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with self.lock:
            type(self).calls += 1
            overloaded = type(self).calls % 3 == 0
            type(self).arrivals.append((time.monotonic(), overloaded))
        if overloaded:
            self._reply(503, {"error": "busy"}, {"Retry-After": "0.3"})
            return
        data = request["inputs"][0]["data"]
        self._reply(200, {"outputs": [{"name": "y", "datatype": "FP64", "shape": [len(data)], "data": data}]})


def test_overload_answers_pause_for_retry_after_and_lose_nothing(tmp_path: Path) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Overloaded)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        (tmp_path / "in.jsonl").write_text("".join(json.dumps({"x": float(n)}) + "\n" for n in range(90)))
        endpoint = f"http://127.0.0.1:{server.server_port}"
        job = plan_job(str(tmp_path / "in.jsonl"), str(tmp_path / "out"), endpoint_url=endpoint, model_name="echo",
                       shard_size=90)  # fmt: skip
        summary = run_job(job, JobSettings(rows_per_request=3, concurrency=ConcurrencySettings(max_concurrency=1)))
    finally:
        server.shutdown()
        server.server_close()
    results = [
        json.loads(line) for line in (tmp_path / "out" / "results" / "part-00000.jsonl").read_text().splitlines()
    ]
    assert [record["outputs"] for record in results] == [{"y": float(n)} for n in range(90)]
    assert (summary["errors"], _Overloaded.calls) == (0, 44)  # 30 answered, 14 overloaded (then sent again)
    # One request at a time: after each 503 the next request waited out the Retry-After.
    gaps = [
        later[0] - when
        for (when, overloaded), later in zip(_Overloaded.arrivals, _Overloaded.arrivals[1:], strict=False)
        if overloaded
    ]
    assert len(gaps) == 14
    assert min(gaps) >= 0.3


def _job_command(source: Path, out: Path, server: RunningServer, *extra: str) -> list[str]:
    return [sys.executable, "-m", "aiserving", "job", "run", str(source), str(out), "--endpoint-url", server.url,
            "--model-name", server.name, "--shard-size", "20", "--rows-per-request", "4", "--max-concurrency", "2",
            *extra]  # fmt: skip


def test_a_killed_job_resumes_without_losing_or_repeating_an_item(slow_sum: RunningServer, tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    pd.DataFrame(_features(400, 4)[:, :3], columns=["a", "b", "c"]).abs().to_csv(source, index=False)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    process = subprocess.Popen(_job_command(source, out, slow_sum, "--no-progress"), env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(out.glob("progress/*.json"))) < 3:
        assert process.poll() is None, process.communicate()
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    finished_before = {path.name: path.stat().st_mtime_ns for path in out.glob("progress/*.json")}
    assert 3 <= len(finished_before) < 20

    status = json.loads(subprocess.run([sys.executable, "-m", "aiserving", "job", "status", str(out)], env=env,
                                       capture_output=True, text=True, check=True).stdout)  # fmt: skip
    assert (status["state"], status["shards_done"]) == ("incomplete", len(finished_before))

    rerun = subprocess.run(_job_command(source, out, slow_sum), env=env, capture_output=True, text=True, check=True)
    assert "400/400 items" in rerun.stderr  # the progress bar's last line
    ids = [
        json.loads(line)["id"] for path in sorted(out.glob("results/*.jsonl")) for line in path.read_text().splitlines()
    ]
    assert ids == list(range(400))
    assert {path.name: path.stat().st_mtime_ns for path in out.glob("progress/*.json")
            if path.name in finished_before} == finished_before  # fmt: skip
    assert jobs.status(str(out))["state"] == "succeeded"


def test_cancel_stops_a_running_job_and_a_rerun_finishes_it(slow_sum: RunningServer, tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"input_0": [1.0, 2.0, float(n)]}) + "\n" for n in range(300)))
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    process = subprocess.Popen(_job_command(source, out, slow_sum, "--no-progress"), env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list(out.glob("progress/*.json")):
        time.sleep(0.02)
    assert jobs.cancel(str(out)) == {"cancel_requested": True, "output_uri": str(out)}
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 10, stderr
    assert "the job was cancelled" in stderr
    assert jobs.status(str(out))["state"] == "cancelling"
    assert 1 <= len(list(out.glob("progress/*.json"))) < 15

    handle = jobs.run(jobs.JobParameters(str(source), str(out), endpoint_url=slow_sum.url, model_name=slow_sum.name,
                                         shard_size=20, rows_per_request=4))  # fmt: skip
    assert (handle.summary["items_done"], handle.summary["shards_done"]) == (300, 15)


def test_an_s3_storage_uri_serves_kserve_and_a_model_uri_job(
    s3_env: SeaweedS3, iris_server: tuple[RunningServer, Path], tmp_path: Path
) -> None:
    from kserve_storage import Storage

    _, model_dir = iris_server
    bucket = empty_bucket(s3_env, "packages")
    files = {
        path.relative_to(model_dir).as_posix(): path.read_bytes() for path in model_dir.rglob("*") if path.is_file()
    }
    for key, data in files.items():
        s3_env.client().put_object(Bucket=bucket, Key=f"iris/v1/{key}", Body=data)

    Storage.download(f"s3://{bucket}/iris/v1", str(tmp_path / "mnt"))

    downloaded = {path.relative_to(tmp_path / "mnt").as_posix(): path.read_bytes()
                  for path in (tmp_path / "mnt").rglob("*") if path.is_file()}  # fmt: skip
    assert downloaded == files
    assert "MLmodel" in downloaded

    # The same package as a batch job's model URI: the job serves it itself (our wrapper, in a child process).
    rows = _features(30, 6)
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"input_0": row.tolist()}) + "\n" for row in rows))
    handle = jobs.run(jobs.JobParameters(str(source), str(tmp_path / "out"), model_uri=f"s3://{bucket}/iris/v1",
                                         model_name="iris", shard_size=10, rows_per_request=4))  # fmt: skip
    assert (handle.summary["items_done"], handle.summary["errors"]) == (30, 0)
    results = [json.loads(line) for path in sorted((tmp_path / "out" / "results").iterdir())
               for line in path.read_text().splitlines()]  # fmt: skip
    expected = mlflow.pyfunc.load_model(str(model_dir)).predict(rows.astype(np.float32))
    assert [record["outputs"]["output_0"] for record in results] == [int(label) for label in expected]
