"""Rater-level metrics on hand-computed cases, with scikit-learn cross-checks."""

import math

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score, log_loss

from serbench import rater_metrics as R

# four votes of K = 3 classes: the distributions the model gives each rater on each clip
Q = np.array([[.7, .2, .1], [.2, .5, .3], [.1, .1, .8], [.4, .4, .2]])
Y = np.array([0, 2, 2, 1])


def test_vote_log_likelihood_by_hand():
    expected = (math.log(.7) + math.log(.3) + math.log(.8) + math.log(.4)) / 4
    assert R.vote_log_likelihood(Q, Y) == pytest.approx(expected)
    # = minus scikit-learn's log loss of the votes
    assert R.vote_log_likelihood(Q, Y) == pytest.approx(-log_loss(Y, Q, labels=[0, 1, 2]))


def test_vote_log_likelihood_clamps_zero_like_nll():
    q = np.array([[1.0, 0.0], [0.5, 0.5]])
    assert R.vote_log_likelihood(q, np.array([1, 0])) == pytest.approx(
        (math.log(1e-8) + math.log(.5)) / 2)


def test_vote_accuracy_by_hand_ties_go_to_lowest_index():
    # argmax: 0, 1, 2, 0 (the tie .4/.4 goes to class 0) against 0, 2, 2, 1
    assert R.vote_accuracy(Q, Y) == pytest.approx(2 / 4)


def test_no_votes_is_none_not_zero():
    empty = np.zeros((0, 3))
    assert R.vote_log_likelihood(empty, np.zeros(0, dtype=int)) is None
    assert R.vote_accuracy(empty, np.zeros(0, dtype=int)) is None
    u = R.per_rater_uar(empty, np.zeros(0, dtype=int), np.zeros(0, dtype=str), min_votes=1)
    assert u.mean is None and u.n_raters == 0


def test_bad_shapes_and_votes_are_errors():
    with pytest.raises(ValueError, match="votes must be class indices"):
        R.vote_accuracy(Q, np.array([0, 1, 2, 3]))
    with pytest.raises(ValueError, match=r"\[V, K\]"):
        R.vote_accuracy(Q, Y[:3])


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
def test_per_rater_uar_by_hand_and_against_sklearn():
    # rater a: votes 0, 0, 1 -> argmax 0, 1, 1: recall(0) = 1/2, recall(1) = 1 -> UAR 0.75
    # rater b: votes 2, 2 -> argmax 2, 0: recall(2) = 1/2 -> UAR 0.5
    # rater c: one vote: below min_votes = 2, left out
    q = np.array([[.8, .1, .1], [.2, .7, .1], [.1, .6, .3],
                  [.1, .1, .8], [.5, .2, .3], [.3, .3, .4]])
    y = np.array([0, 0, 1, 2, 2, 1])
    r = np.array(["a", "a", "a", "b", "b", "c"])
    u = R.per_rater_uar(q, y, r, min_votes=2)
    assert u.per_rater == pytest.approx({"a": 0.75, "b": 0.5})
    assert u.mean == pytest.approx(0.625)
    assert u.sd == pytest.approx(np.std([0.75, 0.5], ddof=1))
    assert u.n_raters == 2
    pred = q.argmax(axis=1)
    for rater, value in u.per_rater.items():
        mine = r == rater
        assert value == pytest.approx(balanced_accuracy_score(y[mine], pred[mine]))
    one = R.per_rater_uar(q, y, r, min_votes=3)
    assert one.per_rater == pytest.approx({"a": 0.75}) and one.sd is None


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
def test_per_rater_uar_random_cases_match_sklearn():
    rng = np.random.default_rng(4)
    q = rng.dirichlet(np.ones(5), size=300)
    y = rng.integers(0, 5, size=300)
    r = rng.choice([f"r{i}" for i in range(12)], size=300)
    u = R.per_rater_uar(q, y, r, min_votes=20)
    pred = q.argmax(axis=1)
    ref = {x: balanced_accuracy_score(y[r == x], pred[r == x]) for x in np.unique(r)
           if (r == x).sum() >= 20}
    assert u.per_rater == pytest.approx(ref)
    assert u.mean == pytest.approx(np.mean(list(ref.values())))


def test_minority_views_by_hand():
    counts = np.array([[3, 2, 0], [2, 1, 1], [1, 1, 0], [1, 0, 0]])
    n = np.array([5, 4, 4, 1])  # clip 3: 2 of its 4 raters answered out of set
    got = R.minority_views(counts, n)
    assert got.tolist() == [[False, True, False],   # 2/5 minority, 3/5 majority
                            [False, True, True],    # 2/4 is half: not a minority
                            [True, True, False],    # 1/4 each
                            [False, False, False]]  # a unanimous single vote


def test_minority_view_recall_by_hand_uses_the_1_over_k_rule():
    counts = np.array([[3, 2, 0], [2, 1, 1]])
    n = np.array([5, 4])
    probs = np.array([[.6, .4, .0], [.55, .1, .35]])
    assert R.minority_view_recall(counts, n, probs) == pytest.approx(2 / 3)
    # exactly 1/K is not above 1/K (the project's rule, metrics.predicted_bits)
    at = np.array([[1 / 3, 1 / 3, 1 / 3], [1 / 3, 1 / 3, 1 / 3]])
    assert R.minority_view_recall(counts, n, at) == 0.0
    # independent outputs are used as they are (not renormalised)
    ind = np.array([[.9, .9, .0], [.9, .0, .0]])
    assert R.minority_view_recall(counts, n, ind, independent=True) == pytest.approx(1 / 3)
    assert R.minority_view_recall(np.array([[4, 0, 0]]), np.array([4]), probs[:1]) is None


def test_minority_views_refuse_more_votes_than_raters():
    with pytest.raises(ValueError, match="more in-set votes than raters"):
        R.minority_views(np.array([[2, 2]]), np.array([3]))


def test_additive_vote_stats_give_the_point_values():
    clips = np.array([0, 1, 1, 3])
    s = R.vote_stats(Q, Y, clips, 4)
    assert s[:, 2].tolist() == [1, 2, 0, 1]
    total = s.sum(axis=0)
    assert R.ratio(total, 0, 2) == pytest.approx(R.vote_log_likelihood(Q, Y))
    assert R.ratio(total, 1, 2) == pytest.approx(R.vote_accuracy(Q, Y))
    # a resample that drew only the vote-less clip has no value (NaN), not 0
    w = np.array([[0.0, 0.0, 4.0, 0.0]])
    assert np.isnan(R.ratio(w @ s, 0, 2)[0])


def test_doctests():
    import doctest

    result = doctest.testmod(R)
    assert result.failed == 0 and result.attempted >= 2
