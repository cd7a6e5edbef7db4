"""MR / PR / AR rules on small hand-computed cases (docs/methods.md#a.2)."""

import numpy as np
import pytest

from serbench.rules import all_inclusive, apply_rule, distribution, majority, plurality

# utterance:          u0       u1       u2       u3       u4
COUNTS = np.array([[3, 1, 0], [2, 2, 0], [1, 1, 1], [0, 0, 0], [3, 1, 1]])
OTHER = np.array([0, 0, 0, 2, 1])  # u3 has only out-of-set votes; u4 one "Other"


def test_plurality_keeps_unique_top_only():
    res = plurality(COUNTS)
    assert res.keep.tolist() == [True, False, False, False, True]
    assert res.labels.tolist() == [0, 0]
    assert res.targets.tolist() == [[1, 0, 0], [1, 0, 0]]


def test_majority_denominator_policy():
    # u0: 3 > 4/2 kept under both policies.
    # u4: 3 of 5 in-set votes (> 2.5) but 3 of 6 votes with "Other" (not > 3).
    all_votes = majority(COUNTS, OTHER, denominator="all_votes")
    in_set = majority(COUNTS, OTHER, denominator="in_set")
    assert all_votes.keep.tolist() == [True, False, False, False, False]
    assert in_set.keep.tolist() == [True, False, False, False, True]
    # Without out-of-set votes the policies agree.
    assert majority(COUNTS).keep.tolist() == in_set.keep.tolist()


def test_majority_half_is_not_a_majority():
    res = majority(np.array([[2, 1, 1], [2, 1, 0]]))
    assert res.keep.tolist() == [False, True]  # 2/4 = 0.5 is not > 0.5; 2/3 is


def test_all_inclusive_keeps_every_in_set_vote():
    res = all_inclusive(COUNTS)
    assert res.keep.tolist() == [True, True, True, False, True]
    np.testing.assert_allclose(res.targets[0], [0.75, 0.25, 0.0])
    np.testing.assert_allclose(res.targets[2], [1 / 3, 1 / 3, 1 / 3])
    assert res.labels.tolist() == [0, -1, -1, 0]  # ties have no consensus class


def test_nesting_on_random_counts():
    rng = np.random.default_rng(0)
    counts = rng.integers(0, 4, size=(2000, 5))
    other = rng.integers(0, 2, size=2000)
    mr, pr, ar = (apply_rule(r, counts, other).keep for r in ("MR", "PR", "AR"))
    assert (mr <= pr).all() and (pr <= ar).all()
    assert mr.sum() < pr.sum() < ar.sum()


def test_distribution_zero_rows_stay_zero():
    np.testing.assert_array_equal(distribution(np.array([[0, 0], [1, 3]])), [[0, 0], [0.25, 0.75]])


@pytest.mark.parametrize("bad", [np.array([1, 2]), np.array([[1, -1]])])
def test_bad_counts_refused(bad):
    with pytest.raises(ValueError):
        plurality(bad)
