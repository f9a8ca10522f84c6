"""Where a local run's output goes: the story to the person's terminal, everything to a log file.

The KFP local runner prints each task's executor input, its subprocess output and warnings meant
for notebook users; a person following a run needs a line per task instead. While a
:class:`RunConsole` is open, ``sys.stdout``, ``sys.stderr`` and the root logger write to its log
file (the runner builds its log handler on ``sys.stdout`` and prints task output with ``print``,
so the redirect catches both), and only what is passed to :meth:`RunConsole.say` reaches the
terminal. ``verbose`` also streams the log to the terminal, as before this existed.
"""

from __future__ import annotations

import collections
import contextlib
import io
import logging
import re
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Self, TextIO

# The runner colours task names and statuses; the log file is read in editors and by tests.
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# Lines kept for showing what a failed task printed last.
TAIL_LINES = 20


def without_colours(text: str) -> str:
    """``text`` without the ANSI colour codes the runner puts around task names and statuses."""
    return _ANSI.sub("", text)


class _LogStream(io.TextIOBase):
    """A text stream for ``sys.stdout``/``sys.stderr``: the log file, plus the terminal when verbose."""

    def __init__(self, console: RunConsole) -> None:
        super().__init__()
        self._console = console

    def write(self, text: str) -> int:
        self._console.log(text)
        if self._console.verbose:
            self._console.terminal.write(text)
        return len(text)

    def flush(self) -> None:
        self._console.flush()

    def isatty(self) -> bool:
        return False


class RunConsole:
    """Open a log file for a run and route the process's output into it until closed.

    Use as a context manager. ``say`` writes a line for the person (and copies it to the log);
    ``write`` writes text without a newline, for progress lines that are finished later.
    """

    def __init__(self, log_path: Path, *, verbose: bool = False, terminal: TextIO | None = None) -> None:
        """Remember where to log; nothing is redirected before ``__enter__``.

        Args:
            log_path: The log file (created with its folder; appended to when it exists).
            verbose: Also stream everything the run logs to the terminal.
            terminal: Where the person reads (default: ``sys.stdout`` when the console opens).
        """
        self.log_path = log_path.absolute()
        self.verbose = verbose
        self._terminal = terminal
        self._lock = threading.RLock()
        self._recent: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self._partial = ""
        self._stack = contextlib.ExitStack()
        self._file: TextIO | None = None

    @property
    def terminal(self) -> TextIO:
        """The person's stream."""
        if self._terminal is None:
            raise RuntimeError("RunConsole.terminal is used before the console is opened")
        return self._terminal

    @property
    def live(self) -> bool:
        """Whether progress may be redrawn in place: a terminal, and not already streaming the log."""
        return not self.verbose and self.terminal.isatty()

    def __enter__(self) -> Self:
        if self._terminal is None:
            self._terminal = sys.stdout
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self._stack.enter_context(self.log_path.open("a", encoding="utf-8"))
        stream = _LogStream(self)
        self._stack.enter_context(contextlib.redirect_stdout(stream))
        self._stack.enter_context(contextlib.redirect_stderr(stream))
        self._stack.enter_context(_root_logging_to(stream))
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._stack.close()
        self._file = None

    def log(self, text: str) -> None:
        """Append ``text`` to the log file (colours removed) and to the recent lines."""
        text = without_colours(text)
        with self._lock:
            if self._file is not None:
                self._file.write(text)
            *complete, self._partial = (self._partial + text).split("\n")
            self._recent.extend(line for line in complete if line.strip())

    def flush(self) -> None:
        """Flush the log file."""
        with self._lock:
            if self._file is not None:
                self._file.flush()

    def say(self, line: str = "") -> None:
        """Write one line for the person; the log gets a copy."""
        self.write(line + "\n")

    def write(self, text: str, *, to_log: bool = True) -> None:
        """Write ``text`` to the terminal as is; copy it to the log unless it redraws a progress line.

        Args:
            text: What to write; a line is finished only by its newline.
            to_log: ``False`` for text the log gets otherwise (a line finished later, a redraw).
        """
        with self._lock:
            self.terminal.write(text)
            self.terminal.flush()
            if to_log and not text.startswith("\r"):
                self.log(text)

    def forget_recent(self) -> None:
        """Start collecting recent lines afresh (a task starts: its lines are the ones to show)."""
        with self._lock:
            self._recent.clear()
            self._partial = ""

    def recent(self) -> list[str]:
        """The last non-empty lines logged since :meth:`forget_recent`, oldest first."""
        with self._lock:
            return list(self._recent)


@contextlib.contextmanager
def _root_logging_to(stream: _LogStream) -> Iterator[None]:
    """Send root-logger records at INFO and above to ``stream`` for the block, then restore the logger.

    The runner swaps the root handlers during each task and restores them after; between tasks
    (skips, clean-up) it logs through whatever is installed here.
    """
    root = logging.getLogger()
    saved_level, saved_handlers = root.level, root.handlers[:]
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s - %(levelname)s - %(name)s - %(message)s"))
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    try:
        yield
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
