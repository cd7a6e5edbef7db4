"""Reader of the built-in synthetic demo corpus (see :mod:`serbench.demo`)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..demo import ensure_demo_corpus
from ..demo.profiles import EMOTIONS, LETTERS
from ..errors import InputError
from ..ratings import check_columns
from .base import ReadResult


def read_demo(source: str | Path | None = None, **_: object) -> ReadResult:
    """Read ``votes.csv`` and ``clips.csv``; generate the corpus first when no source is given."""
    root = Path(source) if source is not None else ensure_demo_corpus()
    clips_file, votes_file = root / "clips.csv", root / "votes.csv"
    for f in (clips_file, votes_file):
        if not f.exists():
            raise InputError(
                "file not found", file=f, fix="omit --source to use the generated demo corpus"
            )
    clips = pd.read_csv(clips_file, dtype=str)
    check_columns(clips, ["utterance_id", "speaker_id", "audio", "duration"], file=clips_file)
    votes = pd.read_csv(votes_file, dtype=str)
    check_columns(votes, ["utterance_id", "rater_id", "question", "label"], file=votes_file)
    votes["source_row"] = votes.index + 2  # header is line 1
    unknown = ~votes["utterance_id"].isin(clips["utterance_id"])
    if unknown.any():
        i = int(unknown.to_numpy().nonzero()[0][0])
        raise InputError(
            f"vote for utterance {votes['utterance_id'].iloc[i]!r} not in clips.csv",
            file=votes_file,
            row=i + 2,
            fix="regenerate the demo corpus",
        )
    clips["audio_path"] = [str((root / a).resolve()) for a in clips["audio"]]
    clips["duration"] = clips["duration"].astype(float)
    table = votes.merge(
        clips[["utterance_id", "speaker_id", "audio_path", "duration"]],
        on="utterance_id",
        how="left",
    )
    table["session"] = None
    table["source"] = str(votes_file)
    answer = [f"answer_{e}" for e in EMOTIONS]
    truth = None
    if set(answer) <= set(clips.columns):  # version 2 and later store the known truth
        truth = clips.set_index("utterance_id")[answer].astype(float)
        truth.columns = list(LETTERS)
    return ReadResult(table=table, files=[str(clips_file), str(votes_file)], truth=truth)
