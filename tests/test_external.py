"""Predictions made outside serbench: the round trip through an export, and every refusal."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import datasets
import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyarrow import ArrowException
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from serbench import leaderboard as lb
from serbench.errors import FingerprintMismatch, InputError
from serbench.export import export_metadata, export_task
from serbench.external import check_predictions, import_predictions
from serbench.tasks import load_task


def prosody(path: str) -> np.ndarray:
    """Log-energy and zero-crossing statistics of 25 ms frames, and the duration."""
    x, sr = sf.read(path, dtype="float32")
    frames = x[: len(x) // 400 * 400].reshape(-1, 400)
    energy = np.log(np.mean(frames**2, axis=1) + 1e-8)
    zcr = np.mean(np.abs(np.diff(np.sign(frames), axis=1)) > 0, axis=1)
    return np.array([energy.mean(), energy.std(), zcr.mean(), zcr.std(), len(x) / sr])


def test_round_trip_export_sklearn_score_leaderboard(home, tmp_path):
    """export demo -> load_from_disk -> scikit-learn outside serbench -> score -> leaderboard."""
    out = export_task(load_task("demo"), tmp_path / "demo-export")
    # ---- outside serbench: only datasets, soundfile and scikit-learn from here ...
    dd = datasets.load_from_disk(str(out))
    fingerprint = export_metadata(dd)["fingerprint"]
    classes = dd["fold1_train"].features["label"].names
    k = len(classes)
    rows, truth = [], {}
    for f in range(1, 6):
        train = dd[f"fold{f}_train"]
        train = train.select(np.flatnonzero(train["in_pr"]))  # clips with a consensus label
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
        model.fit(np.stack([prosody(p) for p in train["audio_path"]]), train["label"])
        test = dd[f"fold{f}_test"]
        test = test.select(np.flatnonzero(test["in_ar"]))  # the scored clips: the AR test set
        p = np.zeros((len(test), k))
        p[:, model.classes_] = model.predict_proba(
            np.stack([prosody(a) for a in test["audio_path"]]))
        rows.append(pd.DataFrame({"utterance_id": test["utterance_id"], "fold": f,
                                  **{f"p_{c}": p[:, i] for i, c in enumerate(classes)}}))
        truth[f] = (np.array(test["distribution"]), p)
    preds = tmp_path / "preds.csv"
    pd.concat(rows).assign(task_fingerprint=fingerprint).to_csv(preds, index=False)
    # ---- ... and back in
    runs = tmp_path / "runs"
    res = subprocess.run([sys.executable, "-m", "serbench.cli", "score", str(preds),
                          "--task", "demo", "--name", "sk-prosody", "--version", "1",
                          "--train-rule", "PR", "--runs", str(runs), "--resamples", "20",
                          "--json"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert len(json.loads(res.stdout)["records"]) == 5
    record = json.loads((runs / "demo" / "sk-prosody" / "fold3-PR-seed0" / "record.json")
                        .read_text())
    assert record["submission"]["plugin"] == "external"
    assert record["external"]["sha256"] == hashlib.sha256(preds.read_bytes()).hexdigest()
    board = lb.build(runs, n_resamples=20)
    agg = next(a for a in board.tasks[0].aggregates if a.submission == "sk-prosody")
    assert agg.complete["PR"] and agg.folds_done["PR"] == 5 and not board.skipped
    # the leaderboard's number, recomputed with scikit-learn from the export alone
    f1 = [f1_score(t > 1 / k, p > 1 / k, average="macro", zero_division=0)
          for t, p in truth.values()]
    assert agg.mean[("PR", "AR", "multilabel_macro_f1")] == pytest.approx(np.mean(f1), abs=1e-9)
    lb.write(board, tmp_path / "board")
    assert "| sk-prosody (external) | 1 | PR |" in (tmp_path / "board" / "README.md").read_text()


@pytest.fixture
def demo(home):
    return load_task("demo")


def oracle(task, seed: int = 0) -> pd.DataFrame:
    """Predictions of every fold's AR test set: the true distribution mixed with noise."""
    rng = np.random.default_rng(seed)
    parts = []
    for f in range(1, task.n_folds + 1):
        s = task.split(f, "test", "AR")
        p = 0.7 * s.targets + 0.3 * rng.dirichlet(np.ones(task.spec.k), size=len(s))
        parts.append(pd.DataFrame({"utterance_id": s.ids.astype(str), "fold": f,
                                   **{f"p_{c}": p[:, i] for i, c in enumerate(task.spec.classes)}}))
    return pd.concat(parts, ignore_index=True)


def write(df: pd.DataFrame, path: Path) -> Path:
    df.to_csv(path, index=False)
    return path


def test_cells_are_the_folds_test_sets_in_any_column_order(demo, tmp_path):
    df = oracle(demo)
    df = df[["fold", *reversed([c for c in df.columns if c.startswith("p_")]), "utterance_id"]]
    path = tmp_path / "p.parquet"
    df.drop(columns="fold").to_parquet(path)  # no fold column: each clip is tested once
    fp = demo.fingerprint["fingerprint"]
    cells = check_predictions(demo, path, name="x", fingerprint=fp)
    assert [(c.key.fold, c.key.train_rule, c.key.seed) for c in cells] == \
        [(f, "AR", 0) for f in range(1, 6)]
    for c in cells:
        s = demo.split(c.key.fold, "test", "AR")
        assert list(c.ids) == list(s.ids)
        want = df[df["fold"] == c.key.fold].set_index("utterance_id").loc[list(s.ids)]
        np.testing.assert_allclose(c.probs, want[[f"p_{k}" for k in demo.spec.classes]],
                                   atol=1e-12)


def _mutate(df: pd.DataFrame, how: str) -> pd.DataFrame:
    df = df.copy()
    if how == "missing id":
        return df.drop(index=3)
    if how == "duplicate id":
        return pd.concat([df, df.iloc[[5]]], ignore_index=True)
    if how == "unknown id":
        df.loc[7, "utterance_id"] = "no-such-clip"
    elif how == "id of another fold":
        other = df.loc[df["fold"] == 2, "utterance_id"].iloc[0]
        df.loc[0, "utterance_id"] = other
    elif how == "missing column":
        return df.drop(columns="p_sad")
    elif how == "extra column":
        df["p_contempt"] = 0.0
    elif how == "no id column":
        return df.drop(columns="utterance_id")
    elif how == "not summing to 1":
        df.loc[10, "p_anger"] += 0.1
    elif how == "NaN":
        df.loc[10, "p_anger"] = np.nan
    elif how == "negative":
        df.loc[10, ["p_anger", "p_sad"]] = [-0.1, df.loc[10, "p_sad"] + 0.1]
    elif how == "bad rule":
        df["train_rule"] = "XX"
    return df


@pytest.mark.parametrize("how, message, row", [
    ("missing id", "1 test utterance(s) of fold 1 (rule AR, seed 0) have no prediction", None),
    ("duplicate id", "is predicted twice for fold 1", None),
    ("unknown id", "not a test clip of demo", 9),
    ("id of another fold", "tested in fold(s) [2]", 2),
    ("missing column", "missing probability column(s) ['p_sad']", None),
    ("extra column", "['p_contempt'] are not classes of demo", None),
    ("no id column", "missing column 'utterance_id'", None),
    ("not summing to 1", "probabilities do not sum to 1", 12),
    ("NaN", "NaN or infinite probability", 12),
    ("negative", "negative probability", 12),
    ("bad rule", "training rule 'XX' is not one of", 2),
])
def test_each_defect_is_one_clear_error(demo, tmp_path, how, message, row):
    path = write(_mutate(oracle(demo), how), tmp_path / "preds.csv")
    with pytest.raises(InputError) as exc:
        check_predictions(demo, path, name="x", fingerprint=demo.fingerprint["fingerprint"])
    text = str(exc.value)
    assert message in text and "preds.csv" in text and "fix:" in text
    if how == "duplicate id":  # the second copy is the last line of the file
        row = len(oracle(demo)) + 2
    if row is not None:
        assert f"row {row}" in text


def test_fingerprint_is_required_and_must_match(demo, tmp_path):
    path = write(oracle(demo), tmp_path / "preds.csv")
    with pytest.raises(InputError, match="no task fingerprint"):
        check_predictions(demo, path, name="x")
    with pytest.raises(FingerprintMismatch, match="abcdefabcdef"):
        check_predictions(demo, path, name="x", fingerprint="abcdef" * 10 + "abcd")
    fp = demo.fingerprint["fingerprint"]
    path = write(oracle(demo).assign(task_fingerprint=fp), tmp_path / "with-column.csv")
    assert len(check_predictions(demo, path, name="x")) == 5
    with pytest.raises(InputError, match="differs from the fingerprint passed"):
        check_predictions(demo, path, name="x", fingerprint="0" * 64)


def test_records_are_written_once_and_never_replaced(demo, tmp_path):
    fp = demo.fingerprint["fingerprint"]
    df = oracle(demo)
    df.loc[0, "p_anger"] += 5e-5  # within the runner's tolerance: renormalised, as predict_proba
    path = write(df, tmp_path / "preds.csv")
    runs = tmp_path / "runs"
    folders = import_predictions(demo, path, name="elsewhere", runs=runs, fingerprint=fp,
                                 seed=3, train_rule="MR")
    assert [f.name for f in folders] == [f"fold{f}-MR-seed3" for f in range(1, 6)]
    stored = pd.read_parquet(folders[0] / "predictions.parquet")
    np.testing.assert_allclose(stored.filter(like="p_").sum(axis=1), 1.0, atol=1e-12)
    before = {p: p.read_bytes() for p in runs.rglob("*") if p.is_file()}
    with pytest.raises(InputError, match="already have a run record"):
        import_predictions(demo, write(oracle(demo, seed=1), tmp_path / "other.csv"),
                           name="elsewhere", runs=runs, fingerprint=fp, seed=3, train_rule="MR")
    assert {p: p.read_bytes() for p in runs.rglob("*") if p.is_file()} == before


def test_cli_refusal_is_exit_2_without_traceback(home, tmp_path):
    demo = load_task("demo")
    path = write(oracle(demo).drop(columns="p_fear"), tmp_path / "preds.csv")
    res = subprocess.run([sys.executable, "-m", "serbench.cli", "score", str(path),
                          "--task", "demo", "--name", "x", "--runs", str(tmp_path / "runs"),
                          "--fingerprint", demo.fingerprint["fingerprint"]],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 2
    assert "p_fear" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "runs").exists()


def test_non_numeric_probability_columns_are_refused(home, tmp_path):
    """Probabilities stored as text in a Parquet file used to be parsed and accepted; they
    are refused (the file, the column, the fix), as are booleans and a CSV value that is not
    a number (its row named).  Nothing is written; numbers in the same file are accepted."""
    demo = load_task("demo")
    df = oracle(demo)
    as_text = df.assign(p_fear=df["p_fear"].map(repr))  # '0.123...' strings: each would parse
    cases = [
        (as_text, "p.parquet", "column p_fear holds str values, not numbers", None),
        (df.assign(p_sad=df["p_sad"] > 0.5), "b.parquet", "column p_sad holds bool values",
         None),
        (df.astype({"p_happy": object}).assign(p_happy=lambda d: d["p_happy"].where(
            d.index != 4, "0.2x")), "c.csv", "column p_happy holds '0.2x', not a number", 6),
    ]
    for frame, name, expect, row in cases:
        path = tmp_path / name
        frame.to_parquet(path) if name.endswith(".parquet") else frame.to_csv(path, index=False)
        res = subprocess.run([sys.executable, "-m", "serbench.cli", "score", str(path),
                              "--task", "demo", "--name", "x", "--runs", str(tmp_path / "runs"),
                              "--fingerprint", demo.fingerprint["fingerprint"]],
                             capture_output=True, text=True, timeout=300)
        assert res.returncode == 2, (name, res.stdout, res.stderr)
        msg = " ".join(res.stderr.split())
        assert res.stderr.startswith("error:") and "Traceback" not in res.stderr, res.stderr
        assert expect in msg and str(path) in msg and "fix:" in msg, msg
        if row is not None:  # CSV line: header is line 1, the frame's row 4 is line 6
            assert f"{path}, row {row}" in msg
        else:
            assert "astype('float64')" in msg
        assert not (tmp_path / "runs").exists()
    path = tmp_path / "good.parquet"
    df.to_parquet(path)
    cells = check_predictions(demo, path, name="x", fingerprint=demo.fingerprint["fingerprint"])
    assert len(cells) == demo.n_folds


# ----------------------------------------------------------------------------- property campaign

CELLS = st.one_of(st.none(), st.just(""), st.text(max_size=5), st.floats(allow_nan=True),
                  st.integers(-2, 3), st.sampled_from(["c1", "c2", "c3", "AR", "MR", "XX"]))
COLUMNS = ["utterance_id", "fold", "train_rule", "seed", "task_fingerprint", "p_angry",
           "p_happy", "p_neutral"]




@settings(max_examples=int(os.environ.get("SERBENCH_HYPOTHESIS_EXAMPLES", "60")), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=st.lists(st.tuples(st.integers(0, 3), st.sampled_from(COLUMNS), CELLS),
                      max_size=3),
       drop=st.sampled_from([None, *COLUMNS]), dup=st.booleans(), parquet=st.booleans())
def test_any_corruption_is_accepted_correctly_or_named(tiny, tmp_path, edits, drop, dup,
                                                       parquet):
    fp = tiny.fingerprint["fingerprint"]
    df = pd.DataFrame({"utterance_id": ["c1", "c3", "c1", "c3"], "fold": [1, 2, 1, 2],
                       "train_rule": ["AR", "AR", "MR", "MR"], "seed": 0,
                       "task_fingerprint": fp, "p_angry": [0.5, 0.1, 0.6, 0.2],
                       "p_happy": [0.3, 0.1, 0.2, 0.2], "p_neutral": [0.2, 0.8, 0.2, 0.6]})
    df = df.astype(object)
    for row, col, value in edits:
        df.at[row, col] = value
    if dup:
        df = pd.concat([df, df.iloc[[0]]], ignore_index=True)
    if drop:
        df = df.drop(columns=[drop])
    path = tmp_path / ("p.parquet" if parquet else "p.csv")
    try:
        if parquet:
            df.astype(str).to_parquet(path) if edits else df.to_parquet(path)
        else:
            df.to_csv(path, index=False)
    except (ValueError, TypeError, ArrowException):  # pandas cannot write this mix: not ours
        return
    try:
        cells = check_predictions(tiny, path, name="x")
    except InputError as exc:
        assert path.name in str(exc)
        return
    for c in cells:  # what is accepted is a valid cell
        assert list(c.ids) == list(tiny.split(c.key.fold, "test", "AR").ids)
        assert np.isfinite(c.probs).all() and (c.probs >= 0).all()
        np.testing.assert_allclose(c.probs.sum(axis=1), 1.0, atol=1e-12)
