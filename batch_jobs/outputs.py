"""The job's output location: manifest, one result file per shard, errors, markers.

Layout (keys under the output URI)::

    _manifest.json                  the shard plan (fingerprint says which job owns the location)
    _model.json                     what the shards call: {"endpoint_url", "model_uri"} (the latest plan's)
    results/part-00000.jsonl        one JSON line per item: {"id", "source", "row", "outputs"}
    errors/part-00000.jsonl         one JSON line per failed item: {"id", "source", "row", "error"}
    progress/part-00000.json        the shard's counters; written last, so it marks the shard done
    _SUCCESS                        the job summary, written when every shard is done within the budget
    _CANCEL                         asks running shards to stop (aiserving job cancel)

Every file is written whole and atomically (see :meth:`batch_jobs.uris.Storage.write`). A shard whose
progress file exists is done: a re-run skips it. A shard killed half-way left no progress file, so a
re-run computes it again and overwrites its result file: no item is lost and none is written twice.
"""

from __future__ import annotations

import json

import orjson

from batch_jobs.progress import JobCounters
from batch_jobs.shards import ShardPlan
from batch_jobs.uris import Storage
from serving_core.errors import InvalidInputError, NotFoundError

MANIFEST = "_manifest.json"
MODEL = "_model.json"
SUCCESS = "_SUCCESS"
CANCEL = "_CANCEL"


def part_name(index: int) -> str:
    """The file name of shard ``index``'s files."""
    return f"part-{index:05d}"


def results_key(index: int) -> str:
    """Where shard ``index``'s results go."""
    return f"results/{part_name(index)}.jsonl"


def errors_key(index: int) -> str:
    """Where shard ``index``'s per-item errors go."""
    return f"errors/{part_name(index)}.jsonl"


def progress_key(index: int) -> str:
    """Where shard ``index``'s counters go: the shard's done marker."""
    return f"progress/{part_name(index)}.json"


def jsonl(records: list[dict[str, object]]) -> bytes:
    """Records as JSON lines (orjson: a shard writes one line per item, so the encoder's speed counts)."""
    return b"".join([orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE) for record in records])


class OutputLocation:
    """Reads and writes one job's files under its output storage."""

    def __init__(self, storage: Storage) -> None:
        """Use ``storage`` (from :func:`batch_jobs.uris.open_location`)."""
        self.storage = storage

    def claim(self, plan: ShardPlan) -> bool:
        """Make the location this job's: write the manifest, or find this same job's manifest there.

        Returns:
            True when the location already held this job (a re-run that resumes), False when it was empty.

        Raises:
            InvalidInputError: the location holds another job's manifest, or files that are no job's.
        """
        existing = self.manifest()
        if existing is not None:
            if existing.fingerprint != plan.fingerprint:
                raise InvalidInputError(
                    f"output {self.storage.uri} holds the results of another job (input {existing.input_uri}, "
                    f"model {existing.model_name!r}, shard size {existing.shard_size}, "
                    f"fingerprint {existing.fingerprint}); this job's fingerprint is {plan.fingerprint}",
                    hint="choose an empty output location, or delete that job's output first",
                )
            return True
        stray = [stored.key for stored in self.storage.list()]
        if stray:
            raise InvalidInputError(
                f"output {self.storage.uri} is not empty and holds no job manifest: {', '.join(stray[:5])}",
                hint="choose an empty output location so no one's files are overwritten",
            )
        self.storage.write(MANIFEST, plan.model_dump_json(indent=1).encode())
        return False

    def manifest(self) -> ShardPlan | None:
        """The plan stored at the location, if any."""
        if not self.storage.exists(MANIFEST):
            return None
        return ShardPlan.model_validate_json(self.storage.read(MANIFEST))

    def record_model(self, endpoint_url: str, model_uri: str) -> None:
        """Record what the shards call (a re-run may find the model at a new address)."""
        self.storage.write(MODEL, json.dumps({"endpoint_url": endpoint_url, "model_uri": model_uri}).encode())

    def model(self) -> dict[str, str]:
        """What the shards call, as :meth:`record_model` stored it.

        Raises:
            NotFoundError: the plan step has not recorded it (the job was never planned here).
        """
        if not self.storage.exists(MODEL):
            raise NotFoundError(
                f"output {self.storage.uri} records no model to call", hint="run the job's plan step first"
            )
        recorded: dict[str, str] = json.loads(self.storage.read(MODEL))
        return recorded

    def done_shards(self) -> set[int]:
        """Indexes of the shards whose progress marker is written."""
        done = set()
        for stored in self.storage.list("progress/"):
            name = stored.key.rsplit("/", 1)[-1]
            if name.startswith("part-") and name.endswith(".json"):
                done.add(int(name[len("part-") : -len(".json")]))
        return done

    def write_shard(
        self, index: int, results: list[dict[str, object]], errors: list[dict[str, object]], counters: JobCounters
    ) -> None:
        """Write a finished shard: results and errors first, the progress marker last."""
        self.storage.write(results_key(index), jsonl(results))
        self.storage.write(errors_key(index), jsonl(errors))
        self.storage.write(progress_key(index), counters.model_dump_json().encode())

    def counters(self, index: int) -> JobCounters:
        """Shard ``index``'s stored counters."""
        return JobCounters.model_validate_json(self.storage.read(progress_key(index)))

    def errors(self, index: int) -> list[dict[str, object]]:
        """Shard ``index``'s stored per-item errors."""
        text = self.storage.read(errors_key(index)).decode()
        return [json.loads(line) for line in text.splitlines() if line]

    def results(self, index: int) -> list[dict[str, object]]:
        """Shard ``index``'s stored results."""
        text = self.storage.read(results_key(index)).decode()
        return [json.loads(line) for line in text.splitlines() if line]

    def cancel_requested(self) -> bool:
        """Whether ``aiserving job cancel`` asked this job to stop."""
        return self.storage.exists(CANCEL)

    def request_cancel(self) -> None:
        """Ask every running shard of this job to stop."""
        self.storage.write(CANCEL, b"cancel requested\n")

    def clear_cancel(self) -> None:
        """Forget an earlier cancel, so a re-run goes on."""
        self.storage.delete(CANCEL)

    def mark_success(self, summary: dict[str, object]) -> None:
        """Write the ``_SUCCESS`` marker with the job summary."""
        self.storage.write(SUCCESS, json.dumps(summary, indent=1).encode())

    def success(self) -> dict[str, object] | None:
        """The summary in ``_SUCCESS``, if the job finished."""
        if not self.storage.exists(SUCCESS):
            return None
        summary: dict[str, object] = json.loads(self.storage.read(SUCCESS))
        return summary
