"""Temperature scaling fitted on the dev split (post-hoc calibration; pure numpy + scipy).

* ``single`` (Guo et al., 2017, "On Calibration of Modern Neural Networks"): one
  temperature ``T`` for a softmax model, minimising the dev negative
  log-likelihood ``-mean_i sum_k t_ik log softmax(z_i / T)_k`` against the dev
  targets ``t`` (one-hot or a vote distribution).
* ``per_emotion`` (the multi-label temperature scaling of Chou et al., Interspeech
  2023, "The Importance of Calibration: Rethinking Confidence and Performance of
  Speech Multi-label Emotion Classifiers"): one ``T_j`` per emotion for a sigmoid
  model, each minimising the dev binary NLL
  ``-mean_i [t_ij log s(z_ij / T_j) + (1 - t_ij) log(1 - s(z_ij / T_j))]``.

Temperatures are searched on log T in [1/20, 20] (bounded Brent); a dev set
that cannot inform a temperature (no clip, or a constant zero logit) keeps 1.
Fitted on dev only, so the test split never shapes them.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Literal

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_expit, log_softmax

Kind = Literal["single", "per_emotion"]
KINDS = ("none", "single", "per_emotion")
BOUNDS = (float(np.log(1 / 20)), float(np.log(20)))


def _binary_nll(z: np.ndarray, t: np.ndarray, temp: float) -> float:
    s = z / temp
    return float(-np.mean(t * log_expit(s) + (1 - t) * log_expit(-s)))


def _softmax_nll(z: np.ndarray, t: np.ndarray, temp: float) -> float:
    return float(-np.mean(np.sum(t * log_softmax(z / temp, axis=1), axis=1)))


def _search(nll: Callable[[float], float]) -> float:
    res = minimize_scalar(lambda lt: nll(float(np.exp(lt))), bounds=BOUNDS, method="bounded",
                          options={"xatol": 1e-6})
    return float(np.exp(res.x))


def fit_temperatures(logits: np.ndarray, targets: np.ndarray, kind: Kind) -> np.ndarray:
    """Temperatures [1] (``single``) or [K] (``per_emotion``) from dev logits and targets."""
    z = np.asarray(logits, dtype=np.float64)
    t = np.asarray(targets, dtype=np.float64)
    if z.shape != t.shape or z.ndim != 2:
        raise ValueError(f"logits {z.shape} and targets {t.shape} must both be [N, K]")
    if kind == "single":
        if len(z) == 0 or not np.any(z):
            return np.ones(1)
        return np.array([_search(partial(_softmax_nll, z, t))])
    if kind == "per_emotion":
        out = np.ones(z.shape[1])
        for j in range(z.shape[1]):
            if len(z) and np.any(z[:, j]):
                out[j] = _search(partial(_binary_nll, z[:, j], t[:, j]))
        return out
    raise ValueError(f"temperature kind must be 'single' or 'per_emotion', got {kind!r}")


def scale(logits: np.ndarray, temperatures: np.ndarray) -> np.ndarray:
    """Logits divided by their temperature (one for all classes, or one per class)."""
    return np.asarray(logits, dtype=np.float64) / np.asarray(temperatures, dtype=np.float64)
