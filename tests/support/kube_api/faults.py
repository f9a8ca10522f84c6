"""Fault injection: error answers with Retry-After, slow answers, watch streams cut, concurrent writers."""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass
class Fault:
    """A rule matched against requests; it fires ``times`` times, then is spent.

    ``status`` answers with that HTTP code (and ``Retry-After`` when given); ``delay_s`` answers late;
    ``cut_watch_after`` ends a watch stream abruptly after that many events; ``concurrent_write`` lets
    another writer modify the target just before the request is served, so its resourceVersion is stale.
    """

    verb: str | None = None
    resource: str | None = None
    name: str | None = None
    status: int | None = None
    retry_after: str | None = None
    delay_s: float = 0.0
    cut_watch_after: int | None = None
    concurrent_write: bool = False
    times: int = 1
    fired: int = 0

    def matches(self, verb: str, resource: str, name: str) -> bool:
        return (
            self.fired < self.times
            and (self.verb is None or self.verb == verb)
            and (self.resource is None or self.resource == resource)
            and (self.name is None or self.name == name)
        )


class FaultInjector:
    """Holds the active faults; the server asks it before serving each request."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(self, verb: str, resource: str, name: str) -> Fault | None:
        """The first live fault for this request, counted as fired."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(verb, resource, name):
                    fault.fired += 1
                    return fault
            return None
