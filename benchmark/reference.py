"""Reference rows computed from the ratings alone: prior, best constant and a typical rater.

They need no audio and no submission, so every prepared task has them, and
they tell a reader where chance and people sit on each metric:

* ``prior``: the training split's mean target (the class distribution), as
  the prediction for every test clip.  The training split of the same rule as
  the test rule (MR training clips for the MR test set, and so on).
* ``best_constant``: the input-independent prediction that scores best on the
  training split, then scored on the test set.  Searched over a candidate set
  that holds each metric family's optimum: every argmax class (single-label
  metrics), every set of 1/K bits a distribution can carry (at most K - 1
  classes above 1/K; exhaustive for K <= 12, else the m most frequent bits
  for each m), the training mean (the optimum of NLL, Brier, KL and the
  class-wise ECE), for top-label ECE one vector per class whose top value is
  that class's plurality rate, and a Nelder-Mead search over softmax logits
  started at the training mean (JS, cosine).  AUPRC gives every constant the
  same score (the prevalence of the bits).
* ``human``: a typical rater.  Each in-set vote of a test clip is held out
  and scored as a prediction against the target that the same rule builds
  from the clip's remaining votes (out-of-set votes stay in the MR
  denominator).  A held-out vote whose remaining votes give no target (a
  tie under PR/MR, no majority under MR, no in-set vote left under AR) is
  skipped; each clip weighs 1 in total, shared by its held-out votes that
  have a target; clips with none are left out.  Under the model rules (DS, DS1)
  the target of the remaining votes is their posterior under the task's fitted
  model (priors and confusion matrices kept, the held-out vote removed), so each
  vote of a clip with two or more votes has one.  The vote is scored as the
  label-smoothed one-hot ``LS(e_v)`` with the task's smoothing (the encoding
  of the released targets), so that log-based metrics stay finite; argmax
  and 1/K bits are those of the vote.  Undefined, with the reason, when no
  test clip has two in-set votes (one label per clip).
* ``oracle``, only for a simulated corpus whose truth is known (the demo):
  each test clip's true answer distribution, the rater pool's expected
  answer given the clip's emotion mixture.  No model can predict a random
  rater's vote better on average, so it bounds what the audio can give.

Values are means over folds; a value that cannot be computed on every fold is
``n/a`` with the reason, never 0.
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize
from scipy.special import xlogy

from . import aggregation as agg
from . import metrics as M
from .rules import apply_rule
from .targets import label_smooth
from .tasks.task import Split, Task
from .vocab import MODEL_RULES

ROWS = ("prior", "best_constant", "human")
#: Training scores this close count as a tie between best-constant candidates (the first wins).
TIE = 1e-12
#: The extra row of tasks with a known truth (see :func:`row_kinds`).
ORACLE = "oracle"


def row_kinds(task: Task) -> tuple[str, ...]:
    """The reference rows a task has: :data:`ROWS`, plus ``oracle`` where the truth is known."""
    return ROWS + ((ORACLE,) if task.truth is not None else ())
EXHAUSTIVE_K = 12
_SEARCHED = ("js", "cosine")


@dataclass(frozen=True)
class RefValue:
    """A reference score, or None with the reason it cannot be computed."""

    value: float | None
    reason: str = ""

    def as_json(self) -> float | str:
        return round(self.value, 6) if self.value is not None else f"n/a: {self.reason}"

    def text(self, digits: int = 4) -> str:
        return f"{self.value:.{digits}f}" if self.value is not None else "n/a"


def _groups(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First row of each distinct row of ``key`` and each row's group (exact, hash-based)."""
    if len(key) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    frame = pd.DataFrame(key)
    inverse = frame.groupby(list(frame.columns), sort=False).ngroup().to_numpy()
    first = np.full(int(inverse.max()) + 1, len(key), dtype=np.int64)
    np.minimum.at(first, inverse, np.arange(len(key)))
    return first, inverse


def _unique(targets: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct (target, label) rows and their counts: a constant scores the same on duplicates.

    Exact equality (rounding would move the 1/K bits).
    """
    first, inverse = _groups(np.hstack([targets, labels[:, None]]))
    counts = np.bincount(inverse, minlength=len(first)).astype(np.float64)
    return targets[first], labels[first].astype(np.int64), counts


def _score_constant(names: list[str], c: np.ndarray, targets: np.ndarray, labels: np.ndarray,
                    weights: np.ndarray, uar_classes: str) -> dict[str, float]:
    """Scores of the constant prediction ``c`` on (weighted) target rows.

    Single- and multi-label statistics of a constant are closed-form sums (the
    reference side summed once, the prediction side constant), so the many
    candidates of the search cost nothing per clip; the other families go
    through :func:`serbench.metrics.compute`.
    """
    k = len(c)
    lab = labels if (labels >= 0).all() else None
    total = float(weights.sum())
    out: dict[str, float] = {}
    rest = []
    for m in names:
        kind = M.METRICS[m].kind
        if kind == "single" and lab is not None:
            ref = np.bincount(lab, weights=weights, minlength=k).astype(float)
            pred = np.zeros(k)
            pred[int(np.argmax(c))] = 1.0
        elif kind == "multi":
            ref = weights @ (targets > 1.0 / k)
            pred = (c / c.sum() > 1.0 / k + M.BIT_MARGIN).astype(float)
        else:
            if kind != "single":
                rest.append(m)
            continue
        summed = np.concatenate([ref, pred * total, ref * pred, [total]])
        out[m] = float(M.finalize(m, summed, k, uar_classes=uar_classes))
    if rest:
        probs = np.broadcast_to(c, targets.shape)
        out.update(M.compute(rest, targets, np.ascontiguousarray(probs), lab, weights=weights,
                             uar_classes=uar_classes))
    return out


def _bit_candidates(k: int, prevalence: np.ndarray) -> list[np.ndarray]:
    """Distributions whose 1/K bits are each allowed subset (at most K - 1 classes)."""
    if k <= EXHAUSTIVE_K:
        subsets = [s for m in range(k) for s in itertools.combinations(range(k), m)]
    else:
        order = np.argsort(-prevalence, kind="stable")
        subsets = [tuple(order[:m]) for m in range(k)]
    out = []
    eps = 0.01
    for s in subsets:
        v = np.full(k, eps)
        v[list(s)] = 1.0 + eps
        out.append(v / v.sum())
    return out


def _candidates(targets: np.ndarray, labels: np.ndarray, weights: np.ndarray
                ) -> dict[str, list[np.ndarray]]:
    """Candidate constants per metric family (each family's optimum is among its own)."""
    k = targets.shape[1]
    mean = weights @ targets / weights.sum()
    argmax = []
    for j in range(k):  # argmax j
        v = np.full(k, 0.5 / k)
        v[j] += 0.5
        argmax.append(v)
    bits = (targets > 1.0 / k).astype(float)
    top = targets.max(axis=1, keepdims=True)
    hit = (targets >= top - 1e-12).astype(float)  # top-voted classes (plurality, ties count)
    rate = weights @ hit / weights.sum()
    toplabel = []
    for j in range(k):  # top-label ECE: confidence = how often class j is a top class
        conf = min(max(rate[j], 1.0 / k + 1e-6), 1.0)
        v = np.full(k, (1.0 - conf) / (k - 1))
        v[j] = conf
        toplabel.append(v)
    return {"single": [mean, *argmax], "multi": [mean, *_bit_candidates(k, weights @ bits)],
            "rank": [mean], "dist": [mean, np.full(k, 1.0 / k), *toplabel]}


def _search(metric: str, targets: np.ndarray, weights: np.ndarray, start: np.ndarray
            ) -> np.ndarray:
    """Nelder-Mead over softmax logits for a continuous metric (JS, cosine).

    JS per clip = 0.5 sum t log t + 0.5 sum c log c - sum m log m with m = (t + c) / 2;
    the clip-only parts are computed once.
    """
    wn = weights / weights.sum()
    if metric == "cosine":
        unit = targets / np.maximum(np.linalg.norm(targets, axis=1, keepdims=True), 1e-300)
        mean_unit = wn @ unit

        def loss(z: np.ndarray) -> float:
            c = M.softmax(z)
            return -float(mean_unit @ c / np.linalg.norm(c))
    else:
        h_t = float(wn @ (0.5 * xlogy(targets, targets).sum(axis=1)))

        def loss(z: np.ndarray) -> float:
            c = M.softmax(z)
            m = 0.5 * (targets + c)
            return h_t + 0.5 * float(xlogy(c, c).sum()) - float(wn @ xlogy(m, m).sum(axis=1))

    res = optimize.minimize(loss, np.log(np.maximum(start, 1e-6)), method="Nelder-Mead",
                            options={"xatol": 1e-4, "fatol": 1e-7, "maxiter": 250})
    return M.softmax(res.x)


def best_constants(names: list[str], train: Split, uar_classes: str = "present"
                   ) -> dict[str, np.ndarray]:
    """Per metric, the candidate constant prediction that scores best on ``train``."""
    t, lab, w = _unique(train.targets, train.labels)
    cands = _candidates(t, lab, w)
    one_hot = bool(np.isin(t, (0.0, 1.0)).all())
    out = {}
    for family, family_cands in cands.items():
        fam = [m for m in names if M.METRICS[m].kind == family]
        if not fam:
            continue
        rows = (lab >= 0) if family == "single" else np.ones(len(t), dtype=bool)
        if not rows.any():  # single-label metrics need labelled (untied) training clips
            continue
        ft, fl, fw = t[rows], lab[rows], w[rows]
        scores = [_score_constant(fam, c, ft, fl, fw, uar_classes) for c in family_cands]
        for m in fam:
            if m not in scores[0]:
                continue
            # candidates that tie in exact arithmetic (e.g. every top-label candidate scores
            # top-label ECE 0 on the training split) go to the first, not to whichever a
            # last-bit rounding difference favours: their test scores differ
            vals = np.array([sc[m] for sc in scores])
            gain = -vals if m in M.LOWER_IS_BETTER else vals
            best = int(np.flatnonzero(gain >= gain.max() - TIE)[0])
            out[m] = family_cands[best]
            # cosine against one-hot targets is maximal at the class frequencies (Cauchy-Schwarz)
            if m in _SEARCHED and not (m == "cosine" and one_hot):
                found = _search(m, ft, fw, family_cands[0])
                got = _score_constant([m], found, ft, fl, fw, uar_classes)[m]
                if (got < vals[best]) == (m in M.LOWER_IS_BETTER):
                    out[m] = found
    return out


# ----------------------------------------------------------------------------- human


@dataclass
class HeldOut:
    """The (clip, held-out class) pairs of one test set that leave a target."""

    targets: np.ndarray
    labels: np.ndarray
    probs: np.ndarray
    weights: np.ndarray
    n_clips: int


def held_out_votes(task: Task, split: Split) -> HeldOut | str:
    """Held-out votes of ``split``'s clips with their targets, or the reason there are none."""
    k = task.spec.k
    pos = pd.Index(task.counts.ids).get_indexer(split.ids)
    counts = task.counts.counts[pos].astype(np.int64)
    other = np.asarray(task.counts.other)[pos]
    if len(split) == 0:
        return "empty test set"
    if (counts.sum(axis=1) < 2).all():
        return "every test clip has fewer than 2 in-set votes, so no vote can be held out"
    if split.rule in MODEL_RULES:
        return _held_out_model(task, split)
    clip, cls = np.nonzero(counts)
    mult = counts[clip, cls].astype(np.float64)
    remaining = counts[clip].copy()
    remaining[np.arange(len(clip)), cls] -= 1
    res = apply_rule(split.rule, remaining, other[clip],
                     denominator=task.spec.mr_denominator)  # type: ignore[arg-type]
    keep = res.keep
    if not keep.any():
        return f"no held-out vote leaves a {split.rule} target (ties or single votes)"
    clip, cls, mult = clip[keep], cls[keep], mult[keep]
    per_clip = np.bincount(clip, weights=mult, minlength=len(split))
    weights = mult / per_clip[clip]
    # identical (target, label, held-out class) pairs are merged, their weights summed
    first, inv = _groups(np.hstack([res.targets, res.labels[:, None], cls[:, None]]))
    w_u = np.bincount(inv, weights=weights, minlength=len(first))
    cls_u = cls[first]
    eps = task.spec.smoothing
    probs = label_smooth(np.eye(k)[cls_u], eps) if eps > 0 else np.eye(k)[cls_u]
    return HeldOut(res.targets[first], res.labels[first], probs, w_u,
                   int((per_clip > 0).sum()))


def _model_held_out(task: Task, split: Split) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                       np.ndarray]:
    """Held-out votes of ``split``'s clips under a model rule: (vote index, clip, class, target)."""
    votes = task.votes
    sel, targets = agg.held_out_posteriors(task.aggregation[split.rule], votes)
    in_split = pd.Index(split.ids).get_indexer(task.counts.ids[votes.clip[sel]])
    ok = in_split >= 0
    return sel[ok], in_split[ok], votes.label[sel[ok]], targets[ok]


def _held_out_model(task: Task, split: Split) -> HeldOut | str:
    _, clip, cls, targets = _model_held_out(task, split)
    if not len(clip):
        return "every test clip has fewer than 2 in-set votes, so no vote can be held out"
    per_clip = np.bincount(clip, minlength=len(split)).astype(np.float64)
    weights = 1.0 / per_clip[clip]
    labels = agg.consensus(targets)
    first, inv = _groups(np.hstack([targets, labels[:, None], cls[:, None]]))
    w_u = np.bincount(inv, weights=weights, minlength=len(first))
    k, eps = task.spec.k, task.spec.smoothing
    probs = label_smooth(np.eye(k)[cls[first]], eps) if eps > 0 else np.eye(k)[cls[first]]
    return HeldOut(targets[first], labels[first], probs, w_u, int((per_clip > 0).sum()))


# ----------------------------------------------------------------------------- rows


def _single_na(split: Split) -> str:
    return (f"needs a consensus label; the {split.rule} test set has tied clips"
            if len(split) else "empty test set")


def fold_reference(task: Task, fold: int, metrics: tuple[str, ...] | None = None
                   ) -> dict[str, dict[str, dict[str, RefValue]]]:
    """{metric: {test rule: {row: RefValue}}} on one fold."""
    metrics = metrics or task.spec.metrics
    uc = task.spec.uar_classes
    out: dict[str, dict[str, dict[str, RefValue]]] = {m: {} for m in metrics}
    for rule in task.spec.rules:
        test = task.split(fold, "test", rule)
        train = task.split(fold, "train", rule)
        labelled = len(test) > 0 and bool((test.labels >= 0).all())
        names = [m for m in metrics if len(test) and (labelled or M.METRICS[m].kind != "single")]
        t_u, l_u, w_u = _unique(test.targets, test.labels)
        rows: dict[str, dict[str, RefValue]] = {m: {} for m in metrics}
        if len(train) and names:
            prior = train.targets.mean(axis=0)
            ps = _score_constant(names, prior, t_u, l_u, w_u, uc)
            best = best_constants(names, train, uc)
            cache: dict[bytes, dict[str, float]] = {}
            for m in names:
                rows[m]["prior"] = RefValue(ps[m])
                c = best.get(m)
                if c is None:
                    rows[m]["best_constant"] = RefValue(
                        None, "no training clip with a consensus label to search on")
                    continue
                key = c.tobytes()
                if key not in cache:
                    cache[key] = _score_constant(names, c, t_u, l_u, w_u, uc)
                rows[m]["best_constant"] = RefValue(cache[key][m])
        human = held_out_votes(task, test) if names else "empty test set"
        hs: dict[str, float] = {}
        if isinstance(human, HeldOut):
            hl = human.labels if (human.labels >= 0).all() else None
            hn = [m for m in names if hl is not None or M.METRICS[m].kind != "single"]
            hs = M.compute(hn, human.targets, human.probs, hl, weights=human.weights,
                           uar_classes=uc)
        oracle: dict[str, float] = {}
        if task.truth is not None and names:
            probs = task.truth.reindex(test.ids.astype(str)).to_numpy(dtype=np.float64)
            if np.isfinite(probs).all():
                ol = test.labels if (test.labels >= 0).all() else None
                oracle = M.compute([m for m in names if ol is not None or
                                    M.METRICS[m].kind != "single"],
                                   test.targets, probs, ol, uar_classes=uc)
        kinds = row_kinds(task)
        for m in metrics:
            if m not in names:
                reason = _single_na(test) if len(test) else "empty test set"
                rows[m] = {r: RefValue(None, reason) for r in kinds}
                continue
            if task.truth is not None:
                rows[m]["oracle"] = RefValue(oracle[m]) if m in oracle else RefValue(
                    None, "the truth does not cover every test clip")
            rows[m].setdefault("prior", RefValue(None, "empty training split"))
            rows[m].setdefault("best_constant", RefValue(None, "empty training split"))
            if m in hs:
                rows[m]["human"] = RefValue(hs[m])
            else:
                rows[m]["human"] = RefValue(None, human if isinstance(human, str) else
                                            "the held-out votes' targets have ties")
            rows[m] = {r: rows[m][r] for r in kinds}
        for m in metrics:
            out[m][rule] = rows[m]
    return out


_CACHE: dict[tuple[Any, ...], dict[str, dict[str, dict[str, RefValue]]]] = {}


def reference(task: Task, metrics: tuple[str, ...] | None = None
              ) -> dict[str, dict[str, dict[str, RefValue]]]:
    """{metric: {test rule: {prior, best_constant, human[, oracle]}}}: means over folds, or n/a.

    Cached per process by the task fingerprint (clips, targets, folds), the known
    truth and the settings that change the rows (metrics, UAR convention,
    smoothing, MR denominator).
    """
    metrics = tuple(metrics or task.spec.metrics)
    truth = None if task.truth is None else hashlib.sha256(
        pd.util.hash_pandas_object(task.truth).to_numpy().tobytes()).hexdigest()
    key = (task.fingerprint["fingerprint"], metrics, task.spec.uar_classes,
           task.spec.smoothing, task.spec.mr_denominator, truth)
    if key not in _CACHE:
        _CACHE[key] = _reference(task, metrics)
    return _CACHE[key]


def _reference(task: Task, metrics: tuple[str, ...]) -> dict[str, dict[str, dict[str, RefValue]]]:
    folds = [fold_reference(task, f, metrics) for f in range(1, task.n_folds + 1)]
    out: dict[str, dict[str, dict[str, RefValue]]] = {}
    for m in metrics:
        out[m] = {}
        for rule in task.spec.rules:
            out[m][rule] = {}
            for row in row_kinds(task):
                vals = [fr[m][rule][row] for fr in folds]
                bad = next(((i + 1, v) for i, v in enumerate(vals) if v.value is None), None)
                if bad is not None:
                    why = bad[1].reason
                    out[m][rule][row] = RefValue(None, why if task.n_folds == 1 or all(
                        v.value is None for v in vals) else f"fold {bad[0]}: {why}")
                else:
                    out[m][rule][row] = RefValue(float(np.mean([v.value for v in vals])))
    return out


def reference_rows(task: Task, metrics: tuple[str, ...] | None = None) -> dict[str, Any]:
    """The JSON shape of ``tasks show --json`` ``reference``: numbers, or "n/a: <reason>"."""
    return {m: {rule: {row: v.as_json() for row, v in rows.items()}
                for rule, rows in by_rule.items()}
            for m, by_rule in reference(task, metrics).items()}


def normalised(model: float, ref: dict[str, RefValue]) -> float | None:
    """(model - best constant) / (human - best constant); None where undefined."""
    bc, hu = ref["best_constant"].value, ref["human"].value
    if bc is None or hu is None or abs(hu - bc) < 1e-12:
        return None
    return (model - bc) / (hu - bc)


# ----------------------------------------------------------------------------- per-rater spread


def human_spread(task: Task, metrics: tuple[str, ...] | None = None, *, min_votes: int = 20
                 ) -> dict[str, dict[str, dict[str, float | int] | str]]:
    """How raters differ: {metric: {test rule: {raters, p10, median, p90}}} or "n/a: reason".

    Each rater's in-set votes on test clips (every fold's test set, pooled) are held out as
    in the human row and scored against the target of the clip's remaining votes; a rater
    with fewer than ``min_votes`` such votes is left out. Needs rater ids.
    """
    metrics = tuple(metrics or task.spec.metrics)
    uc = task.spec.uar_classes
    ratings = getattr(task, "ratings", None)
    if ratings is None or ratings["rater_id"].isna().all():
        return {m: {r: "n/a: the source has vote counts only, no rater ids"
                    for r in task.spec.rules} for m in metrics}
    col = {c: i for i, c in enumerate(task.spec.classes)}
    part = ratings[(ratings["question"] == task.spec.question)
                   & ratings["mapped_class"].isin(list(col)) & ratings["rater_id"].notna()]
    index = pd.Index(task.counts.ids)
    out: dict[str, dict[str, dict[str, float | int] | str]] = {m: {} for m in metrics}
    k = task.spec.k
    eps = task.spec.smoothing
    for rule in task.spec.rules:
        rows_t, rows_l, rows_c, rows_r = [], [], [], []
        for fold in range(1, task.n_folds + 1):
            test = task.split(fold, "test", rule)
            if rule in MODEL_RULES:
                if task.votes.mode != "raters":
                    break  # some vote has no rater id: no per-rater spread under DS
                sel, _, cls, t = _model_held_out(task, test)
                rows_t.append(t)
                rows_l.append(agg.consensus(t))
                rows_c.append(cls)
                rows_r.append(np.asarray(task.votes.workers, dtype=object)[task.votes.worker[sel]])
                continue
            votes = part[part["utterance_id"].isin(set(test.ids))]
            if votes.empty:
                continue
            pos = index.get_indexer(votes["utterance_id"].to_numpy())
            cls = votes["mapped_class"].map(col).to_numpy().astype(np.int64)
            remaining = task.counts.counts[pos].astype(np.int64)
            remaining[np.arange(len(pos)), cls] -= 1
            res = apply_rule(rule, remaining, np.asarray(task.counts.other)[pos],
                             denominator=task.spec.mr_denominator)  # type: ignore[arg-type]
            rows_t.append(res.targets)
            rows_l.append(res.labels)
            rows_c.append(cls[res.keep])
            rows_r.append(votes["rater_id"].astype(str).to_numpy()[res.keep])
        if not rows_t:
            why = ("n/a: pooled Dawid-Skene (some votes have no rater id)"
                   if rule in MODEL_RULES else "n/a: no rated test clip")
            for m in metrics:
                out[m][rule] = why
            continue
        targets, labels = np.vstack(rows_t), np.concatenate(rows_l)
        cls_all, raters = np.concatenate(rows_c), np.concatenate(rows_r)
        probs = label_smooth(np.eye(k)[cls_all], eps) if eps > 0 else np.eye(k)[cls_all]
        names, counts = np.unique(raters, return_counts=True)
        kept = names[counts >= min_votes]
        scores: dict[str, list[float]] = {m: [] for m in metrics}
        for r in kept:
            sel = raters == r
            lab = labels[sel] if (labels[sel] >= 0).all() else None
            ms = [m for m in metrics if lab is not None or M.METRICS[m].kind != "single"]
            for m, v in M.compute(ms, targets[sel], probs[sel], lab, uar_classes=uc).items():
                scores[m].append(v)
        for m in metrics:
            if not scores[m]:
                out[m][rule] = (f"n/a: no rater has {min_votes} held-out votes with a target"
                                if not len(kept) else "n/a: needs a consensus label")
                continue
            q = np.quantile(scores[m], [0.1, 0.5, 0.9])
            out[m][rule] = {"raters": len(scores[m]), "p10": round(float(q[0]), 6),
                            "median": round(float(q[1]), 6), "p90": round(float(q[2]), 6)}
    return out
