"""Reader of the label files released with Chou's papers (EML / EMO-SUPERB format).

A partition CSV (``D_<p>.csv``, the all-inclusive rule) has one row per
utterance: the id (first, unnamed column, or ``FileName``), K class columns
holding the *label-smoothed* vote distribution (epsilon 0.05), then
``SpkrID``, ``Gender``, ``Split_Set`` and possibly dimensional columns; the
class order is in ``config.json``.

The raw per-rater annotations are not released, so this reader recovers each
utterance's vote counts from its distribution: it inverts the smoothing and
finds the smallest denominator n <= 200 for which every class share is k/n
within 1e-5 (the files keep 6 decimals, so the rounding error is below 1e-6
while distinct fractions with denominators <= 200 differ by > 2.5e-5).  Each
vote becomes a row with a null rater id.  The ``.wav`` suffix of ids is
dropped.  Splits come from the task's fold definition, not from this file;
``serbench tasks verify`` compares them with ``Split_Set``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError
from ..paths import confined
from ..ratings import PRIMARY, check_columns
from ..targets import DEFAULT_EPSILON, unsmooth
from .base import ReadResult, expand_counts

MAX_DENOMINATOR = 200
TOLERANCE = 1e-5


def recover_counts(
    y: np.ndarray, max_n: int = MAX_DENOMINATOR, tol: float = TOLERANCE
) -> np.ndarray:
    """Smallest integer counts proportional to each row of ``y`` (0 where none is found)."""
    n_rows = len(y)
    found = np.zeros(n_rows, dtype=np.int64)
    for n in range(1, max_n + 1):
        todo = found == 0
        if not todo.any():
            break
        scaled = y[todo] * n
        ok = np.all(np.abs(scaled - np.round(scaled)) < tol * n, axis=1)
        found[np.flatnonzero(todo)[ok]] = n
    counts = np.round(y * found[:, None]).astype(np.int64)
    counts[found == 0] = 0
    return counts


def read_released_labels(
    source: str | Path | None,
    *,
    partition: int = 1,
    rule_file: str = "D",
    epsilon: float = DEFAULT_EPSILON,
    question: str = PRIMARY,
    speaker_column: str = "SpkrID",
    session_regex: str | None = None,
    **_: object,
) -> ReadResult:
    if source is None:
        raise InputError(
            "this task is built from released label files",
            fix="serbench prepare TASK --source DIR (the folder holding D_1.csv and config.json)",
        )
    root = Path(source)
    path = confined(root, f"{rule_file}_{partition}.csv", what="label file",
                    file="the task's corpus.options (rule_file, partition)")
    config = root / "config.json"
    for f in (path, config):
        if not f.exists():
            raise InputError(
                "file not found",
                file=f,
                fix="point --source at the released label folder of this corpus",
            )
    try:
        classes = json.loads(config.read_text())["categorical"]["emo_type"]
    except (KeyError, json.JSONDecodeError) as exc:
        raise InputError(
            f"cannot read the class order: {exc}",
            file=config,
            fix="config.json needs categorical.emo_type",
        ) from exc
    df = pd.read_csv(path)
    id_col = "FileName" if "FileName" in df.columns else df.columns[0]
    check_columns(df, [id_col, *classes, speaker_column], file=path)
    df["_row"] = np.arange(len(df)) + 2
    df["utterance_id"] = df[id_col].astype(str).str.replace(r"\.wav$", "", regex=True)
    dup = df["utterance_id"].duplicated()
    if dup.any():
        raise InputError(
            f"duplicate utterance id {df['utterance_id'][dup].iloc[0]!r}",
            file=path,
            row=int(df["_row"][dup].iloc[0]),
            fix="use the unmodified released file",
        )
    t = df[classes].apply(pd.to_numeric, errors="coerce").to_numpy()
    bad = np.isnan(t).any(axis=1) | (np.abs(t.sum(axis=1) - 1.0) > 1e-4)
    if bad.any():
        raise InputError(
            "class columns must be numbers summing to 1 (a smoothed distribution)",
            file=path,
            row=int(df["_row"][bad].iloc[0]),
            fix="use the unmodified released file",
        )
    counts = recover_counts(np.clip(unsmooth(t, epsilon), 0.0, 1.0))
    lost = counts.sum(axis=1) == 0
    if lost.any():
        raise InputError(
            f"cannot recover vote counts (epsilon {epsilon}?) for {int(lost.sum())} rows",
            file=path,
            row=int(df["_row"][lost].iloc[0]),
            fix="check corpus.options.epsilon in the task file",
        )
    wide = pd.DataFrame(counts, columns=classes)
    wide["utterance_id"] = df["utterance_id"].to_numpy()
    wide["_row"] = df["_row"].to_numpy()
    votes = expand_counts(wide, {c: c for c in classes})
    meta = df.set_index("utterance_id")
    votes["speaker_id"] = votes["utterance_id"].map(meta[speaker_column].astype(str))
    if session_regex:
        pattern = re.compile(session_regex)
        sessions = {u: (m.group(1) if (m := pattern.search(u)) else None) for u in meta.index}
        missing = [u for u, s in sessions.items() if s is None]
        if missing:
            raise InputError(
                f"session pattern {session_regex!r} does not match id {missing[0]!r}",
                file=path,
                row=int(meta.loc[missing[0], "_row"]),
                fix="fix corpus.options.session_regex in the task file",
            )
        votes["session"] = votes["utterance_id"].map(lambda u: str(int(str(sessions[u]))))
    else:
        votes["session"] = None
    votes["rater_id"] = None
    votes["question"] = question
    votes["audio_path"] = None
    votes["duration"] = None
    votes["source"] = str(path)
    return ReadResult(
        table=votes,
        files=[str(path), str(config)],
        counts_only=True,
        notes=["vote counts recovered from smoothed released distributions"],
    )
