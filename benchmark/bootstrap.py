"""Resampling: clip bootstrap (optionally class-stratified), seeds on top, subset scores.

Metrics are ``finalize(w @ S)`` (see :mod:`serbench.metrics`), so a batch of
resamples is a weight matrix ``W`` [B, N] of draw counts and all their scores
come from one product.  Resamples are generated in chunks to bound memory and
are seeded, so the same seed gives the same intervals everywhere, and every
prediction scored with the same seed on the same test set sees the same
resamples (a paired bootstrap: submissions, training seeds and references
alike).

Two levels (a hierarchical bootstrap, Davison & Hinkley 1997, sect. 3.8):
test clips are resampled once per resample index; the training seeds of a
cell are resampled on top of that, with replacement, by
:func:`seed_resampled_mean`.  Class-stratified draws (each consensus class
keeps its clip count) keep every class in every resample, so recall-based
metrics such as UAR never lose a class to the resampling.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

DEFAULT_RESAMPLES = 1000
#: Draws generated at once (each stratum's, then counted): their int64 counts stay at 32 MB,
#: which glibc recycles instead of mapping and faulting in fresh pages for every chunk.  This
#: size also fixes the random stream: the same seed gives the same resamples as it always did.
DRAW_ELEMENTS = 4_000_000
#: Resamples handed out at once, as one float32 buffer reused from chunk to chunk: a product of
#: a wide statistics matrix with a short weight chunk spends its time re-reading the matrix, so
#: the longer chunks are, the fewer the passes (a test set of up to 16,000 clips gets its 1,000
#: resamples in one chunk).
CHUNK_ELEMENTS = 16_000_000


def resample_weights(n: int, n_resamples: int, seed: int | tuple[int, ...],
                     strata: np.ndarray | None = None) -> Iterator[np.ndarray]:
    """Yield chunks of bootstrap weights [b, n] (draw counts, float32).

    With ``strata`` (one integer per clip), each stratum is resampled within
    itself, so its clip count is the same in every resample.  Every chunk is a view
    of one buffer that the next chunk overwrites: use it (or copy it) before asking for
    the next one.
    """
    rng = np.random.Generator(np.random.PCG64(seed))
    per_draw = max(1, DRAW_ELEMENTS // max(n, 1))
    per_chunk = max(per_draw, CHUNK_ELEMENTS // max(n, 1) // per_draw * per_draw)
    groups: list[np.ndarray] = []
    if strata is not None:
        strata = np.asarray(strata)
        groups = [np.flatnonzero(strata == s).astype(np.int32) for s in np.unique(strata)]
    buffer = np.empty((min(per_chunk, max(n_resamples, 0)), n), dtype=np.float32)
    done = 0
    while done < n_resamples:
        b = min(per_chunk, n_resamples - done)
        for at in range(0, b, per_draw):
            rows = min(per_draw, b - at)
            buffer[at:at + rows] = _counts(rng, rows, n, groups)
        yield buffer[:b]
        done += b


def _counts(rng: np.random.Generator, b: int, n: int, groups: list[np.ndarray]) -> np.ndarray:
    """Draw counts [b, n] (int64) of ``b`` resamples, each stratum of ``groups`` within itself."""
    # int32 draws (b * n <= DRAW_ELEMENTS): a third less time than int64
    if not groups:
        draws = rng.integers(0, max(n, 1), size=(b, n), dtype=np.int32)
    else:  # each stratum's draws in its own columns (written in place: no stacking copy)
        draws = np.empty((b, n), dtype=np.int32)
        at = 0
        for g in groups:
            draws[:, at:at + len(g)] = g[rng.integers(0, len(g), size=(b, len(g)),
                                                      dtype=np.int32)]
            at += len(g)
    draws += (np.arange(b, dtype=np.int32) * n)[:, None]  # row r counts into [r n, r n + n)
    return np.bincount(draws.ravel(), minlength=b * n).reshape(b, n)


def chunk_sums(w: np.ndarray, stats: np.ndarray) -> np.ndarray:
    """``w @ stats`` [b, D] for a weight chunk, in float32.

    Written as ``(stats.T @ w.T).T``: some OpenBLAS builds run the short-wide
    times tall-narrow product single-threaded and 20x slower than its transpose.
    """
    return np.asarray((stats.T @ w.T).T, dtype=np.float64)


def resampled_sums(stats: np.ndarray, n_resamples: int, seed: int | tuple[int, ...],
                   strata: np.ndarray | None = None) -> np.ndarray:
    """Summed statistics of every resample: [n_resamples, D]."""
    s32 = np.asarray(stats, dtype=np.float32)
    parts = [chunk_sums(w, s32) for w in resample_weights(len(stats), n_resamples, seed, strata)]
    return np.vstack(parts) if parts else np.zeros((0, stats.shape[1]))


def seed_draws(n_seeds: int, n_resamples: int, seed: int | tuple[int, ...]) -> np.ndarray:
    """How often each training seed is drawn in each resample: [B, n_seeds] counts."""
    rng = np.random.Generator(np.random.PCG64(seed))
    picks = rng.integers(0, n_seeds, size=(n_resamples, n_seeds))
    return np.stack([(picks == s).sum(axis=1) for s in range(n_seeds)], axis=1).astype(float)


def seed_resampled_mean(per_seed: np.ndarray, seed: int | tuple[int, ...]) -> np.ndarray:
    """Hierarchical bootstrap over seeds: ``per_seed`` [S, B] clip-resampled scores of S seeds.

    Resample index b draws S seeds with replacement and averages their
    scores on clip resample b; with one seed it returns that seed's samples.
    """
    per_seed = np.asarray(per_seed, dtype=np.float64)
    s, b = per_seed.shape
    if s == 1:
        return per_seed[0]
    counts = seed_draws(s, b, seed)  # [B, S]
    return (counts * per_seed.T).sum(axis=1) / s


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
    q = np.quantile(samples, [a, 1.0 - a])
    return float(q[0]), float(q[1])


def paired_p_value(diff_samples: np.ndarray) -> float:
    """Two-sided bootstrap p-value of a difference being zero (floored at 1 / B)."""
    d = np.asarray(diff_samples, dtype=np.float64)
    d = d[~np.isnan(d)]
    if d.size == 0:
        return float("nan")
    p = 2.0 * min(float(np.mean(d <= 0.0)), float(np.mean(d >= 0.0)))
    return float(min(1.0, max(p, 1.0 / d.size)))
