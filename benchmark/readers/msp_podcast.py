"""MSP-Podcast reader (Lotfian & Busso 2019; Busso et al. 2025), also BIIC-Podcast.

Files read (``--source`` is the release folder holding ``Labels/`` and ``Audios/``):

* ``Labels/labels_consensus.csv``: one row per clip.  Used columns:
  ``FileName``, ``SpkrID`` (speaker; ``Unknown`` becomes one speaker per
  clip, so unknown speakers never join a group) and ``Split_Set`` (``Train``,
  ``Development``, ``Test1``, ...; stored as the clip's ``session`` so that a
  task's folds name official sets).  The consensus ``EmoClass`` is not read:
  serbench derives consensus from the ratings itself.
* the per-rater answers, one of:

  - ``Labels/labels_detailed.csv`` with two columns, the file name and one
    field per annotation ``WORKER; Primary; Secondary,Tags; A:4.0; V:3.0; D:4.0;``
    (the secondary field may be missing);
  - ``Labels/labels_detailed.csv`` with columns ``FileName``, a worker column
    (``Worker``, ``WorkerID`` or ``Annotator``), ``EmoClass_Major`` and
    optionally ``EmoClass_Second`` (comma-separated);
  - ``Labels/labels_detailed.json``:
    ``{"<FileName>": {"<worker>": {"EmoClass_Major": ..., "EmoClass_Second": ...}}}``.

  Each answer's primary emotion is a ``primary`` vote of its worker; each
  secondary tag a ``secondary`` vote.  ``Other`` and its free-text variants
  (``Other-Curious``) are the label ``Other`` (the task's "other" policy
  applies).  A worker answering a clip twice: the first answer is kept and
  the rest counted.
* ``Audios/<FileName>`` when present (path and duration); clips without one
  are kept without audio and counted.

Options: ``sets`` (default all) keeps only clips of these ``Split_Set``
values, the rest counted as a drop (e.g. leave ``Test2`` out of a task whose
train split is "everything but Test1 and Development").  Ratings of files not
in ``labels_consensus.csv`` and consensus rows without any rating are
counted drops.

The formats above are those seen in the MSP-Podcast releases 1.9-1.12 and
2.0 as read by public code; the corpus ships its own README, which wins where
they differ.  Every malformed row is an error naming the file and row.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pandas as pd

from ..errors import InputError
from ..paths import confined
from ..ratings import PRIMARY, SECONDARY
from .base import ReadResult, locate_audio

WORKER_COLUMNS = ("Worker", "WorkerID", "Annotator")
_OTHER = re.compile(r"^other\b", re.IGNORECASE)


def _label(raw: str) -> str:
    raw = raw.strip()
    return "Other" if _OTHER.match(raw) else raw


def _tags(raw: object) -> list[str]:
    if raw is None or (isinstance(raw, float) and raw != raw):
        return []
    return list(dict.fromkeys(_label(t) for t in str(raw).split(",") if t.strip()))


def _answers_from_fields(path: Path) -> list[tuple[str, str, str, list[str], int]]:
    """(file, worker, primary, secondary tags, row) from the two-column field format."""
    out = []
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        next(reader, None)
        for row_no, row in enumerate(reader, start=2):
            if not row or not any(x.strip() for x in row):
                continue
            if len(row) < 2:
                raise InputError("want FileName and the annotation field", file=path,
                                 row=row_no, fix="use the unmodified release file")
            parts = [p.strip() for p in row[1].split(";") if p.strip()]
            if len(parts) < 2 or ":" in parts[1]:
                raise InputError(f"annotation {row[1]!r} lacks 'WORKER; Primary;'", file=path,
                                 row=row_no, fix="use the unmodified release file")
            second = parts[2] if len(parts) > 2 and ":" not in parts[2] else ""
            out.append((row[0].strip(), parts[0], _label(parts[1]), _tags(second), row_no))
    return out


def _answers_from_columns(path: Path, df: pd.DataFrame
                          ) -> list[tuple[str, str, str, list[str], int]]:
    worker = next((c for c in WORKER_COLUMNS if c in df.columns), None)
    if worker is None or "EmoClass_Major" not in df.columns or "FileName" not in df.columns:
        raise InputError(f"columns {list(df.columns)} are neither the field format nor "
                         f"FileName / {'|'.join(WORKER_COLUMNS)} / EmoClass_Major", file=path,
                         fix="use the unmodified release file")
    out = []
    second = df["EmoClass_Second"] if "EmoClass_Second" in df.columns else [None] * len(df)
    for i, (f, w, p, s) in enumerate(zip(df["FileName"], df[worker], df["EmoClass_Major"],
                                         second, strict=True)):
        if pd.isna(f) or pd.isna(w) or pd.isna(p) or not str(p).strip():
            raise InputError("empty FileName, worker or EmoClass_Major", file=path, row=i + 2,
                             fix="every row is one worker's answer to one clip")
        out.append((str(f).strip(), str(w).strip(), _label(str(p)), _tags(s), i + 2))
    return out


def _answers_from_json(path: Path) -> list[tuple[str, str, str, list[str], int]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"not valid JSON: {exc}", file=path,
                         fix="use the unmodified release file") from exc
    if not isinstance(data, dict):
        raise InputError("want an object FileName -> {worker -> answer}", file=path)
    out = []
    for n, (f, workers) in enumerate(data.items(), start=1):
        if not isinstance(workers, dict):
            raise InputError(f"clip {f!r}: want an object worker -> answer", file=path, row=n)
        for w, ans in workers.items():
            major = ans.get("EmoClass_Major") if isinstance(ans, dict) else None
            if not isinstance(major, str) or not major.strip():
                raise InputError(f"clip {f!r}, worker {w!r}: no EmoClass_Major", file=path,
                                 row=n, fix="use the unmodified release file")
            out.append((f, str(w), _label(major), _tags(ans.get("EmoClass_Second")), n))
    return out


def read_answers(labels: Path) -> tuple[Path, list[tuple[str, str, str, list[str], int]]]:
    csv_path, json_path = labels / "labels_detailed.csv", labels / "labels_detailed.json"
    if csv_path.is_file():
        try:
            head = pd.read_csv(csv_path, nrows=5, dtype=str)
        except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot parse: {exc}", file=csv_path,
                             fix="use the unmodified release file") from None
        if "EmoClass_Major" in head.columns:
            return csv_path, _answers_from_columns(csv_path, pd.read_csv(csv_path, dtype=str))
        return csv_path, _answers_from_fields(csv_path)
    if json_path.is_file():
        return json_path, _answers_from_json(json_path)
    raise InputError("no per-rater file (labels_detailed.csv or labels_detailed.json)",
                     file=labels, fix="point --source at the release folder holding Labels/; "
                     "labels_consensus.csv alone has no rater answers")


def read_msp_podcast(source: str | Path | None = None, *, sets: list[str] | None = None,
                     **_: object) -> ReadResult:
    if source is None:
        raise InputError("this task reads the MSP-Podcast release",
                         fix="serbench prepare TASK --source /path/to/MSP-Podcast")
    root = Path(source)
    labels = root / "Labels"
    consensus_path = labels / "labels_consensus.csv"
    if not consensus_path.is_file():
        raise InputError("labels_consensus.csv not found", file=consensus_path,
                         fix="point --source at the release folder holding Labels/")
    try:
        cons = pd.read_csv(consensus_path, dtype=str, keep_default_na=False)
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot parse: {exc}", file=consensus_path,
                         fix="use the unmodified release file") from None
    for col in ("FileName", "SpkrID", "Split_Set"):
        if col not in cons.columns:
            raise InputError(f"column {col!r} missing", file=consensus_path,
                             fix="use the unmodified release file")
    cons["FileName"] = cons["FileName"].str.strip()
    empty = cons["FileName"] == ""
    if empty.any():
        raise InputError("empty FileName", file=consensus_path,
                         row=int(empty.to_numpy().nonzero()[0][0]) + 2)
    dup = cons["FileName"].duplicated()
    if dup.any():
        i = int(dup.to_numpy().nonzero()[0][0])
        raise InputError(f"clip {cons['FileName'].iloc[i]!r} listed twice", file=consensus_path,
                         row=i + 2, fix="one row per clip")
    drops: dict[str, int] = {}
    if sets is not None:
        keep = cons["Split_Set"].isin([str(s) for s in sets])
        if (~keep).any():
            drops[f"clips outside Split_Set {list(sets)} (option sets)"] = int((~keep).sum())
        cons = cons[keep]
    info = {f: (spk, split) for f, spk, split in
            zip(cons["FileName"], cons["SpkrID"].str.strip(), cons["Split_Set"].str.strip(),
                strict=True)}

    answers_path, answers = read_answers(labels)
    rows, seen, unknown, repeated = [], set(), 0, 0
    for f, worker, primary, secondary, row_no in answers:
        if f not in info:
            unknown += 1
            continue
        if (f, worker) in seen:
            repeated += 1
            continue
        seen.add((f, worker))
        rows.append((f, worker, primary, PRIMARY, row_no))
        rows.extend((f, worker, tag, SECONDARY, row_no) for tag in secondary)
    if unknown:
        drops["answers to files not in labels_consensus.csv (or outside sets)"] = unknown
    if repeated:
        drops["repeated answers of a worker to a clip (kept the first)"] = repeated
    table = pd.DataFrame(rows, columns=["utterance_id", "rater_id", "label", "question",
                                        "source_row"])
    unrated = set(info) - set(table["utterance_id"])
    if unrated:
        drops["clips in labels_consensus.csv without any rating"] = len(unrated)

    audio = {f: locate_audio(confined(root / "Audios", f, what="audio file",
                                      file=consensus_path))
             for f in table["utterance_id"].unique()}
    no_audio = sum(path is None for path, _ in audio.values())
    if no_audio:
        drops["clips without an Audios/ file (kept without audio)"] = no_audio
    spk = {f: (s if s and s.lower() != "unknown" else f"unknown:{f}") for f, (s, _) in info.items()}
    table["speaker_id"] = table["utterance_id"].map(spk)
    table["session"] = table["utterance_id"].map({f: split for f, (_, split) in info.items()})
    table["audio_path"] = table["utterance_id"].map(lambda u: audio[u][0])
    table["duration"] = table["utterance_id"].map(lambda u: audio[u][1])
    table["source"] = str(answers_path)
    return ReadResult(table=table, drops=drops, files=[str(consensus_path), str(answers_path)])
