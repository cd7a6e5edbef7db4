"""Rater-level metrics: how well a model predicts individual raters, not only their consensus.

Why: serbench's clip-level metrics compare a prediction with an aggregate of the
votes (a consensus class, the 1/K bits, the vote distribution).  A rater-aware
model (rater fusion, crowd layers) claims more: that it predicts what *each*
rater answers.  No peer toolkit scores that (docs/methods.md#rater-eval), so
these functions do, from the individual primary (single-choice) answers of the
test clips.  They are pure numpy functions of arrays; the task-aware part
(which votes count, rater-disjoint test raters, coverage) is
:mod:`serbench.rater_eval`.

Notation: ``V`` counted votes, vote ``v`` = (clip ``i_v``, rater ``r_v``, class
``y_v``); ``q_v`` [K] is the distribution the model gives rater ``r_v`` on clip
``i_v`` (a submission's ``predict_rater_proba``, or its one clip distribution
``p_{i_v}`` for every rater when it has none).

* **vote_ll** = ``(1/V) sum_v log max(q_v[y_v], 1e-8)``: mean log-likelihood in
  nats per vote (higher is better; the clamp is the ``nll`` metric's, so with
  ``q_v = p_{i_v}`` on the AR test set ``vote_ll = -nll`` weighted by votes).
  The proper scoring rule of individual answers (log score, Good 1952).
* **vote_accuracy** = share of votes with ``argmax q_v = y_v`` (ties go to the
  lowest class index, numpy's ``argmax``).
* **rater_uar**: per rater with at least ``min_votes`` counted votes, the UAR
  (mean recall over the classes present in that rater's votes, scikit-learn
  ``balanced_accuracy_score``) of ``argmax q_v`` against the rater's votes; then
  the mean over those raters, with the spread (sd, ``ddof=1``) reported beside.
  Each rater weighs the same, however many clips they rated.
* **minority_recall** (minority-view recall): over the (clip, class) pairs where
  the class got at least one counted vote but fewer than half of the clip's
  counted raters chose it (``1 <= c_ik`` and ``2 c_ik < n_i``, ``n_i`` = the
  clip's counted primary answers, out-of-set ones included), the share whose
  class the model's clip prediction includes under the project's 1/K rule
  (:func:`serbench.metrics.predicted_bits`: ``p_ik > 1/K``).  A consensus
  target (MR, PR, the 1/K bits of AR) never holds these classes; the metric asks
  whether a model keeps the views a minority of raters heard.  It is a recall:
  read it beside the multi-label precision / F1, which a model that switches
  on every bit would lose.

Every function returns ``None`` (never 0) when its metric is undefined (no vote,
no rater with ``min_votes`` votes, no minority pair); the caller says why.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .metrics import KL_EPSILON, normalise, predicted_bits

#: Per-rater UAR needs this many counted votes of a rater by default (task option
#: ``raters.min_votes``): a UAR on fewer answers over K classes is mostly noise.
MIN_VOTES = 10


def _votes(vote_probs: np.ndarray, votes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    q = np.asarray(vote_probs, dtype=np.float64)
    y = np.asarray(votes, dtype=np.int64)
    if q.ndim != 2 or y.shape != (q.shape[0],):
        raise ValueError(f"vote_probs must be [V, K] and votes [V]; got {q.shape} and {y.shape}")
    if len(y) and (y.min() < 0 or y.max() >= q.shape[1]):
        raise ValueError(f"votes must be class indices in 0..{q.shape[1] - 1}")
    return q, y


def vote_log_likelihoods(vote_probs: np.ndarray, votes: np.ndarray) -> np.ndarray:
    """``log max(q_v[y_v], 1e-8)`` per vote [V]."""
    q, y = _votes(vote_probs, votes)
    return np.log(np.maximum(q[np.arange(len(y)), y], KL_EPSILON))


def vote_log_likelihood(vote_probs: np.ndarray, votes: np.ndarray) -> float | None:
    """Mean log-likelihood of the votes, nats per vote (None without votes).

    Worked by hand: two votes for class 0 predicted with 0.5 and 0.25, one vote
    for class 1 predicted with 0.5: (ln 0.5 + ln 0.25 + ln 0.5) / 3 = ln(1/16) / 3.

    >>> import numpy as np
    >>> q = np.array([[.5, .5], [.25, .75], [.5, .5]])
    >>> round(vote_log_likelihood(q, np.array([0, 0, 1])), 6)
    -0.924196
    """
    ll = vote_log_likelihoods(vote_probs, votes)
    return float(ll.mean()) if len(ll) else None


def vote_accuracy(vote_probs: np.ndarray, votes: np.ndarray) -> float | None:
    """Share of votes whose class is the argmax of the rater's predicted distribution."""
    q, y = _votes(vote_probs, votes)
    return float((q.argmax(axis=1) == y).mean()) if len(y) else None


@dataclass(frozen=True)
class RaterUAR:
    """Per-rater UAR: the mean and spread over the raters with enough votes."""

    mean: float | None
    sd: float | None  # None with fewer than two raters
    n_raters: int     # raters with at least min_votes votes
    per_rater: dict[str, float]


def per_rater_uar(vote_probs: np.ndarray, votes: np.ndarray, raters: np.ndarray, *,
                  min_votes: int = MIN_VOTES) -> RaterUAR:
    """UAR of ``argmax q_v`` against each rater's own votes, for raters with ``min_votes``.

    A rater's UAR averages recall over the classes present in that rater's votes
    (as scikit-learn's ``balanced_accuracy_score``, whose per-rater value this
    equals).
    """
    q, y = _votes(vote_probs, votes)
    r = np.asarray(raters).astype(str)
    if r.shape != y.shape:
        raise ValueError(f"raters must be [V]; got {r.shape} for {len(y)} votes")
    if min_votes < 1:
        raise ValueError("min_votes must be at least 1")
    k = q.shape[1]
    names, idx = np.unique(r, return_inverse=True)
    hit = (q.argmax(axis=1) == y).astype(np.float64) if len(y) else np.zeros(0)
    support = np.bincount(idx * k + y, minlength=len(names) * k).reshape(-1, k)
    correct = np.bincount(idx * k + y, weights=hit,
                          minlength=len(names) * k).reshape(-1, k).astype(np.float64)
    enough = support.sum(axis=1) >= min_votes
    present = support > 0
    recall = np.divide(correct, support, out=np.zeros_like(correct), where=present)
    uar = (recall * present).sum(axis=1) / np.maximum(present.sum(axis=1), 1)
    kept = uar[enough]
    per = {str(n): float(u) for n, u, e in zip(names, uar, enough, strict=True) if e}
    return RaterUAR(float(kept.mean()) if len(kept) else None,
                    float(kept.std(ddof=1)) if len(kept) > 1 else None, int(enough.sum()), per)


def minority_views(counts: np.ndarray, n_voters: np.ndarray) -> np.ndarray:
    """[N, K] bool: class ``k`` got at least one vote on clip ``i`` but from under half its raters.

    ``counts`` [N, K] are the clip's in-set votes per class; ``n_voters`` [N]
    the clip's raters who answered (out-of-set answers included, so a class
    chosen by 2 of 5 raters is a minority view even when 2 others said "other").
    """
    c = np.asarray(counts, dtype=np.int64)
    n = np.asarray(n_voters, dtype=np.int64)
    if c.ndim != 2 or n.shape != (c.shape[0],):
        raise ValueError(f"counts must be [N, K] and n_voters [N]; got {c.shape} and {n.shape}")
    if (c.sum(axis=1) > n).any():
        raise ValueError("a clip has more in-set votes than raters")
    return (c >= 1) & (2 * c < n[:, None])


def minority_stats(counts: np.ndarray, n_voters: np.ndarray, probs: np.ndarray, *,
                   independent: bool = False) -> np.ndarray:
    """Per clip [N, 2]: minority views the prediction includes, minority views.

    Additive over clips, so the bootstrap sums them with its resample weights
    (:mod:`serbench.bootstrap`).  ``probs`` [N, K] are the clip predictions:
    distributions (normalised here, as the multi-label metrics do) or, with
    ``independent``, per-class probabilities used as they are.
    """
    p = np.asarray(probs, dtype=np.float64)
    minority = minority_views(counts, n_voters)
    if p.shape != minority.shape:
        raise ValueError(f"probs must be {minority.shape}, got {p.shape}")
    bits = predicted_bits(p if independent else normalise(p)) > 0
    return np.stack([(minority & bits).sum(axis=1), minority.sum(axis=1)], axis=1
                    ).astype(np.float64)


def minority_view_recall(counts: np.ndarray, n_voters: np.ndarray, probs: np.ndarray, *,
                         independent: bool = False) -> float | None:
    """Share of minority views (see :func:`minority_views`) inside the 1/K prediction.

    Worked by hand, K = 3 (1/K = 0.333): clip 1 has 5 raters, votes (3, 2, 0):
    class 1 (2 of 5) is a minority view, and 0.4 > 1/3 includes it; clip 2 has
    4 raters, votes (2, 1, 1): classes 1 and 2 (1 of 4 each) are minority
    views, class 2 is predicted at 0.35 (in), class 1 at 0.1 (out); class 0
    (2 of 4, exactly half) is not a minority view.  Recall = 2 / 3.

    >>> import numpy as np
    >>> counts = np.array([[3, 2, 0], [2, 1, 1]])
    >>> probs = np.array([[.6, .4, .0], [.55, .1, .35]])
    >>> round(minority_view_recall(counts, np.array([5, 4]), probs), 4)
    0.6667
    """
    s = minority_stats(counts, n_voters, probs, independent=independent).sum(axis=0)
    return float(s[0] / s[1]) if s[1] > 0 else None


def vote_stats(vote_probs: np.ndarray, votes: np.ndarray, clips: np.ndarray, n_clips: int
               ) -> np.ndarray:
    """Per clip [N, 3]: summed vote log-likelihood, votes whose argmax is right, votes.

    Additive over clips, so a clip bootstrap sums them with its resample weights
    and ``vote_ll`` = col 0 / col 2, ``vote_accuracy`` = col 1 / col 2.
    """
    q, y = _votes(vote_probs, votes)
    c = np.asarray(clips, dtype=np.int64)
    if c.shape != y.shape:
        raise ValueError(f"clips must be [V]; got {c.shape} for {len(y)} votes")
    ll = vote_log_likelihoods(q, y)
    hit = (q.argmax(axis=1) == y).astype(np.float64) if len(y) else np.zeros(0)
    return np.stack([np.bincount(c, weights=ll, minlength=n_clips),
                     np.bincount(c, weights=hit, minlength=n_clips),
                     np.bincount(c, minlength=n_clips).astype(np.float64)], axis=1)


def ratio(sums: np.ndarray, num: int, den: int) -> np.ndarray:
    """``sums[..., num] / sums[..., den]``, NaN where the denominator is 0 (a resample
    that drew no vote: it has no value, which is not a score of 0)."""
    s = np.asarray(sums, dtype=np.float64)
    d = s[..., den]
    return np.divide(s[..., num], d, out=np.full(d.shape, np.nan), where=d > 0)


__all__ = ["MIN_VOTES", "RaterUAR", "minority_stats", "minority_view_recall", "minority_views",
           "per_rater_uar", "ratio", "vote_accuracy", "vote_log_likelihood",
           "vote_log_likelihoods", "vote_stats"]
