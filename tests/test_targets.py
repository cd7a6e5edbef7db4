"""Label smoothing, multi-hot, class-balanced weights: hand-computed values."""

import numpy as np
import pytest

from serbench.targets import (
    class_balanced_weights,
    hard_labels,
    label_smooth,
    multi_hot,
    sample_weights,
    unsmooth,
)


def test_smoothing_matches_released_values():
    onehot = np.eye(9)[[0]]
    t = label_smooth(onehot, 0.05)
    assert t[0, 0] == pytest.approx(0.95)
    assert t[0, 1] == pytest.approx(0.00625)  # 0.05 / 8, as in the IEMOCAP files
    assert label_smooth(np.eye(4)[[0]])[0, 1] == pytest.approx(0.05 / 3)  # 0.016667 (IMPROV)
    # docs/methods.md#1: Ses01F_script03_1_F010, excited 1/3 and happy 2/3 -> 0.320833, 0.635417
    y = np.zeros(9)
    y[4], y[8] = 1 / 3, 2 / 3
    t = label_smooth(y)
    assert round(t[4], 6) == 0.320833 and round(t[8], 6) == 0.635417
    assert t.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(unsmooth(t), y, atol=1e-12)


def test_multi_hot_threshold_is_strict_and_survives_smoothing():
    # docs/methods.md#d.1, the worked example of the 1/K rule:
    # votes (A, S, S, N, A) over (N, A, S, H) -> (0.2, 0.4, 0.4, 0) -> (0, 1, 1, 0)
    y = np.array([[0.2, 0.4, 0.4, 0.0], [0.25, 0.25, 0.25, 0.25]])
    assert multi_hot(y).tolist() == [[0, 1, 1, 0], [0, 0, 0, 0]]
    assert multi_hot(label_smooth(y)).tolist() == multi_hot(y).tolist()


def test_class_balanced_weights_hand_computed():
    # 4 targets, K=3; bits above 1/3 (0.3 is not): n = (3, 1, 0 -> 1); beta = 3/4
    # w = 0.25 / (1 - 0.75**n) = (16/37, 1, 1); times 3 / sum(= 90/37) -> (8/15, 37/30, 37/30)
    t = np.array([[1, 0, 0], [1, 0, 0], [0.7, 0.3, 0], [0, 1, 0]], dtype=float)
    w = class_balanced_weights(t)
    np.testing.assert_allclose(w, [8 / 15, 37 / 30, 37 / 30])
    np.testing.assert_allclose(sample_weights(t, w), [8 / 15, 8 / 15, 0.7 * 8 / 15 + 0.3 * 37 / 30,
                                                      37 / 30])


def test_hard_labels_tie_breaks():
    y = np.array([[0.5, 0.5, 0.0], [0.1, 0.2, 0.7]])
    assert hard_labels(y).tolist() == [0, 2]
    picks = {int(hard_labels(y, np.random.default_rng(s))[0]) for s in range(20)}
    assert picks == {0, 1}  # random among the tied top classes only
