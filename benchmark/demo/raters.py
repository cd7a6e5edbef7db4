"""Simulated raters whose votes follow measured human confusions.

Each clip has a perceived-emotion distribution: the CREMA-D voice-only
confusion row of its intended emotion and level, perturbed per clip (some
clips are more ambiguous than others).  Each rater of the pool has individual
biases (a log-multiplier per class: some over-use "neutral", others "anger")
and an attentiveness (a share of uniformly random answers).  A clip gets 4-12
raters, drawn with CREMA-D's distribution of raters per clip.  With
probability :data:`SECONDARY_RATE` a rater also answers a multi-choice
secondary question (the primary class plus one or two others).

Sampling uses only ``Generator.random()`` (uniform doubles from PCG64), whose
stream numpy keeps stable, so the labels -- and so the task fingerprint --
are the same on every platform.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .profiles import CREMA_D_RATERS_PER_CLIP, CREMA_D_VOICE_CONFUSION

N_RATERS = 40
SECONDARY_RATE = 0.3
CLIP_SPREAD = 0.7  # max |log-multiplier| of the per-clip perturbation
RATER_BIAS = 0.6  # max |log-multiplier| of a rater's class bias


@dataclass(frozen=True)
class RaterPool:
    ids: tuple[str, ...]
    bias: np.ndarray  # [R, K] log-multipliers
    attentiveness: np.ndarray  # [R] share of answers that follow perception


def _categorical(p: np.ndarray, u: float) -> int:
    c = np.cumsum(p)
    return int(min(np.searchsorted(c, u * c[-1], side="right"), len(p) - 1))


def make_pool(rng: np.random.Generator, k: int, n: int = N_RATERS) -> RaterPool:
    bias = RATER_BIAS * (2.0 * rng.random((n, k)) - 1.0)
    att = 0.8 + 0.2 * rng.random(n)
    return RaterPool(tuple(f"r{i + 1:02d}" for i in range(n)), bias, att)


def rate_clip(
    rng: np.random.Generator, pool: RaterPool, intended: int, level: str
) -> list[tuple[str, str, int]]:
    """Votes for one clip: (rater id, question, class index) triples."""
    base = CREMA_D_VOICE_CONFUSION[level][intended]
    k = len(base)
    clip = base * np.exp(CLIP_SPREAD * (2.0 * rng.random(k) - 1.0))
    sizes = np.array(sorted(CREMA_D_RATERS_PER_CLIP))
    weights = np.array([CREMA_D_RATERS_PER_CLIP[s] for s in sizes], dtype=np.float64)
    n_raters = int(sizes[_categorical(weights, rng.random())])
    chosen = np.argsort(rng.random(len(pool.ids)))[:n_raters]
    votes: list[tuple[str, str, int]] = []
    for r in sorted(chosen):
        p = clip * np.exp(pool.bias[r])
        p = pool.attentiveness[r] * p / p.sum() + (1.0 - pool.attentiveness[r]) / k
        primary = _categorical(p, rng.random())
        votes.append((pool.ids[r], "primary", primary))
        if rng.random() < SECONDARY_RATE:
            extra = 1 + int(rng.random() < 0.3)
            rest = p.copy()
            picked = [primary]
            for _ in range(extra):
                rest[picked] = 0.0
                picked.append(_categorical(rest, rng.random()))
            votes.extend((pool.ids[r], "secondary", c) for c in sorted(picked))
    return votes
