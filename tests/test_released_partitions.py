"""The iemocap-9class and msp-improv-4class tasks reproduce the released partitions exactly.

Reference: the M/P/D label files released with Chou's papers, in
../shared/data/chou-labels (read independently here with pandas).
"""

import numpy as np
import pandas as pd
import pytest

from conftest import shared
from serbench.tasks import prepare
from serbench.tasks.verify import verify

SPLIT = {"Train": "train", "Development": "dev", "Test": "test"}
CASES = [("iemocap-9class", 5, (6890, 7497, 10039)), ("msp-improv-4class", 6, (7615, 7913, 8385))]


def released(folder, letter, p):
    df = pd.read_csv(folder / f"{letter}_{p}.csv", index_col=0)
    df.index = df.index.str.replace(r"\.wav$", "", regex=True)
    return df


@pytest.mark.shared
@pytest.mark.parametrize(("name", "n_parts", "sizes"), CASES)
def test_membership_and_splits_match_every_partition(name, n_parts, sizes, home):
    folder = shared("chou-labels", name)
    task, _ = prepare(name, folder)
    assert task.n_folds == n_parts
    for p in range(1, n_parts + 1):
        for letter, rule, size in zip("MPD", ("MR", "PR", "AR"), sizes, strict=True):
            rel = released(folder, letter, p)
            assert len(rel) == size
            mine = {u: s for s in ("train", "dev", "test") for u in task.split(p, s, rule).ids}
            assert set(mine) == set(rel.index), (name, p, rule)
            theirs = rel["Split_Set"].map(SPLIT)
            assert all(mine[u] == theirs[u] for u in rel.index), (name, p, rule)


@pytest.mark.shared
def test_msp_improv_exceptions_are_exactly_the_listed_clips(home):
    folder = shared("chou-labels", "msp-improv-4class")
    task, _ = prepare("msp-improv-4class", folder)
    d = released(folder, "D", 1)
    t = d[["angry", "sad", "neutral", "happy"]].to_numpy()
    y = (t - 0.05 / 3) / (1 - 0.05 * 4 / 3)
    top = y.max(axis=1)
    unique = (np.abs(y - top[:, None]) < 1e-5).sum(axis=1) == 1
    majority = unique & (top > 0.5 + 1e-5)
    for p in range(1, 7):
        m = released(folder, "M", p)
        left_out = sorted(d.index[majority & ~d.index.isin(m.index)])
        assert left_out == sorted(task.spec.mr_exclusions)
    summary = task.summary()
    assert sorted(summary["dropped"]["mr_exclusions"]["ids"]) == sorted(task.spec.mr_exclusions)
    assert "out-of-set votes" in summary["dropped"]["mr_exclusions"]["reason"]


@pytest.mark.shared
@pytest.mark.parametrize(("name", "n_parts", "sizes"), CASES)
def test_verify_command_agrees_including_targets(name, n_parts, sizes, home):
    folder = shared("chou-labels", name)
    task, _ = prepare(name, folder)
    reports = verify(task, folder)
    assert len(reports) == 3 * n_parts
    assert all(r.ok for r in reports)
    assert max(r.target_max_abs_diff for r in reports) < 1e-6  # files keep 6 decimals


@pytest.mark.shared
def test_verify_against_another_corpus_says_so(home):
    """Another corpus's label folder used to be refused for its classes, suggesting
    --no-targets, which then reported every clip as differing."""
    from serbench.errors import InputError

    task, _ = prepare("msp-improv-4class", shared("chou-labels", "msp-improv-4class"))
    for targets in (True, False):
        with pytest.raises(InputError, match="another corpus's labels"):
            verify(task, shared("chou-labels", "iemocap-9class"), targets=targets)
