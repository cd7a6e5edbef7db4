"""Work ahead on one background thread: ``fn`` of the next items while the caller uses this one.

Used where a step must not wait for I/O or collation: decoding audio ahead of
the encoder's forward (feature cache) and collating batches ahead of the
training step (training on a GPU).  One worker thread keeps the order and
bounds memory to ``depth`` items in flight.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def ahead(items: Sequence[T], fn: Callable[[T], R], depth: int, name: str) -> Iterator[R]:
    """``fn(item)`` for every item, in order, computed up to ``depth`` items ahead.

    >>> list(ahead([1, 2, 3], lambda x: x * 10, depth=2, name="example"))
    [10, 20, 30]
    """
    with ThreadPoolExecutor(1, thread_name_prefix=f"serbench-{name}") as pool:
        pending = deque(pool.submit(fn, item) for item in items[:depth])
        for k in range(len(items)):
            result = pending.popleft().result()
            if k + depth < len(items):
                pending.append(pool.submit(fn, items[k + depth]))
            yield result


__all__ = ["ahead"]
