"""The output location: atomic files, claiming it for one job, resume from done markers, the error budget."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from batch_jobs.outputs import OutputLocation
from batch_jobs.progress import JobCounters
from batch_jobs.readers import InputFile
from batch_jobs.runner import JobSettings, summarise_job
from batch_jobs.shards import ShardPlan, plan_shards
from batch_jobs.uris import LocalStorage
from serving_core.errors import InvalidInputError, RemoteServiceError


def _plan(shard_size: int = 2, model: str = "iris") -> ShardPlan:
    return plan_shards("in/", [InputFile("a.jsonl", 10, "v1", "jsonl")], [5], shard_size, model)


def _counters(items: int, errors: int) -> JobCounters:
    counters = JobCounters()
    counters.record(items, errors, 0.004, now=1000.0)
    return counters


def test_write_replaces_whole_files_and_leaves_no_temporaries(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    storage.write("results/part-00000.jsonl", b"old\n")
    storage.write("results/part-00000.jsonl", b"new\n")
    files = [path for path in tmp_path.rglob("*") if path.is_file()]
    stored = {path.relative_to(tmp_path).as_posix(): path.read_bytes() for path in files}
    assert stored == {"results/part-00000.jsonl": b"new\n"}


def test_a_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    storage.write("x.json", b"old")
    with pytest.raises(TypeError):
        storage.write("x.json", "not bytes")  # type: ignore[arg-type]
    assert [path.name for path in tmp_path.iterdir()] == ["x.json"]
    assert (tmp_path / "x.json").read_bytes() == b"old"


def test_claim_an_empty_location_then_resume_the_same_job(tmp_path: Path) -> None:
    output = OutputLocation(LocalStorage(tmp_path / "out"))
    assert output.claim(_plan()) is False
    assert output.manifest() == _plan()
    assert output.claim(_plan()) is True  # the same job again: a resume


@pytest.mark.parametrize("other", [_plan(shard_size=3), _plan(model="other")])
def test_another_jobs_output_is_refused_before_anything_is_written(tmp_path: Path, other: ShardPlan) -> None:
    output = OutputLocation(LocalStorage(tmp_path))
    output.claim(_plan())
    before = {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()}
    with pytest.raises(
        InvalidInputError, match=f"holds the results of another job .*this job.s fingerprint is {other.fingerprint}"
    ):
        output.claim(other)
    assert {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()} == before


def test_a_location_with_files_of_no_job_is_refused(tmp_path: Path) -> None:
    (tmp_path / "report.csv").write_text("someone's data")
    with pytest.raises(InvalidInputError, match=r"not empty and holds no job manifest: report\.csv"):
        OutputLocation(LocalStorage(tmp_path)).claim(_plan())
    assert [path.name for path in tmp_path.iterdir()] == ["report.csv"]


def test_done_shards_are_the_ones_with_a_progress_marker(tmp_path: Path) -> None:
    output = OutputLocation(LocalStorage(tmp_path))
    output.claim(_plan())
    output.write_shard(1, [{"id": 2, "outputs": {"y": 1}}], [], _counters(2, 0))
    # A shard killed half-way: its results may be written, its marker is not; it is not done.
    output.storage.write("results/part-00002.jsonl", b'{"id": 4}\n')
    assert output.done_shards() == {1}
    assert output.results(1) == [{"id": 2, "outputs": {"y": 1}}]
    assert output.counters(1) == _counters(2, 0)


def test_summary_fails_past_the_error_budget_and_passes_within_it(tmp_path: Path) -> None:
    plan = _plan()  # 5 items in 3 shards
    output = OutputLocation(LocalStorage(tmp_path))
    output.claim(plan)
    output.write_shard(0, [], [{"id": 0, "error": "bad"}, {"id": 1, "error": "bad"}], _counters(2, 2))
    output.write_shard(1, [{"id": 2}, {"id": 3}], [], _counters(2, 0))
    with pytest.raises(RemoteServiceError, match=r"1 of 3 shards are not done \(first: \[2\]\)"):
        summarise_job(output, plan, JobSettings(error_budget=0.5))
    output.write_shard(2, [{"id": 4}], [], _counters(1, 0))
    with pytest.raises(RemoteServiceError, match="2 of 5 items failed, past the error budget of 1"):
        summarise_job(output, plan, JobSettings(error_budget=0.2))
    assert output.success() is None
    summary = summarise_job(output, plan, JobSettings(error_budget=0.4))
    assert summary == {
        "fingerprint": plan.fingerprint, "input_uri": "in/", "model_name": "iris", "total_items": 5, "shards": 3,
        "shards_done": 3, "items_done": 3, "errors": 2, "items_per_s": 0.0, "latency_p50_s": 0.005,
        "latency_p99_s": 0.005,
    }  # fmt: skip
    assert json.loads((tmp_path / "_SUCCESS").read_text()) == summary


def test_cancel_marker_round_trip(tmp_path: Path) -> None:
    output = OutputLocation(LocalStorage(tmp_path))
    assert output.cancel_requested() is False
    output.request_cancel()
    assert output.cancel_requested() is True
    output.clear_cancel()
    assert output.cancel_requested() is False


@pytest.mark.parametrize("budget", [-0.1, 1.5])
def test_error_budget_must_be_a_fraction(budget: float) -> None:
    with pytest.raises(InvalidInputError, match="error budget"):
        JobSettings(error_budget=budget)


def test_reading_a_missing_file_names_it(tmp_path: Path) -> None:
    from serving_core.errors import NotFoundError

    with pytest.raises(NotFoundError, match=f"{tmp_path}/gone.jsonl does not exist"):
        LocalStorage(tmp_path).read("gone.jsonl")
