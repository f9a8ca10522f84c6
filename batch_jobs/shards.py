"""The shard plan: the input's items cut into fixed-size shards, the same every time for the same input.

Items are numbered in input order (files sorted by key, rows in file order). Shard ``i`` holds items
``i * shard_size`` up to the next shard's first item, as segments of one or more files. The plan's
fingerprint covers what decides the results (input files and their versions, format, shard size and
model), so a re-run of the same job recognises its own output and another job's output is refused.
"""

from __future__ import annotations

import hashlib
import json

from pydantic import BaseModel, ConfigDict

from batch_jobs.readers import InputFile
from serving_core.errors import InvalidInputError


class PlannedFile(BaseModel):
    """One input file with its row count."""

    model_config = ConfigDict(frozen=True)

    key: str
    size: int
    version: str
    format: str
    rows: int


class Segment(BaseModel):
    """Rows ``[start, stop)`` of input file number ``file``."""

    model_config = ConfigDict(frozen=True)

    file: int
    start: int
    stop: int


class Shard(BaseModel):
    """Items ``[first_item, first_item + items)`` of the job, read from ``segments``."""

    model_config = ConfigDict(frozen=True)

    index: int
    first_item: int
    items: int
    segments: tuple[Segment, ...]


class ShardPlan(BaseModel):
    """What a job reads and how it is cut; stored as the manifest in the output location."""

    model_config = ConfigDict(frozen=True)

    fingerprint: str
    input_uri: str
    model_name: str
    shard_size: int
    total_items: int
    files: tuple[PlannedFile, ...]
    shards: tuple[Shard, ...]


def fingerprint(input_uri: str, files: list[PlannedFile], shard_size: int, model_name: str) -> str:
    """A hash of everything that decides which item lands in which shard and what it is sent to."""
    identity = {
        "input_uri": input_uri.rstrip("/"),
        "files": [[file.key, file.size, file.version, file.format, file.rows] for file in files],
        "shard_size": shard_size,
        "model_name": model_name,
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:32]


def plan_shards(
    input_uri: str, files: list[InputFile], row_counts: list[int], shard_size: int, model_name: str
) -> ShardPlan:
    """Cut the items of ``files`` (with ``row_counts`` rows each) into shards of ``shard_size`` items.

    Raises:
        InvalidInputError: a shard size below 1, or an input without a single row.
    """
    if shard_size < 1:
        raise InvalidInputError(f"shard size {shard_size} is below 1", hint="use a shard size of 1 or more items")
    planned = [
        PlannedFile(key=file.key, size=file.size, version=file.version, format=file.format, rows=rows)
        for file, rows in zip(files, row_counts, strict=True)
    ]
    total = sum(row_counts)
    if total == 0:
        raise InvalidInputError(f"input {input_uri} holds no rows", hint="check the input files")
    shards: list[Shard] = []
    segments: list[Segment] = []
    first_item = 0
    filled = 0
    for number, file in enumerate(planned):
        row = 0
        while row < file.rows:
            take = min(shard_size - filled, file.rows - row)
            segments.append(Segment(file=number, start=row, stop=row + take))
            row += take
            filled += take
            if filled == shard_size:
                shards.append(Shard(index=len(shards), first_item=first_item, items=filled, segments=tuple(segments)))
                first_item += filled
                segments, filled = [], 0
    if filled:
        shards.append(Shard(index=len(shards), first_item=first_item, items=filled, segments=tuple(segments)))
    return ShardPlan(
        fingerprint=fingerprint(input_uri, planned, shard_size, model_name),
        input_uri=input_uri,
        model_name=model_name,
        shard_size=shard_size,
        total_items=total,
        files=tuple(planned),
        shards=tuple(shards),
    )
