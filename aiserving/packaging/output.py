"""Write a package into a staging directory and move it into place only when complete."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from aiserving.mlflow_source.download import check_output_dir


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
