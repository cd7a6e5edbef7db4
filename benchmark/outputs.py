"""What a submission's ``predict_proba`` may return, checked before anything is written.

A distribution per clip (rows summing to 1 within :data:`SUM_TOLERANCE`), or,
for a submission that declares ``outputs = "independent"``, one probability per
class in [0, 1] (sigmoids).  Every defect is a ``ValueError`` saying what is
wrong, which fails only that cell.
"""

from __future__ import annotations

from typing import Any

import numpy as np

SUM_TOLERANCE = 1e-4


def check_probabilities(probs: Any, n: int, k: int, *, independent: bool = False) -> np.ndarray:
    """Validate a submission's output; raise ValueError saying what is wrong.

    ``independent``: the submission
    declared ``outputs = "independent"``, so each value is a probability in [0, 1]
    and rows are kept as they are (the scorer normalises only for distribution metrics).
    """
    try:
        p = np.asarray(probs, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"predict_proba returned something that is not numeric: {exc}") from exc
    if p.shape != (n, k):
        raise ValueError(f"predict_proba returned shape {p.shape}, expected ({n}, {k})")
    if not np.isfinite(p).all():
        bad = int((~np.isfinite(p)).any(axis=1).sum())
        raise ValueError(f"predict_proba returned NaN or inf in {bad} rows")
    if (p < 0).any():
        raise ValueError("predict_proba returned negative probabilities")
    if independent:
        if (p > 1.0 + SUM_TOLERANCE).any():
            raise ValueError("predict_proba returned a probability above 1 (outputs = "
                             "'independent' means one probability in [0, 1] per class)")
        return np.minimum(p, 1.0)
    worst = float(np.abs(p.sum(axis=1) - 1.0).max()) if n else 0.0
    if worst > SUM_TOLERANCE:
        raise ValueError(f"predict_proba rows do not sum to 1 (worst off by {worst:.3g}); "
                         "return softmax probabilities")
    return p / p.sum(axis=1, keepdims=True)


def check_rater_probabilities(probs: Any, n: int, r: int, k: int) -> np.ndarray:
    """Validate ``predict_rater_proba``'s output [n, r, K]; raise ValueError saying what is wrong.

    The checks of :func:`check_probabilities` for distributions: numeric, the
    shape, finite, non-negative, every (clip, rater) row summing to 1.
    """
    try:
        p = np.asarray(probs, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"predict_rater_proba returned something that is not numeric: "
                         f"{exc}") from exc
    if p.shape != (n, r, k):
        raise ValueError(f"predict_rater_proba returned shape {p.shape}, expected ({n}, {r}, {k})"
                         " (clips, raters, classes)")
    if not np.isfinite(p).all():
        bad = int((~np.isfinite(p)).any(axis=2).sum())
        raise ValueError(f"predict_rater_proba returned NaN or inf in {bad} (clip, rater) rows")
    if (p < 0).any():
        raise ValueError("predict_rater_proba returned negative probabilities")
    worst = float(np.abs(p.sum(axis=2) - 1.0).max()) if p.size else 0.0
    if worst > SUM_TOLERANCE:
        raise ValueError(f"predict_rater_proba rows do not sum to 1 (worst off by {worst:.3g}); "
                         "return one softmax distribution per (clip, rater)")
    return p / p.sum(axis=2, keepdims=True) if p.size else p
