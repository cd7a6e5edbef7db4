"""Pieces shared by the readers of other toolkits' manifests (EmoBox, SpeechBrain, datasets).

Those manifests name audio files and labels but rarely speakers, and they
name files relative to a data folder the user chooses.  Here: resolving an
audio reference inside its folder (:func:`serbench.paths.confined`; an
absolute path only when the task allows it), speakers from a regular
expression over the clip id, and the reader-columns table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..audio import duration as audio_duration
from ..errors import InputError
from ..paths import confined
from ..ratings import PRIMARY

MISSING_AUDIO = "audio files listed but missing (clips kept without audio)"


@dataclass
class AudioFiles:
    """Resolves audio references once each; counts the missing ones it was allowed to keep."""

    allow_missing: bool = False
    allow_absolute: bool = False
    missing: int = 0
    _seen: dict[tuple[str, str], tuple[str | None, float | None]] = field(default_factory=dict)

    def resolve(self, root: Path, ref: str, *, file: str | Path,
                row: int | str | None) -> tuple[str | None, float | None]:
        """(absolute path, duration) of ``ref`` under ``root``; (None, None) if kept missing."""
        key = (str(root), ref)
        if key in self._seen:
            return self._seen[key]
        if Path(ref).is_absolute() and self.allow_absolute:
            full = Path(ref)
        else:
            try:
                full = confined(root, ref, what="audio file", file=file,
                                row=row if isinstance(row, int) else None)
            except InputError as exc:
                raise InputError(exc.problem, file=file, row=row,
                                 fix="name audio relative to the data folder, or set "
                                     "allow_absolute_audio: true in the task's corpus options "
                                     "if you trust this manifest") from None
        if not full.is_file():
            if not self.allow_missing:
                raise InputError(f"audio file {ref!r} not found under {root}", file=file, row=row,
                                 fix="point the data folder option at the corpus audio, or set "
                                     "allow_missing_audio: true in the task's corpus options")
            self.missing += 1
            self._seen[key] = (None, None)
            return None, None
        try:
            found = (str(full.resolve()), audio_duration(full))
        except InputError as exc:
            raise InputError(f"{exc.problem} ({ref!r})", file=file, row=row,
                             fix="re-export the file as WAV or FLAC, or remove the entry") from None
        self._seen[key] = found
        return found

    def drops(self) -> dict[str, int]:
        return {MISSING_AUDIO: self.missing} if self.missing else {}


def speakers_from_ids(ids: list[str], pattern: str, *, file: str | Path,
                      rows: list[int | str]) -> list[str]:
    """Group 1 (or the group named ``speaker``) of ``pattern`` searched in each clip id."""
    try:
        rx = re.compile(pattern)
    except re.error as exc:
        raise InputError(f"speaker_pattern {pattern!r} is not a regular expression: {exc}",
                         fix="fix corpus.options.speaker_pattern in the task file") from None
    if rx.groups < 1:
        raise InputError(f"speaker_pattern {pattern!r} has no group", fix="put the speaker part "
                         "in parentheses, e.g. '^cafe-(\\d+)-'")
    group: int | str = "speaker" if "speaker" in rx.groupindex else 1
    out = []
    for utt, row in zip(ids, rows, strict=True):
        m = rx.search(utt)
        if m is None or not m.group(group):
            raise InputError(f"speaker_pattern {pattern!r} finds no speaker in clip id {utt!r}",
                             file=file, row=row,
                             fix="fix corpus.options.speaker_pattern in the task file")
        out.append(str(m.group(group)))
    return out


def table(rows: dict[str, list], *, source: str | Path) -> pd.DataFrame:
    """The reader-columns table from per-rating lists (missing columns are null)."""
    n = len(rows["utterance_id"])
    df = pd.DataFrame({
        "utterance_id": rows["utterance_id"],
        "rater_id": rows.get("rater_id", [None] * n),
        "label": rows["label"],
        "question": rows.get("question", [PRIMARY] * n),
        "speaker_id": rows["speaker_id"],
        "session": rows.get("session", [None] * n),
        "audio_path": rows.get("audio_path", [None] * n),
        "duration": rows.get("duration", [None] * n),
        "source": rows.get("source", [str(source)] * n),
        "source_row": rows["source_row"],
    })
    return df.astype({"rater_id": object, "session": object, "audio_path": object,
                      "duration": object})
