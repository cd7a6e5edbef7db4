"""Resampling over test utterances: bootstrap intervals, paired tests, subset scores.

Metrics are ``finalize(w @ S)`` (see :mod:`serbench.metrics`), so a batch of
resamples is a weight matrix ``W`` [B, N] of draw counts and all their scores
come from one product ``W @ S``.  Resamples are generated in chunks to bound
memory and are seeded, so the same seed gives the same intervals everywhere,
and two systems scored with the same seed on the same test set see the same
resamples (a paired bootstrap).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

DEFAULT_RESAMPLES = 1000
CHUNK_ELEMENTS = 4_000_000  # draws per chunk: bounds memory at ~32 MB per weight chunk


def resample_weights(n: int, n_resamples: int, seed: int | tuple[int, ...]) -> Iterator[np.ndarray]:
    """Yield chunks of bootstrap weights [b, n] (multinomial draw counts, float64)."""
    rng = np.random.Generator(np.random.PCG64(seed))
    per_chunk = max(1, CHUNK_ELEMENTS // max(n, 1))
    done = 0
    while done < n_resamples:
        b = min(per_chunk, n_resamples - done)
        draws = rng.integers(0, n, size=(b, n))
        flat = (draws + (np.arange(b) * n)[:, None]).ravel()
        yield np.bincount(flat, minlength=b * n).reshape(b, n).astype(np.float64)
        done += b


def resampled_sums(stats: np.ndarray, n_resamples: int, seed: int | tuple[int, ...]) -> np.ndarray:
    """Summed statistics of every resample: [n_resamples, D]."""
    parts = [w @ stats for w in resample_weights(len(stats), n_resamples, seed)]
    return np.vstack(parts) if parts else np.zeros((0, stats.shape[1]))


def subset_weights(n: int, n_subsets: int = 40, seed: int = 0) -> np.ndarray:
    """Indicator weights [n_subsets, n] of a seeded random partition into near-equal subsets."""
    rng = np.random.Generator(np.random.PCG64(seed))
    order = rng.permutation(n)
    w = np.zeros((n_subsets, n))
    w[np.arange(n) % n_subsets, order] = 1.0
    return w


def percentile_interval(samples: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of bootstrap samples (NaN-free)."""
    samples = np.asarray(samples, dtype=np.float64)
    samples = samples[~np.isnan(samples)]
    if samples.size == 0:
        return (float("nan"), float("nan"))
    a = (1.0 - level) / 2.0
    lo, hi = np.quantile(samples, [a, 1.0 - a])
    return float(lo), float(hi)


def paired_p_value(diff_samples: np.ndarray) -> float:
    """Two-sided bootstrap p-value of a difference being zero (floored at 1 / B)."""
    d = np.asarray(diff_samples, dtype=np.float64)
    d = d[~np.isnan(d)]
    if d.size == 0:
        return float("nan")
    p = 2.0 * min(np.mean(d <= 0.0), np.mean(d >= 0.0))
    return float(min(1.0, max(p, 1.0 / d.size)))
