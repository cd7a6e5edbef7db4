"""Inter-rater agreement from vote counts: Fleiss' kappa and Krippendorff's alpha (nominal).

Both need only the per-clip vote counts ``n[i, k]`` (raters of clip i who chose
class k), so they work on counts-only sources too.  Clips with fewer than two
votes carry no pairable information and are left out (as both statistics
prescribe).  Raters may differ in number per clip:

* **Fleiss' kappa** with per-clip agreement ``P_i = (sum_k n_ik^2 - n_i) /
  (n_i (n_i - 1))``, ``P_bar`` their mean, chance ``P_e = sum_k p_k^2`` with
  ``p_k`` the share of all votes in class k (Fleiss 1971; with a constant
  number of raters this is his formula exactly);
* **Krippendorff's alpha** for nominal data, from the coincidence matrix
  ``o_ck = sum_i n_ic (n_ik - [c = k]) / (n_i - 1)``:
  ``alpha = 1 - (n - 1) sum_{c != k} o_ck / sum_{c != k} n_c n_k`` with
  ``n_c = sum_k o_ck`` and ``n = sum_c n_c`` (Krippendorff 2011).
"""

from __future__ import annotations

import numpy as np


def _pairable(counts: np.ndarray) -> np.ndarray:
    n = np.asarray(counts, dtype=np.float64)
    if n.ndim != 2 or (n < 0).any():
        raise ValueError("counts must be a non-negative [clips, classes] matrix")
    return n[n.sum(axis=1) >= 2]


def fleiss_kappa(counts: np.ndarray) -> float:
    n = _pairable(counts)
    if len(n) == 0:
        return float("nan")
    m = n.sum(axis=1)
    p_i = ((n ** 2).sum(axis=1) - m) / (m * (m - 1))
    p_k = n.sum(axis=0) / m.sum()
    p_e = float((p_k ** 2).sum())
    return float((p_i.mean() - p_e) / (1 - p_e)) if p_e < 1 else float("nan")


def krippendorff_alpha(counts: np.ndarray) -> float:
    n = _pairable(counts)
    if len(n) == 0:
        return float("nan")
    m = n.sum(axis=1)
    o = (n[:, :, None] * n[:, None, :]) / (m - 1)[:, None, None]
    o = o.sum(axis=0) - np.diag((n / (m - 1)[:, None]).sum(axis=0))
    n_c = o.sum(axis=1)
    total = n_c.sum()
    off = ~np.eye(len(n_c), dtype=bool)
    expected = (np.outer(n_c, n_c)[off]).sum()
    if expected == 0:
        return float("nan")
    return float(1 - (total - 1) * o[off].sum() / expected)


def summary(counts: np.ndarray) -> dict[str, float]:
    """Clips, votes and both statistics over the pairable clips."""
    n = _pairable(counts)
    return {"clips": len(n), "votes": int(n.sum()),
            "raters_per_clip": float(n.sum(axis=1).mean()) if len(n) else 0.0,
            "fleiss_kappa": fleiss_kappa(counts),
            "krippendorff_alpha": krippendorff_alpha(counts)}
