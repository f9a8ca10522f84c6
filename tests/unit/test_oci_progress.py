"""The upload progress bar: drawn only when enabled, and a transparent pass-through."""

from __future__ import annotations

import io
import re

from oci_images.progress import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bar_is_drawn_on_a_terminal_and_passes_chunks_through() -> None:
    terminal = Terminal()
    progress = Progress("pushing", 4 << 20, stream=terminal)
    chunks = [b"a" * (1 << 20)] * 4
    assert list(progress.wrap(iter(chunks))) == chunks
    progress.finish()
    last = terminal.getvalue().split("\r")[-1]
    assert re.fullmatch(r"pushing \[#{30}\] 4/4 MiB \d+ MB/s\n", last)


def test_nothing_is_drawn_without_a_terminal() -> None:
    pipe = io.StringIO()
    assert list(Progress("pushing", None, stream=pipe).wrap(iter([b"x"]))) == [b"x"]
    assert pipe.getvalue() == ""
    assert re.fullmatch(r"pushing 0 MiB \d+ MB/s", Progress("pushing", None, stream=pipe).render())


def test_skipped_bytes_are_shown_next_to_the_sent_ones() -> None:
    terminal = Terminal()
    progress = Progress("pushing 3 model layers", 1 << 20, stream=terminal)
    progress.skip(7 << 20)
    assert list(progress.wrap([b"a" * (1 << 20)])) == [b"a" * (1 << 20)]
    progress.finish()
    last = terminal.getvalue().split("\r")[-1]
    assert re.fullmatch(r"pushing 3 model layers \[#{30}\] 1/1 MiB \d+ MB/s, skipped 7 MiB\n", last)


def test_uploads_add_to_the_total_as_they_start() -> None:
    terminal = Terminal()
    progress = Progress("pushing", 0, stream=terminal)
    progress.expect(2 << 20)
    assert list(progress.wrap([b"a" * (1 << 20)])) == [b"a" * (1 << 20)]
    progress.expect(2 << 20)
    progress.finish()
    last = terminal.getvalue().split("\r")[-1]
    assert re.fullmatch(r"pushing \[#{7}\.{23}\] 1/4 MiB \d+ MB/s\n", last)
