"""Clips into batches by length: consecutive clips of a length order, until a batch is full.

One rule serves feature extraction (a budget of padded seconds per batch) and
training (at most ``batch_size`` clips, optionally a cap of padded seconds):
a batch is full when one more clip would exceed the item count or make the
padded size (longest clip x clips) pass the cap.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def pack(order: Iterable[int], lengths: np.ndarray, *, max_items: int | None = None,
         cap: float | None = None) -> list[np.ndarray]:
    """Indices of ``order`` cut into batches, in order (a clip over ``cap`` stands alone).

    Padded sizes: [0, 1] is 1 x 2 = 2; adding clip 2 would make it 2 x 3 = 6 > 4.

    >>> [b.tolist() for b in pack([0, 1, 2, 3], np.array([1.0, 1.0, 2.0, 3.0]), cap=4.0)]
    [[0, 1], [2], [3]]
    >>> [b.tolist() for b in pack(range(5), np.ones(5), max_items=2)]
    [[0, 1], [2, 3], [4]]
    """
    batches: list[np.ndarray] = []
    current: list[int] = []
    longest = 0.0
    for i in order:
        d = float(lengths[i])
        full = (max_items is not None and len(current) >= max_items) or (
            cap is not None and max(longest, d) * (len(current) + 1) > cap)
        if current and full:
            batches.append(np.array(current))
            current, longest = [], 0.0
        current.append(int(i))
        longest = max(longest, d)
    if current:
        batches.append(np.array(current))
    return batches


__all__ = ["pack"]
