"""Co-occurrence counts and penalty matrices on hand-computed cases (docs/methods.md#b.2)."""

import numpy as np
import pandas as pd
import pytest

from serbench.errors import InputError
from serbench.methods.cooccurrence import cooccurrence, penalty_matrix

CLASSES = ["A", "B", "C"]


def _table(rows):
    df = pd.DataFrame(rows, columns=["utterance_id", "rater_id", "question", "mapped_class"])
    df["source"] = "fixture.csv"
    return df


# u1: r1 A, r2 A, r3 B ; u2: r1 B, r2 C  (primary); secondary: u1 r1 {A, B}, r2 {B}
RATINGS = _table([
    ("u1", "r1", "primary", "A"), ("u1", "r2", "primary", "A"), ("u1", "r3", "primary", "B"),
    ("u2", "r1", "primary", "B"), ("u2", "r2", "primary", "C"),
    ("u1", "r1", "secondary", "A"), ("u1", "r1", "secondary", "B"), ("u1", "r2", "secondary", "B"),
])


def test_across_rater_counts_ordered_pairs_of_different_raters():
    # u1 ordered pairs: (r1,r2) A-A twice; A-B: (r1,r3), (r2,r3) and back -> 2 each way
    # u2: B-C and C-B once each
    c = cooccurrence(RATINGS, CLASSES, mode="across_rater")
    np.testing.assert_array_equal(c, [[2, 2, 0], [2, 0, 1], [0, 1, 0]])


def test_anonymous_single_choice_votes_give_the_same_across_counts():
    anon = RATINGS.copy()
    anon["rater_id"] = None
    np.testing.assert_array_equal(cooccurrence(anon, CLASSES), cooccurrence(RATINGS, CLASSES))


def test_within_rater_on_multi_choice_answers():
    c = cooccurrence(RATINGS, CLASSES, mode="within_rater", question="secondary")
    np.testing.assert_array_equal(c, [[1, 1, 0], [1, 2, 0], [0, 0, 0]])
    both = cooccurrence(RATINGS, CLASSES, mode="both", question="secondary")
    across = cooccurrence(RATINGS, CLASSES, mode="across_rater", question="secondary")
    # across on u1: n = (1, 2, 0): n n^T - within = [[0, 1, 0], [1, 2, 0], 0]
    np.testing.assert_array_equal(across, [[0, 1, 0], [1, 2, 0], [0, 0, 0]])
    np.testing.assert_array_equal(both, across + c)


def test_processed_multihot_and_training_subset():
    # u1 y = (2/3, 1/3, 0) -> bits (1, 0, 0); u2 y = (0, .5, .5) -> (0, 1, 1)
    c = cooccurrence(RATINGS, CLASSES, mode="processed_multihot")
    np.testing.assert_array_equal(c, [[1, 0, 0], [0, 1, 1], [0, 1, 1]])
    only_u2 = cooccurrence(RATINGS, CLASSES, utterance_ids=["u2"])
    np.testing.assert_array_equal(only_u2, [[0, 0, 0], [0, 0, 1], [0, 1, 0]])


def test_within_rater_needs_rater_ids_on_secondary_answers():
    anon = RATINGS.copy()
    anon["rater_id"] = None
    with pytest.raises(InputError, match="needs rater ids"):
        cooccurrence(anon, CLASSES, mode="within_rater", question="secondary")


def test_penalty_matrix_normalisations():
    c = np.array([[5, 3, 0], [3, 4, 1], [0, 1, 2]])
    np.testing.assert_allclose(penalty_matrix(c, "global_max"),
                               [[0, 0, 1], [0, 0, 2 / 3], [1, 2 / 3, 0]])
    np.testing.assert_allclose(penalty_matrix(c, "row"),
                               [[0, 5 / 8, 1], [5 / 8, 0, 7 / 8], [1, 2 / 3, 0]])
    np.testing.assert_array_equal(np.diag(penalty_matrix(c)), 0)
