"""A batch job's parameters: what it reads and writes, which model it calls, and how.

:class:`JobParameters` is the one list of them; the ``batch-inference`` pipeline's inputs, ``aiserving job
run``'s options and :func:`aiserving.jobs.run` all take these fields by these names. :class:`JobSettings`
is the part the shards need to call the model.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from batch_jobs.concurrency import ConcurrencySettings
from serving_core.errors import InvalidInputError


@dataclass(frozen=True)
class JobSettings:
    """How a job calls the model and how many failures it tolerates."""

    rows_per_request: int = 32
    error_budget: float = 0.001
    concurrency: ConcurrencySettings = field(default_factory=ConcurrencySettings)

    def __post_init__(self) -> None:
        """Refuse settings that cannot work.

        Raises:
            InvalidInputError: rows per request below 1 or an error budget outside [0, 1].
        """
        if self.rows_per_request < 1:
            raise InvalidInputError(f"rows per request {self.rows_per_request} is below 1", hint="use 1 or more")
        if not 0.0 <= self.error_budget <= 1.0:
            raise InvalidInputError(
                f"error budget {self.error_budget:g} is not a fraction in [0, 1]", hint="e.g. 0.001 for 0.1 %"
            )

    @classmethod
    def of(
        cls, *, rows_per_request: int, max_concurrency: int, latency_tolerance: float, error_budget: float
    ) -> JobSettings:
        """Settings from the knobs as the pipeline and the CLI name them.

        Raises:
            InvalidInputError: a knob out of range.
        """
        concurrency = ConcurrencySettings(max_concurrency=max_concurrency, latency_tolerance=latency_tolerance)
        return cls(rows_per_request=rows_per_request, error_budget=error_budget, concurrency=concurrency)

    def budget_items(self, total_items: int) -> int:
        """How many items may fail in a job of ``total_items``."""
        return math.floor(self.error_budget * total_items)


@dataclass(frozen=True)
class JobParameters:
    """Everything that defines a batch job, named as the ``batch-inference`` pipeline's inputs.

    The model is one of: ``endpoint_url`` (a V2 endpoint), ``model_uri`` (served by the job itself) or
    ``inference_service`` in ``namespace`` (its endpoint read from its status).
    """

    input_uri: str
    output_uri: str
    inference_service: str = ""
    namespace: str = "ai-serving"
    endpoint_url: str = ""
    model_name: str = ""
    model_uri: str = ""
    input_format: str = "auto"
    shard_size: int = 10000
    rows_per_request: int = 32
    max_concurrency: int = 64
    latency_tolerance: float = 2.0
    error_budget: float = 0.001

    def __post_init__(self) -> None:
        """Refuse parameters that cannot make a job, before anything starts.

        Raises:
            InvalidInputError: no model name, or a knob out of range (see :class:`JobSettings`).
        """
        if not self.name:
            raise InvalidInputError("no model name", hint="pass model_name (or inference_service, whose name it takes)")
        self.settings()

    @property
    def name(self) -> str:
        """The V2 model name: ``model_name``, else the InferenceService's name."""
        return self.model_name or self.inference_service

    def settings(self) -> JobSettings:
        """How the shards call the model.

        Raises:
            InvalidInputError: a knob out of range.
        """
        return JobSettings.of(
            rows_per_request=self.rows_per_request, max_concurrency=self.max_concurrency,
            latency_tolerance=self.latency_tolerance, error_budget=self.error_budget,
        )  # fmt: skip

    def as_arguments(self) -> dict[str, object]:
        """The fields as pipeline arguments (names are the pipeline's input names)."""
        return dataclasses.asdict(self)
