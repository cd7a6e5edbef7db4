"""What every reader returns, and the damage-aware CSV loading they share."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..audio import duration


@dataclass
class ReadResult:
    """A reader's output: rating rows (reader columns), drops and provenance.

    ``drops`` maps a documented reason to the number of ratings (or clips, as
    the reason says) left out; ``files`` lists the source files read;
    ``counts_only`` is true when the source has no rater ids.  ``truth``, for
    a simulated corpus only, holds each clip's known answer distribution
    (index utterance id, one column per source label), which the scorer shows
    as the ``oracle`` reference row.
    """

    table: pd.DataFrame
    drops: dict[str, int] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    counts_only: bool = False
    notes: list[str] = field(default_factory=list)
    truth: pd.DataFrame | None = None


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


def read_csv(path: Path, *, what: str = "file", fix: str = "use the unmodified file",
             **kwargs: Any) -> pd.DataFrame:
    """``pandas.read_csv`` that turns a damaged file into one :class:`InputError`.

    A file cut in the middle of a line is the usual damage (an interrupted
    download or copy): cut inside a quoted field, pandas fails with a parser
    error; cut between fields, the last row silently loses its trailing
    columns.  Both are named here with the row and the likely cause, before any
    check downstream misreads the short row.
    """
    import re

    from ..errors import InputError

    try:
        df = pd.read_csv(path, **kwargs)
    except pd.errors.ParserError as exc:
        text = str(exc)
        m = re.search(r"EOF inside string starting (?:at|on) (?:row|line) (\d+)", text)
        if m:
            raise InputError(f"the {what} ends inside a quoted field that starts at row "
                             f"{int(m.group(1)) + 1}: is it truncated?", file=path,
                             row=int(m.group(1)) + 1, fix=fix) from None
        m = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", text)
        if m:
            raise InputError(f"row {m.group(2)} has {m.group(3)} fields where the header has "
                             f"{m.group(1)}", file=path, row=int(m.group(2)), fix=fix) from None
        raise InputError(f"cannot parse the {what}: {text.strip()}", file=path, fix=fix) from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"cannot read the {what}: {exc}", file=path,
                         fix=f"{fix} (UTF-8 text, comma-separated)") from None
    except OSError as exc:
        raise InputError(f"cannot read the {what}: {exc.strerror}", file=path, fix=fix) from None
    _check_last_row(path, df, what=what, fix=fix)
    return df


def _check_last_row(path: Path, df: pd.DataFrame, *, what: str, fix: str) -> None:
    """A last line without its trailing newline and with fewer fields than the header: cut."""
    import csv

    from ..errors import InputError

    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            if size == 0:
                return
            fh.seek(max(0, size - 65536))
            tail = fh.read()
    except OSError:
        return
    if tail.endswith(b"\n") or b"\n" not in tail:
        return
    last = tail.rsplit(b"\n", 1)[1].decode("utf-8", errors="replace")
    fields = next(csv.reader([last]), [])
    if len(fields) < len(df.columns):
        row = len(df) + 1  # the header is row 1
        raise InputError(f"the last row ({row}) has {len(fields)} of the header's "
                         f"{len(df.columns)} columns and no line end: is the {what} truncated?",
                         file=path, row=row, fix=fix)
