"""Scoring run cells: values, intervals, the 3x3 table, paired tests, validation errors."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from runs_fixture import make_runs, noisy_oracle, prior
from sklearn.metrics import balanced_accuracy_score, f1_score

from serbench.errors import InputError
from serbench.records import find_records, read_predictions
from serbench.scoring import load_probs, score_record
from serbench.summaries import aggregate, compare
from serbench.tasks import load_task


@pytest.fixture
def demo(home):
    return load_task("demo")


def test_cell_scores_match_independent_computation(demo, tmp_path: Path):
    make_runs(demo, tmp_path, "oracle", noisy_oracle, rules=("AR",), folds=(2,))
    (record,), _ = find_records(tmp_path)
    s = score_record(demo, record, n_resamples=200)
    ar = demo.split(2, "test", "AR")
    probs = noisy_oracle(demo, 2, "AR", 0, ar.ids)
    pos = {u: i for i, u in enumerate(ar.ids)}
    mr = demo.split(2, "test", "MR")
    p_mr = probs[[pos[u] for u in mr.ids]]
    assert s.point["MR"]["uar"] == pytest.approx(balanced_accuracy_score(mr.labels, p_mr.argmax(1)))
    bits = (ar.targets > 1 / 6).astype(int)
    assert s.point["AR"]["multilabel_macro_f1"] == pytest.approx(
        f1_score(bits, (probs > 1 / 6).astype(int), average="macro", zero_division=0))
    assert s.point["AR"]["uar"] is None  # no consensus label on the AR test set
    assert s.n == {"MR": len(mr), "PR": len(demo.split(2, "test", "PR")), "AR": 72}
    lo, hi = s.interval("AR", "multilabel_macro_f1")
    assert lo < s.point["AR"]["multilabel_macro_f1"] < hi
    again = score_record(demo, record, n_resamples=200)
    assert again.interval("AR", "kl") == s.interval("AR", "kl")  # seeded


def test_three_by_three_on_a_fixture(demo, tmp_path: Path):
    make_runs(demo, tmp_path, "oracle", noisy_oracle)
    records, bad = find_records(tmp_path)
    assert len(records) == 15 and not bad
    agg = aggregate(demo, [score_record(demo, r, n_resamples=50) for r in records])
    assert all(agg.complete.values())
    for train in ("MR", "PR", "AR"):
        for test in ("MR", "PR", "AR"):
            values = []
            for fold in range(1, 6):
                ar = demo.split(fold, "test", "AR")
                probs = noisy_oracle(demo, fold, train, 0, ar.ids)
                split = demo.split(fold, "test", test)
                pos = {u: i for i, u in enumerate(ar.ids)}
                p = probs[[pos[u] for u in split.ids]]
                values.append(f1_score((split.targets > 1 / 6).astype(int),
                                       (p > 1 / 6).astype(int), average="macro", zero_division=0))
            assert agg.mean[(train, test, "multilabel_macro_f1")] == pytest.approx(np.mean(values))


def test_incomplete_training_rule_is_missing_not_zero(demo, tmp_path: Path):
    make_runs(demo, tmp_path, "prior", prior, rules=("AR",))
    make_runs(demo, tmp_path, "prior", prior, rules=("MR",), folds=(1, 2, 3))
    records, _ = find_records(tmp_path)
    agg = aggregate(demo, [score_record(demo, r, n_resamples=0) for r in records])
    assert agg.complete == {"MR": False, "PR": False, "AR": True}
    assert agg.folds_done == {"MR": 3, "PR": 0, "AR": 5}
    assert ("MR", "AR", "multilabel_macro_f1") not in agg.mean
    assert ("AR", "AR", "multilabel_macro_f1") in agg.mean


def test_paired_comparison(demo, tmp_path: Path):
    make_runs(demo, tmp_path / "a", "oracle", noisy_oracle, rules=("AR",))
    make_runs(demo, tmp_path / "b", "prior", prior, rules=("AR",))
    load = [[(r.key, *load_probs(demo, r)) for r in find_records(tmp_path / x)[0]]
            for x in ("a", "b")]
    res = compare(demo, load[0], load[1], metric="multilabel_macro_f1", train_rule="AR",
                  test_rule="AR", n_resamples=300)
    assert res.cells == 5 and res.n_subsets == 200
    assert res.diff > 0.2 and res.diff_ci[0] > 0
    assert res.p_bootstrap < 0.01 and res.p_subsets < 1e-6
    same = compare(demo, load[0], load[0], metric="kl", train_rule="AR", test_rule="AR",
                   n_resamples=100)
    assert same.diff == 0 and same.p_bootstrap == 1.0
    with pytest.raises(InputError, match="consensus label"):
        compare(demo, load[0], load[1], metric="uar", train_rule="AR", test_rule="AR")


# ----------------------------------------------------------------------------- bad input


def _cell(demo, tmp_path: Path) -> tuple[Path, np.ndarray]:
    (folder,) = make_runs(demo, tmp_path, "oracle", noisy_oracle, rules=("AR",), folds=(1,))
    return folder, demo.split(1, "test", "AR").ids


def _rewrite(folder: Path, change) -> Path:
    df = pd.read_parquet(folder / "predictions.parquet")
    df = change(df)
    path = folder / "predictions.csv"
    df.to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.iloc[1:], r"1 test utterance\(s\) have no prediction"),
        (lambda d: d.assign(utterance_id=d["utterance_id"].where(d.index != 3, "spk99_x")),
         "not in this fold's test set"),
        (lambda d: d.assign(p_anger=d["p_anger"].where(d.index != 5, np.nan)), "NaN or infinite"),
        (lambda d: d.assign(p_anger=d["p_anger"] - 2 * d["p_anger"].where(d.index == 7, 0)),
         "negative probability"),
        (lambda d: d.drop(columns=["p_sad"]), "wrong class columns"),
        (lambda d: d.assign(p_sad=d["p_sad"] + 0.01), "do not sum to 1"),
        (lambda d: pd.concat([d, d.iloc[:1]]), "predicted twice"),
    ],
)
def test_prediction_errors(demo, tmp_path: Path, change, message):
    folder, ids = _cell(demo, tmp_path)
    path = _rewrite(folder, change)
    with pytest.raises(InputError, match=message) as exc:
        read_predictions(path, demo.spec.classes, ids)
    assert "predictions.csv" in str(exc.value) and "fix:" in str(exc.value)


def test_fingerprint_mismatch_is_refused(demo, tmp_path: Path):
    folder, _ = _cell(demo, tmp_path)
    rec = json.loads((folder / "record.json").read_text())
    rec["task_fingerprint"] = "0" * 64
    (folder / "record.json").write_text(json.dumps(rec))
    (record,), _ = find_records(tmp_path)
    with pytest.raises(InputError, match="task fingerprint 000000000000"):
        score_record(demo, record)


def test_unreadable_records_are_reported(demo, tmp_path: Path):
    folder, _ = _cell(demo, tmp_path)
    (folder.parent / "fold2-AR-seed0").mkdir()
    (folder.parent / "fold2-AR-seed0" / "record.json").write_text("{not json")
    records, bad = find_records(tmp_path)
    assert len(records) == 1 and len(bad) == 1 and "unreadable run record" in bad[0][1]
