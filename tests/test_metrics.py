"""Metrics against hand-computed cases and against scikit-learn / scipy on random cases."""

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.special import rel_entr
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    f1_score,
    hamming_loss,
)

from serbench import metrics as M


def test_hand_computed_single_label():
    # reference 0 0 1 2, prediction 0 1 1 1 (argmax of one-hot probs)
    labels = np.array([0, 0, 1, 2])
    probs = np.eye(3)[[0, 1, 1, 1]]
    r = M.compute(M.SINGLE_LABEL, np.eye(3)[labels], probs, labels)
    # recalls: 1/2, 1, 0 -> UAR 1/2; accuracy 2/4
    assert r["uar"] == pytest.approx(0.5)
    assert r["weighted_accuracy"] == pytest.approx(0.5)
    # F1: class 0: 2*1/(2+1) = 2/3; class 1: 2*1/(1+3) = 1/2; class 2: 0 -> mean 7/18
    assert r["macro_f1"] == pytest.approx(7 / 18)
    assert r["micro_f1"] == pytest.approx(0.5)


def test_hand_computed_multi_label_and_double_softmax():
    # K = 4, threshold 0.25. Targets: (0.2, 0.4, 0.4, 0) -> bits 0110; (1, 0, 0, 0) -> 1000
    t = np.array([[0.2, 0.4, 0.4, 0.0], [1.0, 0.0, 0.0, 0.0]])
    p = np.array([[0.1, 0.6, 0.2, 0.1], [0.3, 0.3, 0.3, 0.1]])  # bits 0100, 1110
    r = M.compute(M.MULTI_LABEL, t, p)
    # per class (TP, FP, FN): c0 (1,0,0) F1 1; c1 (1,1,0) 2/3; c2 (0,1,1) 0; c3 0/0 -> 0
    assert r["multilabel_macro_f1"] == pytest.approx((1 + 2 / 3 + 0 + 0) / 4)
    # micro: TP 2, FP 2, FN 1 -> 4 / 7
    assert r["multilabel_micro_f1"] == pytest.approx(4 / 7)
    assert r["hamming"] == pytest.approx(3 / 8)
    # The released code's second softmax: softmax(p)_k > 1/K iff exp(p_k) > mean(exp(p)),
    # a higher bar than p_k > mean(p) = 1/K (Jensen), so it can only drop bits.
    # (0.71, 0.29, 0, 0): log mean exp = log((e^.71 + e^.29 + 2) / 4) = 0.2946 > 0.29.
    p = np.array([[0.71, 0.29, 0.0, 0.0]])
    assert M.multi_label_bits(t[:1], p)[1].tolist() == [[1, 1, 0, 0]]
    assert M.multi_label_bits(t[:1], p, double_softmax=True)[1].tolist() == [[1, 0, 0, 0]]


def test_hand_computed_distribution():
    t = np.array([[0.5, 0.5, 0.0]])
    p = np.array([[0.25, 0.5, 0.25]])
    r = M.compute(M.DISTRIBUTION, t, p)
    assert r["kl"] == pytest.approx(0.5 * np.log(2))  # 0.5 log(0.5/0.25) + 0.5 log 1
    assert r["cosine"] == pytest.approx(0.375 / (np.sqrt(0.5) * np.sqrt(0.375)))
    # m = (t + p) / 2 = (0.375, 0.5, 0.125)
    js = 0.5 * (0.5 * np.log(0.5 / 0.375) + 0) + 0.5 * (0.25 * np.log(0.25 / 0.375) + 0
                                                        + 0.25 * np.log(0.25 / 0.125))
    assert r["js"] == pytest.approx(js)
    # ECE: bits (1, 1, 0); bins of p: 0.25 -> bin 3, 0.5 -> bin 7, 0.25 -> bin 3;
    # |gap| per class = |0.25 - 1|, |0.5 - 1|, |0.25 - 0| -> mean 0.5
    assert r["ece_bits"] == pytest.approx(0.5)


def test_kl_epsilon_bounds_zero_predictions():
    r = M.compute(["kl"], np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]]))
    assert r["kl"] == pytest.approx(-np.log(M.KL_EPSILON))


@pytest.mark.parametrize("seed", range(5))
def test_random_cases_against_sklearn_and_scipy(seed):
    rng = np.random.default_rng(seed)
    n, k = 300, 5
    probs = rng.dirichlet(np.ones(k) * 0.7, size=n)
    targets = rng.dirichlet(np.ones(k) * 0.5, size=n)
    labels = rng.integers(0, k - 1, size=n)  # class k-1 never in the reference
    pred = probs.argmax(axis=1)
    r = M.compute(M.ALL, targets, probs, labels)
    assert r["uar"] == pytest.approx(balanced_accuracy_score(labels, pred))
    assert r["weighted_accuracy"] == pytest.approx(accuracy_score(labels, pred))
    assert r["macro_f1"] == pytest.approx(f1_score(labels, pred, average="macro", zero_division=0))
    assert r["micro_f1"] == pytest.approx(f1_score(labels, pred, average="micro"))
    b, bh = (targets > 1 / k).astype(int), (probs > 1 / k).astype(int)
    assert r["multilabel_macro_f1"] == pytest.approx(
        f1_score(b, bh, average="macro", zero_division=0))
    assert r["multilabel_micro_f1"] == pytest.approx(
        f1_score(b, bh, average="micro", zero_division=0))
    assert r["hamming"] == pytest.approx(hamming_loss(b, bh))
    assert r["kl"] == pytest.approx(rel_entr(targets, probs).sum(axis=1).mean())
    assert r["js"] == pytest.approx((jensenshannon(targets, probs, axis=1) ** 2).mean())
    cos = (targets * probs).sum(1) / np.linalg.norm(targets, axis=1) / np.linalg.norm(probs, axis=1)
    assert r["cosine"] == pytest.approx(cos.mean())


def test_ece_against_a_loop():
    rng = np.random.default_rng(3)
    n, k = 500, 4
    probs = rng.dirichlet(np.ones(k), size=n)
    targets = rng.dirichlet(np.ones(k) * 0.4, size=n)
    bits = targets > 1 / k
    eces = []
    for c in range(k):
        total = 0.0
        for b in range(15):
            lo, hi = b / 15, (b + 1) / 15
            inb = (probs[:, c] >= lo) & ((probs[:, c] < hi) if b < 14 else (probs[:, c] <= hi))
            if inb.any():
                total += inb.sum() / n * abs(probs[inb, c].mean() - bits[inb, c].mean())
        eces.append(total)
    assert M.compute(["ece_bits"], targets, probs)["ece_bits"] == pytest.approx(np.mean(eces))


def test_weights_are_resampling():
    rng = np.random.default_rng(1)
    probs = rng.dirichlet(np.ones(3), size=50)
    labels = rng.integers(0, 3, size=50)
    idx = rng.integers(0, 50, size=50)
    w = np.bincount(idx, minlength=50).astype(float)
    s = M.statistics("single", None, probs, labels)
    assert M.finalize("uar", w @ s, 3) == pytest.approx(
        balanced_accuracy_score(labels[idx], probs[idx].argmax(1)))
