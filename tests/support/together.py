"""Start several servers at once: their start-ups (seconds of imports each) overlap instead of adding up."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, ExitStack, contextmanager
from typing import TypeVar

T = TypeVar("T")


@contextmanager
def entered_together(*managers: AbstractContextManager[T]) -> Iterator[list[T]]:
    """Enter ``managers`` concurrently, yield what they gave, exit every one that entered (also on failure)."""
    with ExitStack() as stack, ThreadPoolExecutor(max_workers=len(managers)) as pool:
        futures = [pool.submit(manager.__enter__) for manager in managers]
        values: list[T] = []
        failure: BaseException | None = None
        for manager, future in zip(managers, futures, strict=True):
            try:
                values.append(future.result())
            except BaseException as error:  # re-raised below, once the others are cleaned up
                failure = failure or error
                continue
            stack.push(manager.__exit__)
        if failure is not None:
            raise failure
        yield values
