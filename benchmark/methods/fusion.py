"""Late fusion of class posteriors (docs/methods.md#c.2): average, weighted log-linear, learned.

Pure functions on numpy arrays, so any submission can fuse any models:

* ``average``: ``sum_m w_m p_m / sum_m w_m``;
* ``loglinear``: ``softmax(sum_m w_m log p_m)`` (a weighted product of experts);
* :class:`LearnedFusion`: a multinomial logistic regression on the members'
  concatenated log posteriors, fit on the dev set's consensus labels
  (the default of docs/methods.md#c.2).  When the dev set lacks a class, a fitted model
  could never predict it; fusion then falls back to equal-weight log-linear
  and says so (``fallback``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.special import softmax

EPS = 1e-8
MODES = ("learned", "loglinear", "average")


def _stack(posteriors: Sequence[np.ndarray]) -> np.ndarray:
    p = np.stack([np.asarray(x, dtype=np.float64) for x in posteriors])  # [M, N, K]
    if p.ndim != 3:
        raise ValueError("each member's posteriors must be [N, K]")
    return p


def _weights(m: int, weights: Sequence[float] | None) -> np.ndarray:
    w = np.ones(m) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (m,) or (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"need {m} non-negative fusion weights with a positive sum, got {weights}")
    return w


def average(posteriors: Sequence[np.ndarray], weights: Sequence[float] | None = None
            ) -> np.ndarray:
    p = _stack(posteriors)
    w = _weights(len(p), weights)
    return np.tensordot(w / w.sum(), p, axes=1)


def loglinear(posteriors: Sequence[np.ndarray], weights: Sequence[float] | None = None
              ) -> np.ndarray:
    p = _stack(posteriors)
    w = _weights(len(p), weights)
    return softmax(np.tensordot(w, np.log(np.clip(p, EPS, 1.0)), axes=1), axis=-1)


class LearnedFusion:
    """Logistic regression on the members' log posteriors, fit on dev labels."""

    def __init__(self, c: float = 1.0, seed: int = 0) -> None:
        self.c = c
        self.seed = seed
        self.fallback = False
        self.model = None

    @staticmethod
    def _x(posteriors: Sequence[np.ndarray]) -> np.ndarray:
        p = _stack(posteriors)
        return np.concatenate(list(np.log(np.clip(p, EPS, 1.0))), axis=1)

    def fit(self, posteriors: Sequence[np.ndarray], labels: np.ndarray) -> LearnedFusion:
        from sklearn.linear_model import LogisticRegression

        labels = np.asarray(labels)
        keep = labels >= 0
        k = _stack(posteriors).shape[2]
        if set(np.unique(labels[keep]).tolist()) != set(range(k)):
            self.fallback = True
            return self
        model = LogisticRegression(C=self.c, max_iter=2000, random_state=self.seed)
        model.fit(self._x(posteriors)[keep], labels[keep])
        self.model = model
        return self

    def predict_proba(self, posteriors: Sequence[np.ndarray]) -> np.ndarray:
        if self.fallback or self.model is None:
            return loglinear(posteriors)
        return self.model.predict_proba(self._x(posteriors))


def fuse(posteriors: Sequence[np.ndarray], mode: str, weights: Sequence[float] | None = None
         ) -> np.ndarray:
    """Unlearned fusion by name (``average`` or ``loglinear``)."""
    if mode == "average":
        return average(posteriors, weights)
    if mode == "loglinear":
        return loglinear(posteriors, weights)
    raise ValueError(f"unlearned fusion mode must be 'average' or 'loglinear', got {mode!r}")
