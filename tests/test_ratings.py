"""The ratings table: validation errors, vote counting, storage, atomic writes."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from serbench import atomic
from serbench import ratings as rt
from serbench.errors import InputError


def rows(*items):
    """(utterance, rater, label, question, speaker) tuples -> a reader-style table."""
    cols = ["utterance_id", "rater_id", "label", "question", "speaker_id"]
    df = pd.DataFrame(items, columns=cols)
    df["session"] = None
    df["audio_path"] = None
    df["duration"] = None
    df["source"] = "votes.csv"
    df["source_row"] = np.arange(len(df)) + 2
    return df


GOOD = rows(
    ("u1", "r1", "A", "primary", "s1"), ("u1", "r2", "A", "primary", "s1"),
    ("u1", "r3", "X", "primary", "s1"), ("u2", "r1", "N", "primary", "s2"),
    ("u2", "r1", "A", "secondary", "s2"), ("u2", "r1", "N", "secondary", "s2"),
    ("u3", None, "N", "primary", "s2"), ("u3", None, "N", "primary", "s2"),
)


def test_vote_counts_hand_computed():
    df = rt.map_labels(rt.validate(GOOD), {"A": "anger", "N": "neutral"}, other_labels=["X"])
    vc = rt.vote_counts(df, ["anger", "neutral"])
    assert vc.ids.tolist() == ["u1", "u2", "u3"]
    assert vc.counts.tolist() == [[2, 0], [0, 1], [0, 2]]
    assert vc.other.tolist() == [1, 0, 0]
    sec = rt.vote_counts(df, ["anger", "neutral"], "secondary")
    assert sec.counts.tolist() == [[0, 0], [1, 1], [0, 0]]


def test_missing_columns_named():
    with pytest.raises(InputError, match=r"missing column\(s\) \['rater_id'\]"):
        rt.validate(GOOD.drop(columns=["rater_id"]))


def test_duplicate_primary_answer_names_file_and_row():
    bad = pd.concat([GOOD, rows(("u1", "r2", "N", "primary", "s1"))], ignore_index=True)
    bad.loc[len(bad) - 1, "source_row"] = 42
    with pytest.raises(InputError) as exc:
        rt.validate(bad)
    msg = str(exc.value)
    assert "votes.csv, row 42" in msg and "'u1'" in msg and "'r2'" in msg and "fix:" in msg


def test_duplicate_secondary_label_refused_but_distinct_labels_fine():
    dup = pd.concat([GOOD, rows(("u2", "r1", "A", "secondary", "s2"))], ignore_index=True)
    with pytest.raises(InputError, match="duplicate secondary rating"):
        rt.validate(dup)


def test_unknown_label_names_labels_row_and_fix():
    with pytest.raises(InputError) as exc:
        rt.map_labels(rt.validate(GOOD), {"A": "anger", "N": "neutral"}, task_file="t.yaml")
    msg = str(exc.value)
    assert "['X']" in msg and "row 4" in msg and "other.labels" in msg and "t.yaml" in msg


def test_conflicting_speaker_refused():
    bad = GOOD.copy()
    bad.loc[1, "speaker_id"] = "s9"
    with pytest.raises(InputError, match="conflicting speaker_id"):
        rt.validate(bad)


def test_bad_question_kind():
    bad = GOOD.copy()
    bad.loc[0, "question"] = "tertiary"
    with pytest.raises(InputError, match="question kind 'tertiary'"):
        rt.validate(bad)


def test_parquet_roundtrip(tmp_path: Path):
    df = rt.map_labels(rt.validate(GOOD), {"A": "anger", "N": "neutral"}, other_labels=["X"])
    rt.save(df, tmp_path / "r.parquet", {"k": "v"})
    back = rt.load(tmp_path / "r.parquet")
    assert back.shape == df.shape
    assert back["rater_id"].isna().sum() == 2
    assert back["mapped_class"].tolist() == df["mapped_class"].tolist()


def test_corrupt_table_is_a_clear_error(tmp_path: Path):
    (tmp_path / "r.parquet").write_bytes(b"not parquet")
    with pytest.raises(InputError, match="serbench prepare"):
        rt.load(tmp_path / "r.parquet")


def test_atomic_write_keeps_previous_file_on_failure(tmp_path: Path):
    dest = tmp_path / "out.json"
    atomic.write_json(dest, {"a": 1})

    def boom(tmp: Path) -> None:
        tmp.write_text("half written")
        raise OSError("disk full")

    with pytest.raises(OSError):
        atomic.write_with(dest, boom)
    assert dest.read_text() == '{\n  "a": 1\n}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]  # no temp file left
