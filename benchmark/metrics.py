"""Metrics as pure, vectorised functions of additive per-utterance statistics.

Every metric here is ``finalize(w @ S)``: a per-utterance statistics matrix
``S`` [N, D] is summed with weights ``w`` and a cheap function turns the sums
into the score.  The point estimate uses ``w = 1``; a bootstrap resample uses
``w`` = how often each utterance was drawn, so 1,000 resamples are one matrix
product ``W @ S`` instead of 1,000 metric calls (see :mod:`serbench.bootstrap`).
The same trick gives the per-subset scores of the 40-subset t-test.

Definitions (K classes, reference targets ``t`` [N, K], predicted probabilities
``p`` [N, K]):

* single-label (MR / PR test sets; reference = consensus class, prediction =
  argmax): **uar** = mean recall over the classes present in the reference
  (scikit-learn ``balanced_accuracy_score``); **weighted_accuracy** = plain
  accuracy; **macro_f1** = mean F1 over classes present in the reference or
  the prediction (scikit-learn ``f1_score(average="macro")``); **micro_f1**.
* multi-label with the 1/K rule on both sides (science.md d.1): bits
  ``t > 1/K`` and ``p > 1/K``; **multilabel_macro_f1** = mean over all K
  columns of ``2TP / (2TP + FP + FN)``, 0 where that is 0/0 (scikit-learn
  ``zero_division=0``); **multilabel_micro_f1**; **hamming** loss.
* distribution: **kl** = ``sum_k t_k (log t_k - log max(p_k, 1e-8))`` with
  ``0 log 0 = 0`` (natural log); **js** = Jensen-Shannon divergence (natural
  log, at most ln 2); **cosine** similarity; **ece** = class-wise expected
  calibration error with 15 equal-width bins on ``p_k`` against the bits
  ``t_k > 1/K``, averaged over the K classes (IS-2023).

``double_softmax=True`` reproduces the released evaluation code, which applies
a softmax to probabilities before thresholding (science.md d.1); it is off by
default and only affects the multi-label bits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

KL_EPSILON = 1e-8
ECE_BINS = 15

SINGLE_LABEL = ("uar", "weighted_accuracy", "macro_f1", "micro_f1")
MULTI_LABEL = ("multilabel_macro_f1", "multilabel_micro_f1", "hamming")
DISTRIBUTION = ("kl", "js", "cosine", "ece")
ALL = SINGLE_LABEL + MULTI_LABEL + DISTRIBUTION
#: Lower is better for these; higher for the rest.
LOWER_IS_BETTER = frozenset({"hamming", "kl", "js", "ece"})


def softmax(x: np.ndarray) -> np.ndarray:
    z = x - x.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _one_hot(labels: np.ndarray, k: int) -> np.ndarray:
    out = np.zeros((len(labels), k))
    out[np.arange(len(labels)), labels] = 1.0
    return out


def _div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.divide(a, b, out=np.zeros(np.broadcast(a, b).shape), where=b != 0)


@dataclass(frozen=True)
class StatMetric:
    """A metric in statistics form: ``finalize(stats(...).sum(0))``."""

    name: str
    kind: str  # "single", "multi" or "dist"
    finalize: Callable[[np.ndarray, int], np.ndarray]


# ----------------------------------------------------------------------------- statistics
# Every statistics matrix ends with a column of ones, so its sum holds the (weighted)
# number of utterances.


def _with_count(s: np.ndarray) -> np.ndarray:
    return np.hstack([s, np.ones((s.shape[0], 1))])


def single_label_stats(labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """[N, 3K + 1]: one-hot reference, one-hot argmax prediction, their product, 1."""
    k = probs.shape[1]
    t = _one_hot(np.asarray(labels), k)
    p = _one_hot(np.asarray(probs).argmax(axis=1), k)
    return _with_count(np.hstack([t, p, t * p]))


def multi_label_bits(targets: np.ndarray, probs: np.ndarray, *, double_softmax: bool = False
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Reference and predicted bits of the 1/K rule."""
    k = probs.shape[1]
    pred = softmax(probs) if double_softmax else probs
    return (targets > 1.0 / k).astype(np.float64), (pred > 1.0 / k).astype(np.float64)


def multi_label_stats(targets: np.ndarray, probs: np.ndarray, *, double_softmax: bool = False
                      ) -> np.ndarray:
    """[N, 3K + 1]: reference bits, predicted bits, their product, 1."""
    b, bh = multi_label_bits(targets, probs, double_softmax=double_softmax)
    return _with_count(np.hstack([b, bh, b * bh]))


def distribution_stats(targets: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """[N, 3 + K * 15 + 1]: per-utterance KL, JS, cosine; ECE gaps per (class, bin); 1."""
    t = np.asarray(targets, dtype=np.float64)
    p = np.asarray(probs, dtype=np.float64)
    n, k = p.shape

    def xlogy(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.where(a > 0, a * np.log(np.where(a > 0, b, 1.0)), 0.0)

    kl = (xlogy(t, t) - t * np.log(np.maximum(p, KL_EPSILON))).sum(axis=1)
    m = 0.5 * (t + p)
    js = 0.5 * ((xlogy(t, t) - xlogy(t, m)).sum(axis=1) + (xlogy(p, p) - xlogy(p, m)).sum(axis=1))
    cos = _div((t * p).sum(axis=1), np.linalg.norm(t, axis=1) * np.linalg.norm(p, axis=1))
    # ECE: per class k and bin b, the sum of (p_k - bit_k) over the utterances in the bin.
    bits = (t > 1.0 / k).astype(np.float64)
    bins = np.minimum((p * ECE_BINS).astype(np.int64), ECE_BINS - 1)  # [N, K]
    gap = np.zeros((n, k, ECE_BINS))
    gap[np.arange(n)[:, None], np.arange(k)[None, :], bins] = p - bits
    return _with_count(np.hstack([kl[:, None], js[:, None], cos[:, None], gap.reshape(n, -1)]))


STATS: dict[str, Callable[..., np.ndarray]] = {
    "single": single_label_stats,
    "multi": multi_label_stats,
    "dist": distribution_stats,
}

# ----------------------------------------------------------------------------- finalizers
# Each takes summed statistics T [..., D] and K, and returns the score [...].


def _split3(t: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return t[..., :k], t[..., k:2 * k], t[..., 2 * k:3 * k]


def _uar(t: np.ndarray, k: int) -> np.ndarray:
    ref, _, tp = _split3(t, k)
    present = ref > 0
    return _div((_div(tp, ref) * present).sum(-1), present.sum(-1).astype(np.float64))


def _accuracy(t: np.ndarray, k: int) -> np.ndarray:
    _, _, tp = _split3(t, k)
    return _div(tp.sum(-1), t[..., -1])


def _macro_f1_present(t: np.ndarray, k: int) -> np.ndarray:
    ref, pred, tp = _split3(t, k)
    present = (ref + pred) > 0
    return _div((_div(2 * tp, ref + pred) * present).sum(-1), present.sum(-1).astype(np.float64))


def _macro_f1_all(t: np.ndarray, k: int) -> np.ndarray:
    ref, pred, tp = _split3(t, k)
    return _div(2 * tp, ref + pred).mean(-1)


def _micro_f1(t: np.ndarray, k: int) -> np.ndarray:
    ref, pred, tp = _split3(t, k)
    return _div(2 * tp.sum(-1), ref.sum(-1) + pred.sum(-1))


def _hamming(t: np.ndarray, k: int) -> np.ndarray:
    ref, pred, tp = _split3(t, k)
    return _div((ref + pred - 2 * tp).sum(-1), k * t[..., -1])


def _dist_mean(col: int) -> Callable[[np.ndarray, int], np.ndarray]:
    def mean(t: np.ndarray, k: int) -> np.ndarray:
        return _div(t[..., col], t[..., -1])

    return mean


def _ece(t: np.ndarray, k: int) -> np.ndarray:
    gap = t[..., 3:3 + k * ECE_BINS]
    per_class = np.abs(gap).reshape(*gap.shape[:-1], k, ECE_BINS).sum(-1)  # [..., K]
    return _div(per_class.mean(-1), t[..., -1])


METRICS: dict[str, StatMetric] = {
    "uar": StatMetric("uar", "single", _uar),
    "weighted_accuracy": StatMetric("weighted_accuracy", "single", _accuracy),
    "macro_f1": StatMetric("macro_f1", "single", _macro_f1_present),
    "micro_f1": StatMetric("micro_f1", "single", _micro_f1),
    "multilabel_macro_f1": StatMetric("multilabel_macro_f1", "multi", _macro_f1_all),
    "multilabel_micro_f1": StatMetric("multilabel_micro_f1", "multi", _micro_f1),
    "hamming": StatMetric("hamming", "multi", _hamming),
    "kl": StatMetric("kl", "dist", _dist_mean(0)),
    "js": StatMetric("js", "dist", _dist_mean(1)),
    "cosine": StatMetric("cosine", "dist", _dist_mean(2)),
    "ece": StatMetric("ece", "dist", _ece),
}


def statistics(kind: str, targets: np.ndarray, probs: np.ndarray, labels: np.ndarray | None = None,
               *, double_softmax: bool = False) -> np.ndarray:
    """Per-utterance statistics of one kind (``single`` needs consensus ``labels``)."""
    if kind == "single":
        if labels is None:
            raise ValueError("single-label metrics need consensus labels")
        return single_label_stats(labels, probs)
    if kind == "multi":
        return multi_label_stats(targets, probs, double_softmax=double_softmax)
    if kind == "dist":
        return distribution_stats(targets, probs)
    raise ValueError(f"unknown metric kind {kind!r}")


def finalize(name: str, summed: np.ndarray, k: int) -> np.ndarray:
    """Score(s) of metric ``name`` from summed statistics of its kind."""
    return METRICS[name].finalize(summed, k)


def compute(names: list[str] | tuple[str, ...], targets: np.ndarray, probs: np.ndarray,
            labels: np.ndarray | None = None, *, double_softmax: bool = False) -> dict[str, float]:
    """Point estimates of several metrics on one test set."""
    k = probs.shape[1]
    cache: dict[str, np.ndarray] = {}
    out = {}
    for name in names:
        kind = METRICS[name].kind
        if kind not in cache:
            cache[kind] = statistics(kind, targets, probs, labels,
                                     double_softmax=double_softmax).sum(axis=0)
        out[name] = float(finalize(name, cache[kind], k))
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
