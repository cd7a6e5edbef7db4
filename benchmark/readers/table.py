"""Generic reader: one CSV or JSON-lines file of ratings, so any in-house corpus is one file away.

``--source`` is the file, or a folder holding ``ratings.csv`` (or the file the
task names with ``corpus.options.file``).  One row per rater answer:

================  ========  ================================================
column            needed    meaning
================  ========  ================================================
``utterance_id``  yes       clip id
``rater_id``      no        who answered (empty: a vote from an unknown rater)
``label``         yes       the label as the rater gave it (the task maps it)
``speaker_id``    yes       speaker (folds are by speaker or session)
``session``       no        recording session
``question``      no        ``primary`` (default) or ``secondary`` (multi-choice)
``audio``         no        audio file, relative to the ratings file's folder
================  ========  ================================================

Other column names map with ``corpus.options.columns`` (``{utterance_id:
clip, rater_id: worker, ...}``).  A multi-choice answer is several rows.
Audio named but missing is an error naming the row (``allow_missing_audio:
true`` keeps such clips without audio, counted in the drops).  Every other
check (duplicates, conflicting speakers, unknown labels) is the ratings
table's own validation, which names the file and row too.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..audio import duration as audio_duration
from ..errors import InputError
from ..paths import confined
from ..ratings import PRIMARY, QUESTIONS, check_columns
from .base import ReadResult

REQUIRED = ("utterance_id", "label", "speaker_id")
OPTIONAL = ("rater_id", "session", "question", "audio")


def _read(path: Path) -> pd.DataFrame:
    try:
        if path.suffix.lower() in (".json", ".jsonl", ".ndjson"):
            return pd.read_json(path, lines=True, dtype=False).astype(object)
        return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot parse the ratings file: {exc}", file=path,
                         fix="one header row and one row per rater answer (CSV, UTF-8), or "
                         "one JSON object per line") from None


def read_table(source: str | Path | None = None, *, file: str = "ratings.csv",
               columns: dict[str, str] | None = None, allow_missing_audio: bool = False,
               **_: object) -> ReadResult:
    if source is None:
        raise InputError("this task reads a ratings file: pass --source FILE or FOLDER")
    path = Path(source)
    if path.is_dir():
        path = confined(path, file, what="ratings file", file="the task's corpus.options.file")
    if not path.is_file():
        raise InputError("ratings file not found", file=path,
                         fix=f"pass the file, or a folder holding {file}")
    raw = _read(path)
    raw = raw.rename(columns={v: k for k, v in (columns or {}).items()})
    check_columns(raw, list(REQUIRED), file=path)
    df = pd.DataFrame({c: raw.get(c, None) for c in (*REQUIRED, *OPTIONAL)})
    df["source_row"] = range(2, len(df) + 2) if path.suffix.lower() == ".csv" else \
        range(1, len(df) + 1)
    for c in REQUIRED:
        empty = df[c].isna() | (df[c].astype(str).str.strip() == "")
        if empty.any():
            row = int(df.loc[empty, "source_row"].iloc[0])
            raise InputError(f"empty {c}", file=path, row=row, fix=f"every row needs a {c}")
        df[c] = df[c].astype(str).str.strip()
    df["question"] = df["question"].fillna(PRIMARY).astype(str).str.strip().str.lower()
    bad = ~df["question"].isin(QUESTIONS)
    if bad.any():
        row = int(df.loc[bad, "source_row"].iloc[0])
        raise InputError(f"unknown question {df.loc[bad, 'question'].iloc[0]!r}", file=path,
                         row=row, fix=f"question is one of {list(QUESTIONS)}")
    df["rater_id"] = df["rater_id"].astype(object).where(df["rater_id"].notna(), None)
    drops: dict[str, int] = {}
    df["audio_path"], df["duration"] = None, None
    audio = df["audio"].astype(object).where(df["audio"].notna(), None)
    seen: dict[str, tuple[str | None, float | None]] = {}
    missing = 0
    for i, rel in audio.items():
        if rel is None or str(rel).strip() == "":
            continue
        rel = str(rel).strip()
        if rel not in seen:
            full = confined(path.parent, rel, what="audio file", file=path,
                            row=int(df.at[i, "source_row"])).resolve()
            if not full.is_file():
                if not allow_missing_audio:
                    raise InputError(f"audio file {rel!r} not found", file=path,
                                     row=int(df.at[i, "source_row"]),
                                     fix="fix the path (relative to the ratings file) or set "
                                         "allow_missing_audio: true in the task's options")
                seen[rel] = (None, None)
                missing += 1
            else:
                try:
                    seen[rel] = (str(full), audio_duration(full))
                except InputError as exc:  # name the ratings row that lists the file
                    raise InputError(f"{exc.problem} ({rel!r})", file=path,
                                     row=int(df.at[i, "source_row"]),
                                     fix="re-export the file as WAV or FLAC, or remove the "
                                         "row") from None
        df.at[i, "audio_path"], df.at[i, "duration"] = seen[rel]
    if missing:
        drops["audio files listed but missing (clips kept without audio)"] = missing
    df["source"] = str(path)
    table = df.drop(columns=["audio"])
    return ReadResult(table=table, drops=drops, files=[str(path)],
                      counts_only=bool(table["rater_id"].isna().all()))
