"""The ratings table: serbench's one canonical data model.

One row per (utterance, rater, label).  A rater who ticks three boxes of a
multi-choice question gives three rows; a source that only publishes vote
counts gives one row per vote with a null ``rater_id``.  Every aggregation rule
is a pure function of the vote counts derived from this table, so nothing a
rater said is thrown away before a task decides what to keep.

Columns (see :data:`SCHEMA`):

=============  ==========================================================
utterance_id   clip identifier, unique within the corpus
rater_id       who gave the label; null when the source has counts only
label          the label exactly as the source spells it
mapped_class   the task class it maps to, or ``"other"`` (out of set)
question       ``primary`` (single choice) or ``secondary`` (multi choice)
speaker_id     speaker of the clip (folds are speaker independent)
session        recording session, when the corpus has them
audio_path     absolute path of the audio file, when known
duration       seconds, when known
source         file the row was read from (for error messages)
source_row     1-based row/line in that file (for error messages)
=============  ==========================================================
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from . import atomic
from .errors import InputError

OTHER = "other"
PRIMARY = "primary"
SECONDARY = "secondary"
QUESTIONS = (PRIMARY, SECONDARY)  # the vocabulary of serbench.vocab.Question

SCHEMA = pa.schema(
    [
        pa.field("utterance_id", pa.string(), nullable=False),
        pa.field("rater_id", pa.string()),
        pa.field("label", pa.string(), nullable=False),
        pa.field("mapped_class", pa.string(), nullable=False),
        pa.field("question", pa.string(), nullable=False),
        pa.field("speaker_id", pa.string(), nullable=False),
        pa.field("session", pa.string()),
        pa.field("audio_path", pa.string()),
        pa.field("duration", pa.float64()),
        pa.field("source", pa.string(), nullable=False),
        pa.field("source_row", pa.int64(), nullable=False),
    ]
)
COLUMNS = tuple(SCHEMA.names)
#: Columns a reader must provide; ``mapped_class`` is added by :func:`map_labels`.
READER_COLUMNS = tuple(c for c in COLUMNS if c != "mapped_class")
_UTTERANCE_CONSTANT = ("speaker_id", "session", "audio_path", "duration")


def _where(df: pd.DataFrame, idx: int) -> tuple[str, int]:
    row = df.iloc[idx]
    return str(row["source"]), int(row["source_row"])


def check_columns(df: pd.DataFrame, required: Sequence[str], *, file: str | Path) -> None:
    """Raise if any required column is missing."""
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise InputError(
            f"missing column(s) {missing}; found {list(df.columns)}",
            file=file,
            fix="the file must have the columns " + ", ".join(required),
        )


def validate(df: pd.DataFrame, *, name: str = "ratings table") -> pd.DataFrame:
    """Check a reader's output and return it with canonical dtypes.

    Refuses: missing columns, empty ids or labels, unknown question kinds,
    duplicate (utterance, rater) answers to a primary question, duplicate
    (utterance, rater, label) answers to a secondary question, and utterances
    whose speaker, session, audio or duration differ between rows.
    """
    check_columns(df, READER_COLUMNS, file=name)
    if len(df) == 0:
        raise InputError("no ratings", file=name, fix="check that the source folder is right")
    df = df.reset_index(drop=True).copy()
    for col in ("utterance_id", "label", "question", "speaker_id", "source"):
        bad = df[col].isna() | (df[col].astype(str).str.strip() == "")
        if bad.any():
            f, r = _where(df, int(np.flatnonzero(bad.to_numpy())[0]))
            raise InputError(
                f"empty {col} ({int(bad.sum())} rows)",
                file=f,
                row=r,
                fix=f"every rating needs a {col}",
            )
    bad_q = ~df["question"].isin(QUESTIONS)
    if bad_q.any():
        i = int(np.flatnonzero(bad_q.to_numpy())[0])
        f, r = _where(df, i)
        raise InputError(
            f"question kind {df['question'].iloc[i]!r} is not one of {QUESTIONS}",
            file=f,
            row=r,
            fix="readers must tag each rating primary or secondary",
        )
    rated = df[df["rater_id"].notna()]
    for question, keys in (
        (PRIMARY, ["utterance_id", "rater_id"]),
        (SECONDARY, ["utterance_id", "rater_id", "label"]),
    ):
        part = rated[rated["question"] == question]
        dup = part.duplicated(keys, keep="first")
        if dup.any():
            first = part[dup].iloc[0]
            raise InputError(
                f"duplicate {question} rating: utterance {first['utterance_id']!r}, rater "
                f"{first['rater_id']!r} ({int(dup.sum())} duplicate rows in all)",
                file=first["source"],
                row=int(first["source_row"]),
                fix="keep one answer per rater and utterance (a repeated presentation must be "
                "resolved by the reader, as the corpus authors do)",
            )
    raw = df["duration"].where(df["duration"].astype(str).str.strip() != "", None)
    duration = pd.to_numeric(raw, errors="coerce")
    bad = (duration.isna() & raw.notna()) | (duration < 0)
    if bad.any():
        f, r = _where(df, int(np.flatnonzero(bad.to_numpy())[0]))
        raise InputError(f"duration {df['duration'][bad].iloc[0]!r} is not a number of seconds",
                         file=f, row=r, fix="give durations in seconds, or leave them empty")
    df["duration"] = duration.astype("float64")
    for col in _UTTERANCE_CONSTANT:
        n = df.groupby("utterance_id", sort=False)[col].nunique(dropna=False)
        if (n > 1).any():
            utt = n.index[np.flatnonzero((n > 1).to_numpy())[0]]
            rows = df[df["utterance_id"] == utt]
            values = sorted(map(str, rows[col].unique()))
            raise InputError(
                f"utterance {utt!r} has conflicting {col} values {values}",
                file=rows["source"].iloc[0],
                row=int(rows["source_row"].iloc[0]),
                fix=f"{col} must be the same on every rating of an utterance",
            )
    for col in (
        "utterance_id",
        "rater_id",
        "label",
        "question",
        "speaker_id",
        "session",
        "audio_path",
        "source",
    ):
        df[col] = df[col].astype("string")
    df["duration"] = df["duration"].astype("float64")
    df["source_row"] = df["source_row"].astype("int64")
    return df


def map_labels(
    df: pd.DataFrame,
    label_map: Mapping[str, str],
    other_labels: Sequence[str] = (),
    *,
    task_file: str | Path = "task.yaml",
    question: str | None = None,
) -> pd.DataFrame:
    """Add ``mapped_class``: the task class of each raw label, or ``other``.

    A raw label of the task's ``question`` that is neither mapped nor declared
    out of set is an error: a silent drop would change the vote counts and so
    every test set.  Answers to the other question never enter the vote counts
    (MSP-Podcast's free secondary tags, for a primary-emotion task); their
    unmapped labels become ``other`` so that the rows are kept (the
    co-occurrence statistics use them).  With ``question=None`` every row is
    strict.
    """
    df = df.copy()
    mapped = df["label"].map(dict(label_map))
    is_other = df["label"].isin(list(other_labels))
    if question is not None:
        is_other = is_other | (mapped.isna() & (df["question"] != question))
    unknown = mapped.isna() & ~is_other
    if unknown.any():
        labels = sorted(df.loc[unknown, "label"].astype(str).unique())
        f, r = _where(df, int(np.flatnonzero(unknown.to_numpy())[0]))
        raise InputError(
            f"unknown label(s) {labels} ({int(unknown.sum())} ratings)",
            file=f,
            row=r,
            fix="map them to a class under label_map, or list them under other.labels, "
            f"in {task_file}",
        )
    df["mapped_class"] = mapped.where(~is_other, OTHER).astype("string")
    return df[list(COLUMNS)]


@dataclass(frozen=True)
class VoteCounts:
    """Per-utterance vote counts for one question kind.

    ``counts[i, k]`` is the number of ratings of utterance ``ids[i]`` that map to
    class ``k``; ``other[i]`` counts its out-of-set ratings.  Utterances are in
    sorted id order so that every derived array is reproducible.
    """

    ids: np.ndarray
    classes: tuple[str, ...]
    counts: np.ndarray
    other: np.ndarray


def vote_counts(df: pd.DataFrame, classes: Sequence[str], question: str = PRIMARY) -> VoteCounts:
    """Count votes per utterance and class, vectorised.

    Every utterance of the table appears, also those with no vote for
    ``question`` (their counts are all zero and the AR rule drops them).
    """
    classes = tuple(classes)
    ids = np.array(sorted(df["utterance_id"].astype(str).unique()), dtype=object)
    part = df[df["question"] == question]
    utt_idx = np.searchsorted(ids, part["utterance_id"].astype(str).to_numpy())
    col = {c: k for k, c in enumerate(classes)}
    col[OTHER] = len(classes)
    cls_idx = part["mapped_class"].astype(str).map(col).to_numpy()
    if np.isnan(cls_idx.astype(float)).any():
        bad = part["mapped_class"][pd.isna(cls_idx)].iloc[0]
        raise InputError(f"mapped class {bad!r} is not a task class", file="ratings table")
    flat = utt_idx * (len(classes) + 1) + cls_idx.astype(np.int64)
    full = np.bincount(flat, minlength=len(ids) * (len(classes) + 1))
    full = full.reshape(len(ids), len(classes) + 1)
    return VoteCounts(
        ids=ids,
        classes=classes,
        counts=full[:, :-1].astype(np.int64),
        other=full[:, -1].astype(np.int64),
    )


def utterances(df: pd.DataFrame) -> pd.DataFrame:
    """One row per utterance: speaker, session, audio, duration, raters, ratings."""
    g = df.groupby("utterance_id", sort=True)
    out = g[list(_UTTERANCE_CONSTANT)].first()
    out["n_ratings"] = g.size()
    out["n_raters"] = g["rater_id"].nunique()
    out.index = out.index.astype(str)
    return out


def save(df: pd.DataFrame, path: str | Path, metadata: Mapping[str, str] | None = None) -> None:
    """Write the table as Parquet, atomically, with optional key/value metadata."""
    table = pa.Table.from_pandas(df[list(COLUMNS)], schema=SCHEMA, preserve_index=False)
    if metadata:
        meta = dict(table.schema.metadata or {})
        meta.update({k.encode(): v.encode() for k, v in metadata.items()})
        table = table.replace_schema_metadata(meta)
    atomic.write_with(path, lambda tmp: pq.write_table(table, tmp, compression="zstd"))


def load(path: str | Path) -> pd.DataFrame:
    """Read a table written by :func:`save`, checking its schema."""
    path = Path(path)
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise InputError(
            f"cannot read ratings table: {exc}",
            file=path,
            fix="delete it and run `serbench prepare` again",
        ) from exc
    missing = [c for c in COLUMNS if c not in table.column_names]
    if missing:
        raise InputError(
            f"ratings table lacks columns {missing}",
            file=path,
            fix="it was written by another serbench version; run `serbench prepare` again",
        )
    return (
        table.select(list(COLUMNS))
        .to_pandas(types_mapper=pd.ArrowDtype)
        .astype(
            {c: "string" for c in COLUMNS if c not in ("duration", "source_row")}
            | {"duration": "float64", "source_row": "int64"}
        )
    )
