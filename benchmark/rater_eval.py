"""Rater-level evaluation of a task's test folds: which votes count, and their scores.

The metrics are the pure functions of :mod:`serbench.rater_metrics`
(docs/methods.md#rater-eval); this module decides what they are computed on:

* the **counted votes** of a fold: primary (single-choice) answers with a rater
  id on the fold's AR test clips, in the task's class set (an out-of-set answer
  cannot be scored against K classes, but it still counts as one of the clip's
  raters for the minority views);
* with the task option ``raters: {test_disjoint: true}``, only the votes of
  raters who gave no rating on the fold's training or development clips: both
  splits' ratings reach ``fit`` (``Data.ratings``), so a rater seen in either
  is not new to the model;
* each test rule's set (MR, PR, AR) scores the counted votes of its own clips.

Every rater-level value is ``None`` with a reason (never 0) where it is not
defined: a task whose ratings have no rater ids (vote counts only), a task that
asks the secondary (multi-choice) question, a test set without counted votes
(e.g. no rater-disjoint rater), no rater with ``raters.min_votes`` votes, no
minority view.  :func:`coverage` says how many votes and raters the metrics
covered; the runner writes it into every run record.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import bootstrap as bs
from . import rater_metrics as R
from .metrics import normalise
from .ratings import PRIMARY
from .tasks.task import Task

#: The rater-level metrics, in the order the leaderboard shows them; all higher-is-better
#: except ``rater_uar_sd``, the spread of per-rater UAR over raters (not a ranking score).
RATER_METRICS = ("vote_ll", "vote_accuracy", "rater_uar", "rater_uar_sd", "minority_recall")
#: Metrics with a bootstrap interval (additive per clip); per-rater UAR has none.
BOOTSTRAPPED = ("vote_ll", "vote_accuracy", "minority_recall")
NO_RATER_IDS = ("the task's ratings have no rater ids (vote counts only), and rater-level "
                "metrics need who gave each vote")


@dataclass(frozen=True)
class FoldVotes:
    """The counted votes on one fold's AR test clips (``reason`` says why there are none)."""

    fold: int
    ids: np.ndarray       # the fold's AR test clips (the prediction rows)
    clip: np.ndarray      # [V] index into ids
    rater: np.ndarray     # [V] rater id
    vote: np.ndarray      # [V] class index
    counts: np.ndarray    # [N, K] counted in-set votes per clip
    n_voters: np.ndarray  # [N] counted raters per clip (out-of-set answers included)
    excluded: dict[str, np.ndarray]  # per clip: answers left out, by why
    disjoint: bool
    reason: str = ""

    def restrict(self, ids: np.ndarray) -> FoldVotes:
        """The votes of the clips ``ids`` (a test rule's subset of the AR test clips)."""
        pos = {u: i for i, u in enumerate(self.ids)}
        rows = np.array([pos[u] for u in ids], dtype=np.int64)
        new = np.full(len(self.ids), -1, dtype=np.int64)
        new[rows] = np.arange(len(rows))
        keep = new[self.clip] >= 0
        reason = self.reason or ("" if keep.any() else
                                 f"fold {self.fold}: no counted vote on this test set")
        return FoldVotes(self.fold, np.asarray(ids), new[self.clip][keep], self.rater[keep],
                         self.vote[keep], self.counts[rows], self.n_voters[rows],
                         {k: v[rows] for k, v in self.excluded.items()}, self.disjoint, reason)

    def coverage(self, min_votes: int) -> dict[str, Any]:
        """What the rater-level metrics of this test set covered (JSON-ready)."""
        if self.reason and not len(self.vote):
            out: dict[str, Any] = {"votes": 0, "raters": 0, "why": self.reason}
            if self.excluded:
                out["excluded"] = {k: int(v.sum()) for k, v in self.excluded.items()}
            return out
        per_rater: np.ndarray = (np.unique(self.rater, return_counts=True)[1] if len(self.rater)
                                 else np.zeros(0, dtype=np.int64))
        return {"clips": len(self.ids),
                "clips_with_votes": int((np.bincount(self.clip, minlength=len(self.ids)) > 0)
                                        .sum()),
                "votes": len(self.vote), "raters": len(per_rater),
                "raters_uar": int((per_rater >= min_votes).sum()),
                "min_votes": min_votes, "test_disjoint": self.disjoint,
                "excluded": {k: int(v.sum()) for k, v in self.excluded.items()}}


_CACHE: weakref.WeakKeyDictionary[Task, dict[int, FoldVotes]] = weakref.WeakKeyDictionary()


def min_votes(task: Task) -> int:
    """The task's per-rater UAR threshold (``raters.min_votes``)."""
    return int(getattr(task.spec, "rater_min_votes", R.MIN_VOTES))


def test_disjoint(task: Task) -> bool:
    """Whether the task counts only rater-disjoint test votes (``raters.test_disjoint``)."""
    return bool(getattr(task.spec, "rater_test_disjoint", False))


def task_reason(task: Task) -> str:
    """Why the task has no rater-level metrics at all ("" when it has them)."""
    question = getattr(task.spec, "question", PRIMARY)
    if question != PRIMARY:
        return (f"task {task.spec.name} asks the {question} (multi-choice) question; "
                "rater-level metrics score single-choice (primary) answers")
    ratings = getattr(task, "ratings", None)
    if ratings is None:  # a duck-typed task built from vote counts (benchmarks/bench_scoring.py)
        return f"task {task.spec.name} has no ratings table, only vote counts"
    rows = ratings[ratings["question"] == PRIMARY]
    if rows["rater_id"].isna().all():
        return f"task {task.spec.name}: {NO_RATER_IDS}"
    return ""


def _seen_raters(task: Task, fold: int) -> set[str]:
    """Raters with any rating on the fold's training or development clips."""
    col = task.manifest.set_index("utterance_id")[f"fold_{fold}"]
    seen_clips = set(col.index[col.isin(["train", "dev"])].astype(str))
    r = task.ratings
    part = r[r["utterance_id"].astype(str).isin(seen_clips) & r["rater_id"].notna()]
    return set(part["rater_id"].astype(str))


def fold_votes(task: Task, fold: int) -> FoldVotes:
    """The counted votes on fold ``fold``'s AR test clips (cached per task object)."""
    cache = _CACHE.setdefault(task, {})
    if fold in cache:
        return cache[fold]
    spec = task.spec
    ids = task.split(fold, "test", "AR").ids
    k = spec.k
    disjoint = test_disjoint(task)
    reason = task_reason(task)
    empty = np.zeros(0, dtype=np.int64)
    if reason:
        out = FoldVotes(fold, ids, empty, np.zeros(0, dtype=object), empty,
                        np.zeros((len(ids), k), dtype=np.int64), np.zeros(len(ids), np.int64),
                        {}, disjoint, reason)
        cache[fold] = out
        return out
    r = task.ratings
    part = r[(r["question"] == PRIMARY) & r["utterance_id"].astype(str).isin(set(ids))]
    pos = {u: i for i, u in enumerate(ids)}

    def per_clip(mask: np.ndarray, rows: Any) -> np.ndarray:
        where = rows["utterance_id"].astype(str).map(pos).to_numpy(dtype=np.int64)
        return np.bincount(where[mask], minlength=len(ids)).astype(np.int64)

    anonymous = part["rater_id"].isna().to_numpy()
    excluded = {"without_rater_id": per_clip(anonymous, part)}
    part = part[~anonymous]
    if disjoint:
        seen = part["rater_id"].astype(str).isin(_seen_raters(task, fold)).to_numpy()
        excluded["seen_raters"] = per_clip(seen, part)
        part = part[~seen]
    clip_all = part["utterance_id"].astype(str).map(pos).to_numpy(dtype=np.int64)
    cls = {c: j for j, c in enumerate(spec.classes)}
    label = part["mapped_class"].astype(str).map(cls)
    in_set = label.notna().to_numpy()
    excluded["out_of_set"] = per_clip(~in_set, part)
    clip = clip_all[in_set]
    vote = label[in_set].to_numpy(dtype=np.int64)
    counts = np.bincount(clip * k + vote, minlength=len(ids) * k).reshape(len(ids), k)
    n_voters = np.bincount(clip_all, minlength=len(ids))
    rater = part["rater_id"].astype(str).to_numpy(dtype=object)[in_set]
    if not len(vote):
        reason = (f"fold {fold}: no test rater is disjoint from the raters of the training and "
                  "development clips (raters.test_disjoint is on)" if disjoint
                  else f"fold {fold}: no primary vote with a rater id on the test clips")
    out = FoldVotes(fold, ids, clip, rater, vote, counts.astype(np.int64),
                    n_voters.astype(np.int64), excluded, disjoint, reason)
    cache[fold] = out
    return out


def rater_pairs(task: Task, fold: int) -> tuple[np.ndarray, np.ndarray]:
    """(clip id, rater id) of every in-set primary vote with a rater id on the fold's AR test
    clips, whatever ``test_disjoint`` says: what ``predict_rater_proba`` is asked for.

    Sorted by clip then rater; empty on a task without rater-level metrics.
    """
    if task_reason(task):
        return np.zeros(0, dtype=object), np.zeros(0, dtype=object)
    ids = task.split(fold, "test", "AR").ids
    r = task.ratings
    part = r[(r["question"] == PRIMARY) & r["utterance_id"].astype(str).isin(set(ids))
             & r["rater_id"].notna() & r["mapped_class"].isin(list(task.spec.classes))]
    pairs = sorted(set(zip(part["utterance_id"].astype(str), part["rater_id"].astype(str),
                           strict=True)))
    return (np.array([p[0] for p in pairs], dtype=object),
            np.array([p[1] for p in pairs], dtype=object))


@dataclass(frozen=True)
class RaterProbs:
    """A submission's distribution per (test clip, rater) pair (``predict_rater_proba``)."""

    ids: np.ndarray     # [P] clip ids
    raters: np.ndarray  # [P] rater ids
    probs: np.ndarray   # [P, K]

    def for_votes(self, clips: np.ndarray, raters: np.ndarray) -> np.ndarray:
        """Rows [V, K] for the votes (clip id, rater id); every vote must have its pair."""
        index = {(str(u), str(r)): i for i, (u, r) in enumerate(zip(self.ids, self.raters,
                                                                    strict=True))}
        try:
            rows = [index[(str(u), str(r))] for u, r in zip(clips, raters, strict=True)]
        except KeyError as exc:
            raise ValueError(f"no rater prediction for (clip, rater) {exc.args[0]}") from None
        return self.probs[np.asarray(rows, dtype=np.int64)] if rows else \
            np.zeros((0, self.probs.shape[1]))


Scored = tuple[dict[str, float | None], dict[str, np.ndarray], dict[str, str]]


def score_votes(fv: FoldVotes, clip_probs: Sequence[np.ndarray],
                rater_probs: Sequence[RaterProbs | None], *, independent: Sequence[bool],
                labels: np.ndarray | None, n_resamples: int, seed: int | tuple[int, ...],
                min_votes: int, stratify: bool = True) -> list[Scored]:
    """Rater-level point values, bootstrap samples and n/a reasons for several predictions.

    ``fv`` holds one test set's votes (:meth:`FoldVotes.restrict`); ``clip_probs``
    the predictions of its clips, in ``fv.ids`` order.  The clip resamples are
    those of :func:`serbench.scoring.score_test_sets` for the same ``seed`` and
    strata, so every prediction of a test set is resampled alike (paired).
    """
    out: list[Scored] = []
    names = RATER_METRICS
    if fv.reason and not len(fv.vote):
        return [({m: None for m in names}, {}, {m: fv.reason for m in names})
                for _ in clip_probs]
    n = len(fv.ids)
    stats = []
    for p, rp, ind in zip(clip_probs, rater_probs, independent, strict=True):
        q = (rp.for_votes(fv.ids[fv.clip], fv.rater) if rp is not None
             else normalise(np.asarray(p))[fv.clip])
        point: dict[str, float | None] = {"vote_ll": R.vote_log_likelihood(q, fv.vote),
                                          "vote_accuracy": R.vote_accuracy(q, fv.vote)}
        uar = R.per_rater_uar(q, fv.vote, fv.rater, min_votes=min_votes)
        point["rater_uar"], point["rater_uar_sd"] = uar.mean, uar.sd
        point["minority_recall"] = R.minority_view_recall(fv.counts, fv.n_voters, p,
                                                          independent=ind)
        notes: dict[str, str] = {}
        if uar.mean is None:
            notes["rater_uar"] = notes["rater_uar_sd"] = (
                f"no test rater has {min_votes} counted votes (raters.min_votes)")
        elif uar.sd is None:
            notes["rater_uar_sd"] = "one rater has enough votes: no spread"
        if point["minority_recall"] is None:
            notes["minority_recall"] = "no minority view on this test set"
        stats.append(np.hstack([R.vote_stats(q, fv.vote, fv.clip, n),
                                R.minority_stats(fv.counts, fv.n_voters, p, independent=ind)]))
        out.append((point, {}, notes))
    if n_resamples and n:
        stacked = np.hstack(stats).astype(np.float32)
        strata = labels if (stratify and labels is not None
                            and (np.asarray(labels) >= 0).all()) else None
        sums = np.vstack([bs.chunk_sums(w, stacked)
                          for w in bs.resample_weights(n, n_resamples, seed, strata)])
        for j, (point, samples, _) in enumerate(out):
            s = sums[:, 5 * j:5 * j + 5]
            for m, (num, den) in (("vote_ll", (0, 2)), ("vote_accuracy", (1, 2)),
                                  ("minority_recall", (3, 4))):
                if point[m] is not None:
                    samples[m] = R.ratio(s, num, den)
    return out


# ----------------------------------------------------------------------------- reference rows

#: Reference rows of the rater-level table: the training prior and a held-out rater.
REFERENCE_ROWS = ("prior", "human")
_NOT_A_CLIP_PREDICTION = ("a held-out vote's neighbours predict one rater, not the clip: the "
                          "minority views are a clip-level question")


def reference_fold(task: Task, fold: int, rule: str) -> dict[str, dict[str, float | None]]:
    """Point values of the two reference rows on one fold's test set (None: undefined)."""
    fv = fold_votes(task, fold).restrict(task.split(fold, "test", rule).ids)
    k = task.spec.k
    out: dict[str, dict[str, float | None]] = {}
    train = task.split(fold, "train", "AR").targets
    prior = train.mean(axis=0) if len(train) else np.full(k, 1.0 / k)
    prior = prior / prior.sum()
    q = np.tile(prior, (len(fv.vote), 1))
    uar = R.per_rater_uar(q, fv.vote, fv.rater, min_votes=min_votes(task))
    out["prior"] = {"vote_ll": R.vote_log_likelihood(q, fv.vote),
                    "vote_accuracy": R.vote_accuracy(q, fv.vote),
                    "rater_uar": uar.mean, "rater_uar_sd": uar.sd,
                    "minority_recall": R.minority_view_recall(
                        fv.counts, fv.n_voters, np.tile(prior, (len(fv.ids), 1)))}
    # held out: each counted vote predicted by the clip's other counted votes, smoothed as the
    # task's targets are (so that a class nobody else chose keeps a finite log-likelihood)
    rest = fv.counts[fv.clip].astype(np.float64)
    rest[np.arange(len(fv.vote)), fv.vote] -= 1
    has = rest.sum(axis=1) > 0
    eps = float(getattr(task.spec, "smoothing", 0.0))
    dist = rest[has] / rest[has].sum(axis=1, keepdims=True)
    hq = (1 - eps) * dist + eps / k
    hu = R.per_rater_uar(hq, fv.vote[has], fv.rater[has], min_votes=min_votes(task))
    out["human"] = {"vote_ll": R.vote_log_likelihood(hq, fv.vote[has]),
                    "vote_accuracy": R.vote_accuracy(hq, fv.vote[has]),
                    "rater_uar": hu.mean, "rater_uar_sd": hu.sd, "minority_recall": None}
    return out


def reference_rows(task: Task, rule: str) -> dict[str, dict[str, tuple[float | None, str]]]:
    """Rater-level reference rows on ``rule``'s test sets: {row: {metric: (value, why)}}.

    ``prior``: the fold's AR training vote distribution for every rater and clip.
    ``human``: each counted vote predicted by the label-smoothed distribution of the
    clip's other counted votes (votes with no other counted vote are left out): what
    knowing the clip's other raters, and nothing about this rater, gives.  Means over
    folds; a value undefined on any fold is None with the reason.
    """
    reason = task_reason(task)
    out: dict[str, dict[str, tuple[float | None, str]]] = {}
    folds = [reference_fold(task, f, rule) if not reason else None
             for f in range(1, task.n_folds + 1)]
    for row in REFERENCE_ROWS:
        out[row] = {}
        for m in RATER_METRICS:
            if reason:
                out[row][m] = (None, reason)
                continue
            vals = [f[row][m] for f in folds if f is not None]
            if any(v is None for v in vals):
                why = (_NOT_A_CLIP_PREDICTION if (row, m) == ("human", "minority_recall") else
                       "undefined on some fold (no counted vote, no rater with enough votes, "
                       "or no minority view)")
                out[row][m] = (None, why)
            else:
                out[row][m] = (float(np.mean([float(v) for v in vals if v is not None])), "")
    return out


__all__ = ["BOOTSTRAPPED", "RATER_METRICS", "REFERENCE_ROWS", "FoldVotes", "RaterProbs",
           "fold_votes", "min_votes", "rater_pairs", "reference_fold", "reference_rows",
           "score_votes", "task_reason", "test_disjoint"]
