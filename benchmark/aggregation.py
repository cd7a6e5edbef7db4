"""Model-based aggregation rules: Dawid–Skene (``DS``) and one-coin Dawid–Skene (``DS1``).

MR, PR and AR (:mod:`serbench.rules`) read each clip's votes alone.  Dawid and Skene
(1979, "Maximum likelihood estimation of observer error-rates using the EM algorithm",
Applied Statistics 28(1)) fit one model to every vote of the corpus: a prior over the
K true classes and, per worker, a confusion matrix P(answer | true class); a clip's
target is then its posterior over the true class.  A rater who often says *sad* for
what the others hear as *neutral* is discounted where he says *sad*; a vote for a
class that raters rarely confuse counts for more.  The one-coin variant gives each
worker one accuracy ``s_w`` and spreads ``1 - s_w`` evenly over the other classes
(Zhang, Chen, Zhou and Jordan 2016, "Spectral methods meet EM", JMLR 17).

**Reference implementation.**  The updates are crowd-kit's (Toloka; ``crowdkit.
aggregation.DawidSkene`` and ``OneCoinDawidSkene``, version 1.4): majority-vote shares
as the initial posteriors, priors = mean posterior, confusion counts clipped below at
1e-10 before normalising, the one-coin matrix clipped to [1e-10, 1 - 1e-10], classes
nobody chose left out of the model (posterior 0).  ``tests/test_ds_rules.py`` checks
that this module's posteriors equal crowd-kit's on fixtures, with and without rater
ids, for the same number of EM iterations.  serbench runs the updates itself, vectorised
with sparse sums, for two measured reasons: crowd-kit stops when its per-vote objective
fails to rise by ``tol``, but that objective adds the log prior once per *vote* instead
of once per clip, so it falls under EM and the loop stops after two iterations on
CREMA-D (with the defaults ``n_iter=100, tol=1e-5``); and its pandas updates take
25-45 ms per iteration on CREMA-D's 68,568 votes, where the fit needs 100-300
iterations and is redone whenever the task is built.

**Fixed procedure** (so a task stays frozen): votes in canonical order (clip, worker,
class); start from majority-vote shares; alternate E and M steps until no posterior
moves by more than :data:`TOL` between two E-steps, at most :data:`MAX_ITER` E-steps;
the fit states its iterations, whether it converged and its marginal log-likelihood.

**Workers.**  Where every in-set vote carries a rater id, each rater has his own
confusion matrix (``workers = "raters"``).  Where the source has counts only (CREMA-D's
``tabulatedVotes.csv``, released-label files) or some votes lack an id, every vote
comes from one pseudo-worker: *pooled* DS, one shared confusion matrix
(``workers = "pooled"``).  A task can fix the mode with ``aggregation: {workers:
pooled}`` (or ``raters``) in its task.yaml, so that its targets do not depend on
whether a lab's copy of the corpus carries rater ids; the default is ``auto``.
The mode is recorded in ``Task.summary()``.

See docs/methods.md#a.1 for the rules this extends.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import sparse

from .errors import InputError
from .rules import RuleResult
from .vocab import MODEL_RULES

WorkerMode = Literal["raters", "pooled"]
#: crowd-kit's floor for confusion entries and priors.
EPS = 1e-10
#: EM stops when no posterior changes by more than this between two E-steps ...
TOL = 1e-7
#: ... or after this many E-steps.
MAX_ITER = 1000
#: The pseudo-worker of pooled DS.
POOLED = "(pooled)"


def settings() -> dict[str, Any]:
    """The fixed settings of the model rules, hashed into a task's configuration."""
    return {"method": "dawid-skene EM (crowd-kit 1.4 updates)", "init": "majority-vote shares",
            "tol": TOL, "max_iter": MAX_ITER, "eps": EPS}


@dataclass(frozen=True)
class Votes:
    """Every in-set vote of a task as (clip, worker, class) indices, in canonical order.

    ``clip`` indexes the task's sorted clip ids (``VoteCounts.ids``), ``worker``
    indexes ``workers`` and ``label`` the task's classes.
    """

    clip: np.ndarray
    worker: np.ndarray
    label: np.ndarray
    n_clips: int
    workers: tuple[str, ...]
    mode: WorkerMode

    def __len__(self) -> int:
        return len(self.clip)


def _ordered(clip: np.ndarray, worker: np.ndarray, label: np.ndarray) -> np.ndarray:
    return np.lexsort((label, worker, clip))


def pooled_votes(counts: np.ndarray) -> Votes:
    """One pseudo-worker casting every vote of the counts [N, K]."""
    counts = np.asarray(counts)
    if counts.ndim != 2 or (counts < 0).any():
        raise ValueError(f"vote counts must be non-negative [N, K], got shape {counts.shape}")
    n, k = counts.shape
    cell = np.repeat(np.arange(n * k), counts.ravel().astype(np.int64))
    clip, label = cell // k, cell % k
    return Votes(clip, np.zeros(len(cell), dtype=np.int64), label, n, (POOLED,), "pooled")


def rater_votes(ratings: pd.DataFrame, ids: np.ndarray, classes: tuple[str, ...],
                question: str) -> Votes | None:
    """Every in-set vote of ``question`` with its rater, or None when some vote has no rater id.

    A multi-choice answer gives one vote per ticked class (as in the vote counts).
    """
    part = ratings[(ratings["question"] == question) & ratings["mapped_class"].isin(classes)]
    if len(part) == 0 or part["rater_id"].isna().any():
        return None
    clip = np.searchsorted(ids, part["utterance_id"].astype(str).to_numpy())
    names, worker = np.unique(part["rater_id"].astype(str).to_numpy(), return_inverse=True)
    label = part["mapped_class"].astype(str).map({c: i for i, c in enumerate(classes)})
    label_arr = label.to_numpy(dtype=np.int64)
    order = _ordered(clip, worker, label_arr)
    return Votes(clip[order], worker[order].astype(np.int64), label_arr[order], len(ids),
                 tuple(str(x) for x in names), "raters")


def task_votes(ratings: pd.DataFrame, ids: np.ndarray, classes: tuple[str, ...],
               question: str, counts: np.ndarray) -> Votes:
    """Rater votes where every vote has a rater id, else pooled votes from the counts."""
    votes = rater_votes(ratings, ids, classes, question)
    if votes is None:
        return pooled_votes(counts)
    if np.bincount(votes.clip * len(classes) + votes.label,
                   minlength=counts.size).tolist() != np.asarray(counts).ravel().tolist():
        raise InputError("the rater votes do not add up to the task's vote counts",
                         file="ratings table", fix="rebuild the task: serbench prepare TASK")
    return votes


@dataclass(frozen=True)
class DSFit:
    """A fitted Dawid–Skene model.

    ``posterior`` [N, K]: each clip's posterior over the true class (all zero for a
    clip without a vote; 0 for a class nobody chose).  ``errors`` [W, K, K]:
    P(answer = row | true = column) per worker (rows of answers a worker never gave
    are 0).  ``log_likelihood`` is the marginal log-likelihood per vote under the
    parameters of the last E-step (it never falls from one E-step to the next).
    """

    rule: str
    posterior: np.ndarray
    priors: np.ndarray
    errors: np.ndarray
    workers: tuple[str, ...]
    mode: WorkerMode
    iterations: int
    converged: bool
    log_likelihood: float
    history: tuple[float, ...]

    def summary(self) -> dict[str, Any]:
        return {"method": "one-coin Dawid-Skene" if self.rule == "DS1" else "Dawid-Skene",
                "workers": self.mode, "n_workers": len(self.workers),
                "iterations": self.iterations, "converged": self.converged,
                "log_likelihood_per_vote": round(self.log_likelihood, 6)}


def _empty(rule: str, votes: Votes, k: int) -> DSFit:
    return DSFit(rule, np.zeros((votes.n_clips, k)), np.zeros(k),
                 np.zeros((len(votes.workers), k, k)), votes.workers, votes.mode, 0, True,
                 0.0, ())


def dawid_skene(votes: Votes, k: int, *, one_coin: bool = False, max_iter: int = MAX_ITER,
                tol: float = TOL) -> DSFit:
    """Fit (one-coin) Dawid–Skene to ``votes`` by EM; crowd-kit's updates (module docstring).

    ``tol=0`` runs exactly ``max_iter`` E-steps (crowd-kit with ``n_iter=max_iter`` and
    its early stop disabled gives the same posteriors).
    """
    rule = "DS1" if one_coin else "DS"
    if max_iter < 1:
        raise ValueError("max_iter must be >= 1")
    n_votes = len(votes)
    if n_votes == 0:
        return _empty(rule, votes, k)
    voted, t = np.unique(votes.clip, return_inverse=True)
    observed, y = np.unique(votes.label, return_inverse=True)
    w = votes.worker
    n_t, n_l, n_w = len(voted), len(observed), len(votes.workers)
    posterior = np.zeros((votes.n_clips, k))
    if n_l == 1:  # one class chosen by everyone: nothing to estimate
        posterior[voted, observed[0]] = 1.0
        errors = np.zeros((n_w, k, k))
        errors[:, observed[0], observed[0]] = 1.0
        prior = np.zeros(k)
        prior[observed[0]] = 1.0
        return DSFit(rule, posterior, prior, errors, votes.workers, votes.mode, 0, True, 0.0,
                     (0.0,))
    ones = np.ones(n_votes)
    by_clip = sparse.csr_matrix((ones, (t, np.arange(n_votes))), shape=(n_t, n_votes))
    pair = w * n_l + y
    by_pair = sparse.csr_matrix((ones, (pair, np.arange(n_votes))), shape=(n_w * n_l, n_votes))
    seen = np.bincount(pair, minlength=n_w * n_l) > 0
    onehot = np.zeros((n_votes, n_l))
    onehot[np.arange(n_votes), y] = 1.0
    per_worker = np.bincount(w, minlength=n_w).astype(float)

    def m_step(q: np.ndarray) -> np.ndarray:
        if one_coin:
            skill = np.divide(np.bincount(w, weights=q[t, y], minlength=n_w), per_worker,
                              out=np.zeros(n_w), where=per_worker > 0)
            e = np.repeat(((1.0 - skill) / (n_l - 1))[:, None, None], n_l, axis=1)
            e = np.repeat(e, n_l, axis=2)
            e[:, np.arange(n_l), np.arange(n_l)] = skill[:, None]
            e = np.clip(e, EPS, 1.0 - EPS)
            return np.where(seen.reshape(n_w, n_l)[:, :, None], e, 0.0)
        e = np.asarray(by_pair @ q[t])
        e = np.where(seen[:, None], np.maximum(e, EPS), 0.0).reshape(n_w, n_l, n_l)
        return e / e.sum(axis=1, keepdims=True)

    def e_step(prior: np.ndarray, e: np.ndarray) -> tuple[np.ndarray, float]:
        log_e = np.log(e, out=np.zeros_like(e), where=e > 0)
        ll = np.log(np.maximum(prior, EPS)) + np.asarray(by_clip @ log_e[w, y])
        top = ll.max(axis=1, keepdims=True)
        q = np.exp(ll - top)
        total = q.sum(axis=1, keepdims=True)
        return q / total, float((top + np.log(total)).sum())

    q = np.asarray(by_clip @ onehot)
    q /= q.sum(axis=1, keepdims=True)
    prior = q.mean(axis=0)
    errors = m_step(q)
    history: list[float] = []
    converged = False
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007 (the count is reported)
        new, loglik = e_step(prior, errors)
        history.append(loglik / n_votes)
        delta = float(np.abs(new - q).max())
        q = new
        prior = q.mean(axis=0)
        errors = m_step(q)
        if delta < tol:
            converged = True
            break
    posterior[voted[:, None], observed[None, :]] = q
    full_prior = np.zeros(k)
    full_prior[observed] = prior
    full_errors = np.zeros((n_w, k, k))
    full_errors[:, observed[:, None], observed[None, :]] = errors
    return DSFit(rule, posterior, full_prior, full_errors, votes.workers, votes.mode, it,
                 converged, history[-1], tuple(history))


def held_out_posteriors(fit: DSFit, votes: Votes) -> tuple[np.ndarray, np.ndarray]:
    """Each vote held out in turn: the posterior of its clip's remaining votes, under the fit.

    For the human reference row (serbench.reference): the target a model rule gives a
    clip from the votes of the *other* raters, with the task's fitted priors and
    confusion matrices (not refitted).  Votes of clips with a single vote have no
    remaining vote and are left out.  Returns (indices into ``votes``, targets [M, K]).
    """
    k = fit.posterior.shape[1]
    cols = np.flatnonzero(fit.errors.sum(axis=(0, 1)) > 0)  # classes in the model
    per_clip = np.bincount(votes.clip, minlength=votes.n_clips)
    sel = np.flatnonzero(per_clip[votes.clip] >= 2)
    out = np.zeros((len(sel), k))
    if len(sel) == 0 or len(cols) == 0:
        return sel, out
    e = fit.errors[:, :, cols]
    log_e = np.log(e, out=np.zeros_like(e), where=e > 0)[votes.worker, votes.label]  # [V, C]
    clip_ll = np.zeros((votes.n_clips, len(cols)))
    np.add.at(clip_ll, votes.clip, log_e)
    ll = np.log(np.maximum(fit.priors[cols], EPS)) + clip_ll[votes.clip[sel]] - log_e[sel]
    q = np.exp(ll - ll.max(axis=1, keepdims=True))
    out[:, cols] = q / q.sum(axis=1, keepdims=True)
    return sel, out


def consensus(posterior: np.ndarray) -> np.ndarray:
    """The class of highest posterior; an exact tie goes to the first class (as crowd-kit)."""
    return np.asarray(posterior).argmax(axis=1)


def model_rule(rule: str, counts: np.ndarray, votes: Votes | None = None) -> tuple[RuleResult,
                                                                                   DSFit]:
    """The clips a model rule keeps and their targets, with the fit behind them.

    Keeps every clip with at least one in-set vote (as AR); targets = the posterior over
    the K classes, labels = its argmax.  ``votes`` default to pooled votes from ``counts``.
    """
    if rule not in MODEL_RULES:
        raise ValueError(f"unknown model rule {rule!r}; expected one of {MODEL_RULES}")
    counts = np.asarray(counts)
    if votes is None:
        votes = pooled_votes(counts)
    fit = dawid_skene(votes, counts.shape[1], one_coin=rule == "DS1")
    keep = counts.sum(axis=1) > 0
    targets = fit.posterior[keep]
    return RuleResult(rule, keep, targets, consensus(targets)), fit


__all__ = ["EPS", "MAX_ITER", "MODEL_RULES", "POOLED", "TOL", "DSFit", "Votes", "consensus",
           "dawid_skene", "held_out_posteriors", "model_rule", "pooled_votes", "rater_votes",
           "settings", "task_votes"]
