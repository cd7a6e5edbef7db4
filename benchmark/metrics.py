"""Metrics as pure, vectorised functions of additive per-utterance statistics.

Every metric here except the ranking metric is ``finalize(w @ S)``: a
per-utterance statistics matrix ``S`` [N, D] is summed with weights ``w`` and
a cheap function turns the sums into the score.  The point estimate uses
``w = 1``; a bootstrap resample uses ``w`` = how often each utterance was
drawn, so 1,000 resamples are one matrix product ``W @ S`` instead of 1,000
metric calls (see :mod:`serbench.bootstrap`).  The same trick gives the
per-subset scores of the subset t-test and the weighted scores of the human
reference (:mod:`serbench.reference`).

Definitions (K classes, reference targets ``t`` [N, K], predicted probabilities
``p`` [N, K]; the project's method notes are ``docs/methods.md``):

* single-label (reference = consensus class, prediction = argmax):
  **uar** = mean recall over the classes present in the reference (task
  setting ``uar_classes: present``, scikit-learn ``balanced_accuracy_score``)
  or over all K classes (``uar_classes: all``, scikit-learn
  ``recall_score(average="macro", labels=range(K), zero_division=0)``);
  **weighted_accuracy** = plain accuracy; **macro_f1** = mean F1 over classes
  present in the reference or the prediction (``f1_score(average="macro")``);
  **weighted_f1** = F1 per class weighted by its reference support
  (``f1_score(average="weighted")``, IS-2023); **micro_f1**.
* multi-label with the 1/K rule on both sides (the paper's rule): bits
  ``t > 1/K`` and ``p > 1/K`` (``+ BIT_MARGIN``); **multilabel_macro_f1** = mean over all K
  columns of ``2TP / (2TP + FP + FN)``, 0 where that is 0/0 (scikit-learn
  ``zero_division=0``): *the paper's metric*; **multilabel_weighted_f1**
  (weights = reference bit counts); **multilabel_micro_f1**; **hamming** loss.
* ranking: **auprc** = per-class average precision of ``p_k`` against the
  bits ``t_k > 1/K`` (scikit-learn ``average_precision_score``, ties as one
  threshold), averaged over the classes with at least one positive bit.
* distribution (proper scoring rules and calibration against the vote
  distribution): **nll** = ``-sum_k t_k log max(p_k, 1e-8)``, the expected
  log-loss of one random rater's vote; **brier** = ``sum_k (p_k - t_k)^2``;
  **kl** = ``sum_k t_k (log t_k - log max(p_k, 1e-8))`` (``0 log 0 = 0``);
  **js** = Jensen-Shannon divergence (natural log, at most ln 2); **cosine**;
  **ece_classwise** = class-wise expected calibration error, 15 equal-width
  bins on ``p_k``, gap ``|mean p_k - mean t_k|`` per bin, averaged over the K
  classes (Kull et al. 2019, "Beyond temperature scaling"), so that
  predicting ``t`` scores 0; **ece_toplabel** = top-label ECE (Guo et al. 2017,
  "On calibration of modern neural networks"): confidence ``max p`` against
  "the argmax is a top-voted class of ``t``", 15 bins.
* **ece_bits** is the former ``ece``: class-wise ECE of ``p_k`` against the
  1/K *bits*.  Predicting the exact vote distribution does not score 0 on it,
  so it is kept only under this name (for sigmoid models that estimate the bits).

``double_softmax=True`` reproduces the released evaluation code, which applies
a softmax to probabilities before thresholding; it is off by default and only
affects the multi-label bits.  ``independent=True`` marks outputs that are
independent per-class probabilities (a multi-label submission): they are used
as they are for the single-label, multi-label and ranking metrics and
normalised to sum to 1 only for the distribution metrics.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.special import xlogy

KL_EPSILON = 1e-8
ECE_BINS = 15
#: A predicted bit is ``p > 1/K + BIT_MARGIN``: float rounding of a (near-)uniform row
#: cannot switch every bit on (distribution rows are also renormalised before thresholding,
#: so the 1e-6 sum tolerance of a prediction file cannot be used to the same end).
BIT_MARGIN = 1e-9

SINGLE_LABEL = ("uar", "weighted_accuracy", "macro_f1", "weighted_f1", "micro_f1")
MULTI_LABEL = ("multilabel_macro_f1", "multilabel_weighted_f1", "multilabel_micro_f1",
               "hamming")
RANKING = ("auprc",)
DISTRIBUTION = ("nll", "brier", "kl", "js", "cosine", "ece_classwise", "ece_toplabel",
                "ece_bits")
ALL = SINGLE_LABEL + MULTI_LABEL + RANKING + DISTRIBUTION
#: Every metric a task lists by default (``ece_bits`` only on request).
DEFAULT = tuple(m for m in ALL if m != "ece_bits")
#: Lower is better for these; higher for the rest.
LOWER_IS_BETTER = frozenset({"hamming", "nll", "brier", "kl", "js", "ece_classwise",
                             "ece_toplabel", "ece_bits"})
#: Metrics whose clip bootstrap is biased away from the point estimate, so the scorer
#: re-centres their resamples on it (bias correction, Efron & Tibshirani 1993, ch. 10): a
#: resample repeats clips, and a repeated positive raises its own precision (AP); a binned ECE
#: sums absolute gaps, and resampling noise can only add to an absolute value.
RECENTRED = frozenset({"auprc", "ece_classwise", "ece_toplabel", "ece_bits"})
#: Names a task file may still use, and what they are now called.
RENAMED = {"ece": "ece_bits"}
#: The paper's metric (Chou 2025: macro-F1 with the 1/K rule on both sides).
PAPER_METRIC = "multilabel_macro_f1"
UAR_CLASSES = ("present", "all")


def softmax(x: np.ndarray) -> np.ndarray:
    z = x - x.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def normalise(probs: np.ndarray) -> np.ndarray:
    """Rows scaled to sum to 1 (an all-zero row becomes uniform)."""
    p = np.asarray(probs, dtype=np.float64)
    s = p.sum(axis=1, keepdims=True)
    return np.where(s > 0, p / np.where(s > 0, s, 1.0), 1.0 / p.shape[1])


def _one_hot(labels: np.ndarray, k: int) -> np.ndarray:
    out = np.zeros((len(labels), k))
    out[np.arange(len(labels)), labels] = 1.0
    return out


def _div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return np.divide(a, b, out=np.zeros(np.broadcast(a, b).shape), where=b != 0)


@dataclass(frozen=True)
class StatMetric:
    """A metric in statistics form: ``finalize(stats(...).sum(0))``."""

    name: str
    kind: str  # "single", "multi", "dist" or "rank"
    finalize: Callable[..., np.ndarray]


# ----------------------------------------------------------------------------- statistics
# Every statistics matrix ends with a column of ones, so its sum holds the (weighted)
# number of utterances. Matrices are filled in place (no hstack copies: they dominate at 1e5 rows)
# and column-major: they are filled, and copied into the scorer's stacked matrix, by column.


def _three_blocks(ref: np.ndarray, pred: np.ndarray, dtype: type = np.float64) -> np.ndarray:
    """[N, 3K + 1]: reference, prediction, their product, 1 (filled in place)."""
    n, k = ref.shape
    out = np.empty((n, 3 * k + 1), dtype=dtype, order="F")
    out[:, :k] = ref
    out[:, k:2 * k] = pred
    np.multiply(ref, pred, out=out[:, 2 * k:3 * k])
    out[:, -1] = 1.0
    return out


def single_label_stats(labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """[N, 3K + 1]: one-hot reference, one-hot argmax prediction, their product, 1.

    Every clip needs a consensus class: a label of -1 (a tied clip, no consensus) would
    otherwise index the last class.
    """
    k = probs.shape[1]
    labels = np.asarray(labels)
    if labels.shape != (len(probs),) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be {len(probs)} integer class indices (one per row of "
                         f"probs), got shape {labels.shape} of {labels.dtype}")
    bad = (labels < 0) | (labels >= k)
    if bad.any():
        first = int(labels[bad][0])
        why = ("-1 marks a tie, a clip without consensus" if first == -1 else
               f"there are {k} classes")
        raise ValueError(f"single-label metrics need a consensus class in 0..{k - 1} for "
                         f"every clip; {int(bad.sum())} of {len(labels)} have none (e.g. "
                         f"label {first}: {why}): score them on the MR or PR test set, or drop "
                         "those clips")
    return _three_blocks(_one_hot(labels, k),
                         _one_hot(np.asarray(probs).argmax(axis=1), k))


def predicted_bits(probs: np.ndarray) -> np.ndarray:
    """The predicted side of the 1/K rule: ``p_k > 1/K + BIT_MARGIN`` (float 0/1, [N, K]).

    The one place the prediction threshold is declared; the multi-label metrics and
    the minority-view recall (:mod:`serbench.rater_metrics`) both read it.
    """
    k = probs.shape[1]
    return (np.asarray(probs) > 1.0 / k + BIT_MARGIN).astype(np.float64)


def multi_label_bits(targets: np.ndarray, probs: np.ndarray, *, double_softmax: bool = False
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Reference and predicted bits of the 1/K rule."""
    k = probs.shape[1]
    pred = softmax(probs) if double_softmax else probs
    return (targets > 1.0 / k).astype(np.float64), predicted_bits(pred)


def multi_label_stats(targets: np.ndarray, probs: np.ndarray, *, double_softmax: bool = False
                      ) -> np.ndarray:
    """[N, 3K + 1]: reference bits, predicted bits, their product, 1."""
    b, bh = multi_label_bits(targets, probs, double_softmax=double_softmax)
    return _three_blocks(b, bh)


def _xlogy(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a log b`` with ``0 log 0 = 0`` (scipy's vectorised xlogy)."""
    return np.asarray(xlogy(a, b))


def _bin_gaps(out: np.ndarray, start: int, values: np.ndarray, gaps: np.ndarray) -> None:
    """Write ``gaps`` [N, C] into ``out[:, start + c * 15 + bin]`` (equal-width bins of values)."""
    n, c = values.shape
    bins = np.clip((values * ECE_BINS).astype(np.int64), 0, ECE_BINS - 1)
    cols = start + np.arange(c)[None, :] * ECE_BINS + bins
    out[np.arange(n)[:, None], cols] = gaps


#: Column layout of the distribution statistics (after the 5 per-utterance scores).
_DIST_SCORES = ("nll", "brier", "kl", "js", "cosine")
_N5 = len(_DIST_SCORES)


def distribution_stats(targets: np.ndarray, probs: np.ndarray, *, bits_ece: bool = True
                       ) -> np.ndarray:
    """Per-utterance NLL, Brier, KL, JS, cosine; the ECE gaps per (class, bin); 1.

    Columns: 5 scores, K*15 class-wise gaps ``p_k - t_k``, 15 top-label gaps
    ``max p - [argmax p is a top class of t]``, then (``bits_ece``) K*15 gaps
    ``p_k - [t_k > 1/K]``, then the count.
    """
    t = np.asarray(targets, dtype=np.float64)
    p = np.asarray(probs, dtype=np.float64)
    n, k = p.shape
    logp = np.log(np.maximum(p, KL_EPSILON))
    nll = -(t * logp).sum(axis=1)
    brier = ((p - t) ** 2).sum(axis=1)
    tlogt = _xlogy(t, t)
    kl = tlogt.sum(axis=1) + nll
    m = 0.5 * (t + p)
    js = 0.5 * ((tlogt - _xlogy(t, m)).sum(axis=1)
                + (_xlogy(p, p) - _xlogy(p, m)).sum(axis=1))
    cos = _div((t * p).sum(axis=1), np.linalg.norm(t, axis=1) * np.linalg.norm(p, axis=1))
    top = p.argmax(axis=1)
    conf = p[np.arange(n), top]
    correct = (t[np.arange(n), top] >= t.max(axis=1) - 1e-12).astype(np.float64)
    width = _N5 + (2 * k + 1) * ECE_BINS + 1 if bits_ece else _N5 + (k + 1) * ECE_BINS + 1
    out = np.zeros((n, width), order="F")
    for j, col in enumerate((nll, brier, kl, js, cos)):
        out[:, j] = col
    _bin_gaps(out, _N5, p, p - t)
    _bin_gaps(out, _N5 + k * ECE_BINS, conf[:, None], (conf - correct)[:, None])
    if bits_ece:
        _bin_gaps(out, _N5 + (k + 1) * ECE_BINS, p, p - (t > 1.0 / k))
    out[:, -1] = 1.0
    return out


# ----------------------------------------------------------------------------- finalizers
# Each takes summed statistics T [..., D] and K, and returns the score [...].


def _split3(t: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return t[..., :k], t[..., k:2 * k], t[..., 2 * k:3 * k]


def _uar(t: np.ndarray, k: int, uar_classes: str = "present") -> np.ndarray:
    ref, _, tp = _split3(t, k)
    if uar_classes == "all":
        return _div(tp, ref).mean(-1)
    present = ref > 0
    return _div((_div(tp, ref) * present).sum(-1), present.sum(-1))


def _accuracy(t: np.ndarray, k: int, **_kw: str) -> np.ndarray:
    _, _, tp = _split3(t, k)
    return _div(tp.sum(-1), t[..., -1])


def _macro_f1_present(t: np.ndarray, k: int, **_kw: str) -> np.ndarray:
    ref, pred, tp = _split3(t, k)
    present = (ref + pred) > 0
    return _div((_div(2 * tp, ref + pred) * present).sum(-1), present.sum(-1))


def _macro_f1_all(t: np.ndarray, k: int, **_kw: str) -> np.ndarray:
    ref, pred, tp = _split3(t, k)
    return _div(2 * tp, ref + pred).mean(-1)


def _weighted_f1(t: np.ndarray, k: int, **_kw: str) -> np.ndarray:
    ref, pred, tp = _split3(t, k)
    return _div((_div(2 * tp, ref + pred) * ref).sum(-1), ref.sum(-1))


def _micro_f1(t: np.ndarray, k: int, **_kw: str) -> np.ndarray:
    ref, pred, tp = _split3(t, k)
    return _div(2 * tp.sum(-1), ref.sum(-1) + pred.sum(-1))


def _hamming(t: np.ndarray, k: int, **_kw: str) -> np.ndarray:
    ref, pred, tp = _split3(t, k)
    return _div((ref + pred - 2 * tp).sum(-1), k * t[..., -1])


def _dist_mean(col: int) -> Callable[..., np.ndarray]:
    def mean(t: np.ndarray, k: int, **_kw: str) -> np.ndarray:
        return _div(t[..., col], t[..., -1])

    return mean


def _ece_block(start: Callable[[int], int], classes: Callable[[int], int]
               ) -> Callable[..., np.ndarray]:
    def ece(t: np.ndarray, k: int, **_kw: str) -> np.ndarray:
        c = classes(k)
        gap = t[..., start(k):start(k) + c * ECE_BINS]
        per_class = np.abs(gap).reshape(*gap.shape[:-1], c, ECE_BINS).sum(-1)
        return _div(per_class.mean(-1), t[..., -1])

    return ece


def _unused(t: np.ndarray, k: int, **_kw: str) -> np.ndarray:  # pragma: no cover
    raise ValueError("auprc is not a statistics-form metric; use average_precision")


METRICS: dict[str, StatMetric] = {
    "uar": StatMetric("uar", "single", _uar),
    "weighted_accuracy": StatMetric("weighted_accuracy", "single", _accuracy),
    "macro_f1": StatMetric("macro_f1", "single", _macro_f1_present),
    "weighted_f1": StatMetric("weighted_f1", "single", _weighted_f1),
    "micro_f1": StatMetric("micro_f1", "single", _micro_f1),
    "multilabel_macro_f1": StatMetric("multilabel_macro_f1", "multi", _macro_f1_all),
    "multilabel_weighted_f1": StatMetric("multilabel_weighted_f1", "multi", _weighted_f1),
    "multilabel_micro_f1": StatMetric("multilabel_micro_f1", "multi", _micro_f1),
    "hamming": StatMetric("hamming", "multi", _hamming),
    "auprc": StatMetric("auprc", "rank", _unused),
    **{name: StatMetric(name, "dist", _dist_mean(i)) for i, name in enumerate(_DIST_SCORES)},
    "ece_classwise": StatMetric("ece_classwise", "dist",
                                _ece_block(lambda k: _N5, lambda k: k)),
    "ece_toplabel": StatMetric("ece_toplabel", "dist",
                               _ece_block(lambda k: _N5 + k * ECE_BINS, lambda k: 1)),
    "ece_bits": StatMetric("ece_bits", "dist",
                           _ece_block(lambda k: _N5 + (k + 1) * ECE_BINS, lambda k: k)),
}


def kind_of(name: str) -> str:
    return METRICS[name].kind


def statistics(kind: str, targets: np.ndarray, probs: np.ndarray, labels: np.ndarray | None = None,
               *, double_softmax: bool = False, independent: bool = False,
               bits_ece: bool = True) -> np.ndarray:
    """Per-utterance statistics of one kind (``single`` needs consensus ``labels``)."""
    if kind == "single":
        if labels is None:
            raise ValueError("single-label metrics need consensus labels")
        return single_label_stats(labels, probs)
    if kind == "multi":
        return multi_label_stats(targets, probs if independent else normalise(probs),
                                 double_softmax=double_softmax)
    if kind == "dist":
        return distribution_stats(targets, normalise(probs), bits_ece=bits_ece)
    raise ValueError(f"unknown metric kind {kind!r}")


def finalize(name: str, summed: np.ndarray, k: int, *, uar_classes: str = "present"
             ) -> np.ndarray:
    """Score(s) of metric ``name`` from summed statistics of its kind."""
    if name == "uar":
        return _uar(summed, k, uar_classes)
    out: np.ndarray = METRICS[name].finalize(summed, k)
    return out


# ----------------------------------------------------------------------------- ranking


@dataclass(frozen=True)
class RankPlan:
    """Per class: clips sorted by descending score, the tie groups and the positive bits.

    Average precision only needs, per resample, the weighted positives and
    totals of each tie group (a group = one threshold, as in scikit-learn).
    """

    order: list[np.ndarray]      # per class, clip indices by descending score
    starts: list[np.ndarray]     # per class, first position of each tie group
    positive: list[np.ndarray]   # per class, the bits in sorted order (float)


def rank_plan(targets: np.ndarray, probs: np.ndarray) -> RankPlan:
    k = probs.shape[1]
    bits = np.asarray(targets) > 1.0 / k
    order, starts, positive = [], [], []
    for c in range(k):
        o = np.argsort(-probs[:, c], kind="stable")
        s = probs[o, c]
        starts.append(np.flatnonzero(np.r_[True, s[1:] != s[:-1]]) if len(s) else
                      np.zeros(0, dtype=np.int64))
        order.append(o)
        positive.append(bits[o, c].astype(np.float64))
    return RankPlan(order, starts, positive)


def _ap_from_groups(pos: np.ndarray, tot: np.ndarray) -> np.ndarray:
    """AP from per-group weighted positives and totals [..., G] (groups by descending score)."""
    tp = np.cumsum(pos, axis=-1)
    allc = np.cumsum(tot, axis=-1)
    return _div((pos * _div(tp, allc)).sum(-1), tp[..., -1])


#: Bootstrap weights are draw counts summing to n; float32 sums of them are exact below 2**24.
EXACT_FLOAT32 = 2 ** 24


def _ap_untied(w: np.ndarray, positives: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """AP of every row of float32 draw counts ``w`` [B, N] (clips by descending score, no tied
    scores) and whether the row has a positive.  The same sum as :func:`_ap_from_groups` with
    one group per clip, over the positive positions only: the cumulative counts are exact
    integers in float32, so only the ratios need float64.
    """
    drawn = w[:, positives]
    tp = np.cumsum(drawn, axis=1, dtype=np.float32)
    seen = np.cumsum(w, axis=1, dtype=np.float32)[:, positives]
    if tp.shape[1] == 0:
        return np.zeros(w.shape[0]), np.zeros(w.shape[0], dtype=bool)
    gain = drawn.astype(np.float64) * _div(tp.astype(np.float64), seen.astype(np.float64))
    total = tp[:, -1].astype(np.float64)
    return _div(gain.sum(-1), total), total > 0


def average_precision(plan: RankPlan, weights: np.ndarray | None = None, *,
                      counts: bool = False) -> np.ndarray:
    """Macro AP over classes with a positive bit; ``weights`` [B, N] gives one score per row.

    ``counts=True`` says the weights are integer draw counts (bootstrap resamples): a class
    without tied scores then takes a faster path with the same sums (:func:`_ap_untied`).
    """
    per_class, present = [], []
    for o, st, y in zip(plan.order, plan.starts, plan.positive, strict=True):
        w = np.ones((1, len(o))) if weights is None else weights[:, o]
        if len(o) == 0:
            per_class.append(np.zeros(w.shape[0]))
            present.append(np.zeros(w.shape[0], dtype=bool))
            continue
        if counts and len(st) == len(o) and len(o) < EXACT_FLOAT32:
            ap, has = _ap_untied(w, np.flatnonzero(y))
            per_class.append(ap)
            present.append(has)
            continue
        pos = np.add.reduceat(w * y, st, axis=1)
        tot = np.add.reduceat(w, st, axis=1)
        per_class.append(_ap_from_groups(pos, tot))
        present.append(pos.sum(axis=1) > 0)
    ap, pr = np.stack(per_class, axis=-1), np.stack(present, axis=-1)
    out = _div((ap * pr).sum(-1), pr.sum(-1))
    return out if weights is not None else out[:1]


def compute(names: list[str] | tuple[str, ...], targets: np.ndarray, probs: np.ndarray,
            labels: np.ndarray | None = None, *, double_softmax: bool = False,
            independent: bool = False, uar_classes: str = "present",
            weights: np.ndarray | None = None) -> dict[str, float]:
    """Point estimates of several metrics on one test set (optionally weighted per clip).

    Worked by hand: four clips of three classes, the last two of class 2; the third
    is predicted as class 0.  UAR = (1 + 1 + 1/2) / 3; Brier = mean over clips of
    the squared distance to the one-hot target = (0.14 + 0.14 + 1.26 + 0.54) / 4;
    NLL = -(ln 0.7 + ln 0.7 + ln 0.1 + ln 0.4) / 4.

    >>> import numpy as np
    >>> labels = np.array([0, 1, 2, 2])
    >>> probs = np.array([[.7, .2, .1], [.2, .7, .1], [.6, .3, .1], [.3, .3, .4]])
    >>> got = compute(["uar", "brier", "nll"], np.eye(3)[labels], probs, labels)
    >>> {name: round(value, 4) for name, value in got.items()}
    {'uar': 0.8333, 'brier': 0.52, 'nll': 0.9831}
    """
    if isinstance(names, str):
        raise TypeError(f"names is a list of metric names, e.g. [{names!r}]")
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; known: {', '.join(METRICS)}")
    if probs is None:
        raise ValueError("probs is required: [clips, classes] predicted probabilities")
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or len(probs) == 0 or not np.isfinite(probs).all() or (probs < 0).any():
        raise ValueError(f"probs must be [clips, classes] with at least one clip, finite and "
                         f"non-negative; got shape {probs.shape}")
    if targets is not None:  # None: single-label metrics from ``labels`` only
        targets = np.asarray(targets, dtype=np.float64)
        if targets.shape != probs.shape or not np.isfinite(targets).all() or (targets < 0).any():
            raise ValueError(f"targets must be finite, non-negative and shaped like probs "
                             f"{probs.shape}, got {targets.shape}")
    k = probs.shape[1]
    cache: dict[str, np.ndarray] = {}
    out = {}
    w = np.ones(len(probs)) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (len(probs),) or not np.isfinite(w).all() or (w < 0).any():
        raise ValueError(f"weights must be {len(probs)} finite, non-negative numbers")
    for name in names:
        kind = METRICS[name].kind
        if kind == "rank":
            plan = rank_plan(targets, probs)
            out[name] = float(average_precision(plan, w[None, :])[0])
            continue
        if kind not in cache:
            cache[kind] = w @ statistics(kind, targets, probs, labels,
                                         double_softmax=double_softmax,
                                         independent=independent,
                                         bits_ece="ece_bits" in names)
        out[name] = float(finalize(name, cache[kind], k, uar_classes=uar_classes))
    return out


# ----------------------------------------------------------------------------- plain helpers


def per_class_f1(targets: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Multi-label (1/K rule) F1 per class, for plots."""
    k = probs.shape[1]
    summed = multi_label_stats(targets, probs).sum(axis=0)
    ref, pred, tp = _split3(summed, k)
    return _div(2 * tp, ref + pred)


def confusion(labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Single-label confusion counts [K, K] (rows = consensus class, columns = argmax)."""
    k = probs.shape[1]
    return np.bincount(np.asarray(labels) * k + probs.argmax(axis=1), minlength=k * k).reshape(k, k)
