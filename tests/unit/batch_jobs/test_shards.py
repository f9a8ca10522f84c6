"""The shard plan: deterministic, exact segments across files, a fingerprint of what decides the results."""

from __future__ import annotations

import pytest

from batch_jobs.readers import InputFile
from batch_jobs.shards import PlannedFile, Segment, Shard, ShardPlan, fingerprint, plan_shards
from serving_core.errors import InvalidInputError

FILES = [InputFile("a.jsonl", 100, "v1", "jsonl"), InputFile("b.csv", 50, "v7", "csv")]


def test_shards_cut_across_files_in_order() -> None:
    plan = plan_shards("s3://jobs/in/", FILES, [5, 4], shard_size=4, model_name="iris")
    planned = (
        PlannedFile(key="a.jsonl", size=100, version="v1", format="jsonl", rows=5),
        PlannedFile(key="b.csv", size=50, version="v7", format="csv", rows=4),
    )
    assert plan == ShardPlan(
        fingerprint=fingerprint("s3://jobs/in/", list(planned), 4, "iris"),
        input_uri="s3://jobs/in/",
        model_name="iris",
        shard_size=4,
        total_items=9,
        files=planned,
        shards=(
            Shard(index=0, first_item=0, items=4, segments=(Segment(file=0, start=0, stop=4),)),
            Shard(
                index=1, first_item=4, items=4,
                segments=(Segment(file=0, start=4, stop=5), Segment(file=1, start=0, stop=3)),
            ),
            Shard(index=2, first_item=8, items=1, segments=(Segment(file=1, start=3, stop=4),)),
        ),
    )  # fmt: skip


def test_same_input_gives_the_same_plan() -> None:
    first = plan_shards("s3://jobs/in/", FILES, [5, 4], shard_size=3, model_name="iris")
    again = plan_shards("s3://jobs/in", FILES, [5, 4], shard_size=3, model_name="iris")
    assert again.shards == first.shards
    assert again.fingerprint == first.fingerprint  # a trailing slash names the same input


@pytest.mark.parametrize(
    "change",
    [
        {"shard_size": 2},
        {"model_name": "other"},
        {"files": [InputFile("a.jsonl", 100, "v2", "jsonl"), FILES[1]]},  # a file was replaced
        {"row_counts": [6, 4]},
    ],
)
def test_fingerprint_changes_with_what_decides_the_results(change: dict[str, object]) -> None:
    arguments: dict[str, object] = {"files": FILES, "row_counts": [5, 4], "shard_size": 3, "model_name": "iris"}
    base = plan_shards("s3://jobs/in/", **arguments)  # type: ignore[arg-type]
    changed = plan_shards("s3://jobs/in/", **(arguments | change))  # type: ignore[arg-type]
    assert changed.fingerprint != base.fingerprint


def test_every_item_in_exactly_one_shard() -> None:
    plan = plan_shards("in", FILES, [997, 1003], shard_size=128, model_name="m")
    items = [
        (segment.file, row)
        for shard in plan.shards
        for segment in shard.segments
        for row in range(segment.start, segment.stop)
    ]
    assert items == [(0, row) for row in range(997)] + [(1, row) for row in range(1003)]
    assert [shard.first_item for shard in plan.shards] == list(range(0, 2000, 128))


@pytest.mark.parametrize(("counts", "size", "message"), [([5, 4], 0, "shard size 0"), ([0, 0], 10, "holds no rows")])
def test_refuses_plans_that_cannot_work(counts: list[int], size: int, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        plan_shards("in", FILES, counts, shard_size=size, model_name="m")
