"""Output directories that are either complete or absent: nothing half-written is ever left.

Work happens in a hidden staging directory next to the output, renamed into
place only when complete; a failure removes the staging directory.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from serving_core.errors import InvalidInputError


def check_output_dir(out: Path) -> None:
    """The output directory must be new or empty, so nothing is overwritten.

    Raises:
        InvalidInputError: ``out`` is a file or a non-empty directory.
    """
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InvalidInputError(
            f"output directory {out} exists and is not empty",
            hint="choose a new directory or empty this one first",
        )


@contextmanager
def staged_output(out: Path) -> Iterator[Path]:
    """Yield a hidden staging directory next to ``out``; rename it to ``out`` on success.

    Raises:
        InvalidInputError: ``out`` exists and is not an empty directory.
    """
    out = out.absolute()
    check_output_dir(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        yield staging
        check_output_dir(out)
        if out.exists():
            out.rmdir()
        os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
