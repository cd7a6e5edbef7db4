"""Property tests: the vectorised rules agree with a per-clip reading of docs/methods.md#a.2."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from serbench.rules import all_inclusive, majority, plurality

votes = st.integers(1, 8).flatmap(
    lambda k: st.tuples(
        arrays(np.int64, st.tuples(st.integers(1, 30), st.just(k)), elements=st.integers(0, 6)),
        st.integers(0, 3),
    )
)


def naive(row: list[int], other: int) -> tuple[bool, bool, bool]:
    top = max(row)
    unique = row.count(top) == 1 and top > 0
    return unique and top > (sum(row) + other) / 2, unique, sum(row) > 0


@settings(max_examples=300, deadline=None)
@given(votes)
def test_rules_match_naive_definitions(case):
    counts, extra = case
    other = np.full(len(counts), extra)
    mr, pr, ar = majority(counts, other), plurality(counts), all_inclusive(counts)
    for i, row in enumerate(counts.tolist()):
        assert (bool(mr.keep[i]), bool(pr.keep[i]), bool(ar.keep[i])) == naive(row, extra)
    assert (mr.labels == counts[mr.keep].argmax(axis=1)).all()
    np.testing.assert_allclose(ar.targets.sum(axis=1), 1.0)
