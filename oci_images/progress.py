"""A one-line upload progress bar on stderr, shown only on a terminal."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterable, Iterator
from typing import TextIO

_REDRAW_S = 0.2
_MIB = 1 << 20


class Progress:
    """Count bytes as they pass and redraw ``label [####....] 512/1024 MiB 95 MB/s, skipped 1792 MiB``.

    Several uploads may count into one bar at once (each from its own thread); bytes that did
    not need sending (the registry already had the blob, or mounted it) are shown as skipped.
    """

    def __init__(self, label: str, total: int | None, *, stream: TextIO | None = None, enabled: bool | None = None):
        self.label = label
        self.total = total
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.done = 0
        self.skipped = 0
        self._started = time.monotonic()
        self._drawn_at = 0.0
        self._lock = threading.Lock()

    def wrap(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        """Pass chunks through, advancing the bar by their size."""
        for chunk in chunks:
            with self._lock:
                self.done += len(chunk)
                self._draw()
            yield chunk

    def expect(self, size: int) -> None:
        """Add ``size`` bytes about to be sent to the total (uploads start one by one)."""
        with self._lock:
            self.total = (self.total or 0) + size

    def skip(self, size: int) -> None:
        """Count ``size`` bytes that were not sent because the target already has them."""
        with self._lock:
            self.skipped += size
            self._draw()

    def finish(self) -> None:
        """Draw the final state and end the line."""
        with self._lock:
            self._draw(final=True)

    def render(self) -> str:
        """The bar as text."""
        elapsed = max(time.monotonic() - self._started, 1e-6)
        rate = self.done / elapsed / 1e6
        done_mib = self.done / _MIB
        skipped = f", skipped {self.skipped / _MIB:.0f} MiB" if self.skipped else ""
        if self.total:
            fraction = min(self.done / self.total, 1.0)
            filled = int(fraction * 30)
            bar = "#" * filled + "." * (30 - filled)
            return f"{self.label} [{bar}] {done_mib:.0f}/{self.total / _MIB:.0f} MiB {rate:.0f} MB/s{skipped}"
        return f"{self.label} {done_mib:.0f} MiB {rate:.0f} MB/s{skipped}"

    def _draw(self, *, final: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not final and now - self._drawn_at < _REDRAW_S:
            return
        self._drawn_at = now
        self.stream.write("\r" + self.render() + ("\n" if final else ""))
        self.stream.flush()
