"""What every reader returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..audio import duration


@dataclass
class ReadResult:
    """A reader's output: rating rows (reader columns), drops and provenance.

    ``drops`` maps a documented reason to the number of ratings (or clips, as
    the reason says) left out; ``files`` lists the source files read;
    ``counts_only`` is true when the source has no rater ids.
    """

    table: pd.DataFrame
    drops: dict[str, int] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    counts_only: bool = False
    notes: list[str] = field(default_factory=list)


def expand_counts(counts: pd.DataFrame, label_columns: dict[str, str]) -> pd.DataFrame:
    """One row per vote from a wide table of vote counts.

    ``counts`` has one row per utterance with a ``_row`` column (source row
    number) and count columns; ``label_columns`` maps count column -> label.
    Returns columns utterance_id, label, source_row (rater ids are unknown).
    """
    parts = []
    for col, label in label_columns.items():
        n = counts[col].to_numpy().astype(int)
        rep = counts.loc[counts.index.repeat(n), ["utterance_id", "_row"]]
        rep = rep.assign(label=label)
        parts.append(rep)
    out = pd.concat(parts, ignore_index=True).rename(columns={"_row": "source_row"})
    return out.sort_values(["utterance_id", "label"], kind="stable").reset_index(drop=True)


def locate_audio(wav: Path) -> tuple[str | None, float | None]:
    """A clip's resolved audio path and its duration, or ``(None, None)`` when absent.

    A file that exists but is unreadable or empty is an error naming it
    (:func:`serbench.audio.duration`), never a clip silently without audio.
    """
    if not wav.is_file():
        return None, None
    return str(wav.resolve()), duration(wav)
