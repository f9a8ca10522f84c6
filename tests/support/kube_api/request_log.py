"""Every request the test API server answered, in Kubernetes RBAC terms.

The manifests derive the pipeline runner's Role from this log: each record names the verb, API group,
resource and subresource, exactly the parts an RBAC rule matches on.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class RequestRecord:
    """One request: the RBAC attributes plus what the server answered."""

    verb: str
    api_group: str
    resource: str
    subresource: str
    namespace: str
    name: str
    status: int

    def as_dict(self) -> dict[str, str | int]:
        return asdict(self)


class RequestLog:
    """Thread-safe, append-only record of requests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[RequestRecord] = []

    def append(self, record: RequestRecord) -> None:
        with self._lock:
            self._records.append(record)

    def records(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._records)

    def mark(self) -> int:
        """A position to read from later: ``since(mark)`` returns what came after."""
        with self._lock:
            return len(self._records)

    def since(self, mark: int) -> list[RequestRecord]:
        with self._lock:
            return self._records[mark:]

    def rbac_rules(self, mark: int = 0) -> set[tuple[str, str, str]]:
        """``(api_group, resource[/subresource], verb)`` for every request since ``mark``."""
        return {
            (record.api_group, f"{record.resource}/{record.subresource}" if record.subresource else record.resource,
             record.verb)
            for record in self.since(mark)
        }  # fmt: skip
