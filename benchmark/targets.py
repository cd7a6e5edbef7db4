"""Target encodings and weights derived from rule targets (pure functions).

* :func:`label_smooth` is the smoothing of every released label file
  (docs/methods.md#1): ``(1 - eps) v + eps / (K - 1) (1 - v)``, eps = 0.05.
* :func:`multi_hot` is the 1/K rule (share strictly above 1/K).  Smoothing
  does not move the threshold, so it may be applied before or after.
* :func:`class_balanced_weights` is the released recipe's class-balanced
  weighting (docs/methods.md#e.1).
"""

from __future__ import annotations

import numpy as np

DEFAULT_EPSILON = 0.05


def label_smooth(v: np.ndarray, epsilon: float = DEFAULT_EPSILON) -> np.ndarray:
    """Smooth one-hot or distribution targets; each row still sums to 1."""
    v = np.asarray(v, dtype=np.float64)
    k = v.shape[-1]
    if k < 2:
        raise ValueError("label smoothing needs at least 2 classes")
    if not 0.0 <= epsilon < 1.0:
        raise ValueError(f"epsilon must be in [0, 1), got {epsilon}")
    return (1.0 - epsilon) * v + epsilon / (k - 1) * (1.0 - v)


def unsmooth(t: np.ndarray, epsilon: float = DEFAULT_EPSILON) -> np.ndarray:
    """Invert :func:`label_smooth` (used to read released, smoothed label files)."""
    t = np.asarray(t, dtype=np.float64)
    k = t.shape[-1]
    return (t - epsilon / (k - 1)) / (1.0 - epsilon * k / (k - 1))


def multi_hot(y: np.ndarray) -> np.ndarray:
    """Bits ``[y_k > 1/K]`` per row (the multi-label target and prediction rule)."""
    y = np.asarray(y, dtype=np.float64)
    return (y > 1.0 / y.shape[-1]).astype(np.int8)


def hard_labels(y: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
    """Argmax per row; ties go to the first class, or to a random top class with ``rng``.

    The random tie-break is how AR targets are used for single-label training
    in the dissertation (docs/methods.md#a.2, [2ND]).
    """
    y = np.asarray(y, dtype=np.float64)
    if rng is None:
        return y.argmax(axis=-1)
    top = y == y.max(axis=-1, keepdims=True)
    noise = rng.random(y.shape)
    return np.where(top, noise, -1.0).argmax(axis=-1)


def class_balanced_weights(t: np.ndarray) -> np.ndarray:
    """Per-class weights of the released class-balanced soft CE.

    ``n_k`` = number of training targets with share above 1/K (0 replaced by 1),
    ``beta = (N - 1) / N``, ``w_k = (1 - beta) / (1 - beta ** n_k)``, then
    rescaled so the weights sum to K.
    """
    t = np.asarray(t, dtype=np.float64)
    n, k = t.shape
    if n < 2:
        raise ValueError("class-balanced weights need at least 2 training targets")
    counts = multi_hot(t).sum(axis=0).astype(np.float64)
    counts[counts == 0] = 1.0
    beta = (n - 1) / n
    w = (1.0 - beta) / (1.0 - beta**counts)
    return k * w / w.sum()


def sample_weights(t: np.ndarray, class_weights: np.ndarray) -> np.ndarray:
    """Per-sample weight ``omega_i = sum_k w_k t_ik`` of the class-balanced loss."""
    return np.asarray(t, dtype=np.float64) @ np.asarray(class_weights, dtype=np.float64)
