"""CREMA-D reader (a clone of CheyneyComputerScience/CREMA-D).

Files read (paths relative to ``--source``; the repository keeps the tables
under ``processedResults/``, and they are also accepted at the top level):

* ``finishedResponses.csv`` when present: one row per rater answer, with
  repeated and practice answers already removed by the corpus authors.  Used
  columns: ``localid`` (rater), ``queryType`` (1 voice, 2 face, 3
  audio-visual), ``respEmo`` (A D F H N S), ``clipName``, ``pos``.  Should a
  (rater, clip) pair still repeat, the answer with the smallest ``pos`` is
  kept and the rest are counted as a drop.
* otherwise ``tabulatedVotes.csv``: per clip and modality (row index //
  100000), vote counts ``A D F H N S`` that must sum to ``numResponses``;
  rater ids are unknown, so each vote becomes a row with a null rater.
* ``AudioWAV/<clip>.wav`` when present (audio path and duration).  A wav that
  is a git-lfs pointer (a zip download, or a clone without git-lfs), has no
  samples, or cannot be read is counted under its own drop reason; the clip
  keeps its ratings with a null audio path, so the test sets do not change
  silently (``serbench run`` refuses test clips without audio unless told).

Every answer row is checked: ``queryType`` in 1-3, ``clipName`` shaped like
``1001_DFA_ANG_XX`` (a ``.flv``/``.mp3``/``.wav`` suffix is removed),
``respEmo`` one of ``A D F H N S``, a non-empty ``localid``; a bad row is an
error naming the file and row.

Speaker = actor id (the first 4 digits of the clip name); no sessions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..audio import duration as audio_duration
from ..errors import InputError
from ..ratings import PRIMARY, check_columns
from .base import ReadResult, expand_counts, read_csv

MODALITIES = {"voice": 1, "face": 2, "audiovisual": 3}
LETTERS = ("A", "D", "F", "H", "N", "S")
CLIP = r"\d{4}_[A-Z]{3}_[A-Z]{3}_[A-Z]{2}"
LFS_POINTER = b"version https://git-lfs"


def _find(root: Path, name: str) -> Path | None:
    for cand in (root / name, root / "processedResults" / name):
        if cand.exists():
            return cand
    return None


def _from_tabulated(path: Path, modality: int) -> pd.DataFrame:
    t = read_csv(path, what="vote table", fix="use the unmodified tabulatedVotes.csv from the "
                 "CREMA-D repository (clone with git-lfs)")
    check_columns(t, [*LETTERS, "fileName", "numResponses"], file=path)
    t["_row"] = np.arange(len(t)) + 2
    index = pd.to_numeric(t.iloc[:, 0], errors="coerce")
    if index.isna().any():
        i = int(index.isna().to_numpy().nonzero()[0][0])
        raise InputError(
            "first column must be the numeric row index (modality * 100000 + n)",
            file=path,
            row=i + 2,
            fix="use the unmodified tabulatedVotes.csv",
        )
    t = t[(index // 100000).astype(int) == modality].copy()
    counts = t[list(LETTERS)].apply(pd.to_numeric, errors="coerce")
    bad = counts.isna().any(axis=1) | (counts < 0).any(axis=1) | (counts % 1 != 0).any(axis=1)
    if bad.any():
        raise InputError(
            "vote counts must be non-negative integers",
            file=path,
            row=int(t["_row"][bad].iloc[0]),
            fix="use the unmodified file",
        )
    mismatch = counts.sum(axis=1) != pd.to_numeric(t["numResponses"], errors="coerce")
    if mismatch.any():
        raise InputError(
            "vote counts do not sum to numResponses (truncated or edited file?)",
            file=path,
            row=int(t["_row"][mismatch].iloc[0]),
            fix="use the unmodified file from the CREMA-D repository",
        )
    t[list(LETTERS)] = counts.astype(int)
    t["utterance_id"] = t["fileName"].astype(str)
    dup = t["utterance_id"].duplicated()
    if dup.any():
        raise InputError(
            f"clip {t['utterance_id'][dup].iloc[0]!r} appears twice for this modality",
            file=path,
            row=int(t["_row"][dup].iloc[0]),
            fix="use the unmodified file",
        )
    votes = expand_counts(t, {c: c for c in LETTERS})
    votes["rater_id"] = None
    return votes


def _from_responses(path: Path, modality: int, drops: dict[str, int]) -> pd.DataFrame:
    r = read_csv(path, what="responses file", dtype=str, keep_default_na=False,
                 fix="use the unmodified finishedResponses.csv (clone with git-lfs)")
    check_columns(r, ["localid", "queryType", "respEmo", "clipName"], file=path)
    r["source_row"] = np.arange(len(r)) + 2
    query = pd.to_numeric(r["queryType"], errors="coerce")
    bad = ~query.isin(list(MODALITIES.values()))
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(f"queryType {r['queryType'].iloc[i]!r} is not 1, 2 or 3", file=path,
                         row=i + 2, fix="1 voice, 2 face, 3 audio-visual; use the unmodified "
                                        "file (a truncated last line shows up here)")
    r = r[query == modality].copy()
    clip = r["clipName"].str.strip().str.replace(r"\.(flv|mp3|wav)$", "", regex=True)
    for column, ok, fix in (
            ("clipName", clip.str.fullmatch(CLIP), "clip names look like 1001_DFA_ANG_XX"),
            ("respEmo", r["respEmo"].str.strip().isin(LETTERS),
             f"respEmo is one letter of {list(LETTERS)}"),
            ("localid", r["localid"].str.strip() != "", "every answer needs its rater id")):
        if not ok.all():
            i = int(np.flatnonzero(~ok.to_numpy())[0])
            raise InputError(f"{column} {r[column].iloc[i]!r} not understood", file=path,
                             row=int(r["source_row"].iloc[i]), fix=fix)
    r["clipName"] = clip
    order = pd.to_numeric(r["pos"], errors="coerce") if "pos" in r.columns else r["source_row"]
    r = r.assign(_order=order).sort_values(["localid", "clipName", "_order"], kind="stable")
    dup = r.duplicated(["localid", "clipName"], keep="first")
    if dup.any():
        drops["repeated answer of a rater to a clip (kept the first by pos)"] = int(dup.sum())
        r = r[~dup]
    return (
        pd.DataFrame(
            {
                "utterance_id": r["clipName"],
                "rater_id": r["localid"].str.strip(),
                "label": r["respEmo"].str.strip(),
                "source_row": r["source_row"],
            }
        )
        .sort_values(["utterance_id", "rater_id"], kind="stable")
        .reset_index(drop=True)
    )


def wav_problem(wav: Path) -> tuple[str | None, float | None]:
    """Why a release wav cannot be used (the drop reason's words) and its duration if it can.

    The two failures seen in the wild: a git-lfs pointer (the repository was
    downloaded as a zip or cloned without git-lfs, so every media file is a
    130-byte text stub) and a file with a header but no samples.
    """
    try:
        with open(wav, "rb") as fh:
            head = fh.read(64)
    except OSError:
        return "an unreadable AudioWAV file", None
    if head.startswith(LFS_POINTER):
        return "an AudioWAV file that is a git-lfs pointer, not audio (clone with git-lfs)", None
    try:
        return None, audio_duration(wav)
    except InputError as exc:
        return ("an AudioWAV file with no samples" if "no samples" in exc.problem else
                "an unreadable AudioWAV file"), None


def read_crema_d(source: str | Path | None, *, modality: str = "voice", **_: object) -> ReadResult:
    if source is None:
        raise InputError(
            "the crema-d task needs the CREMA-D release",
            fix="serbench prepare crema-d --source /path/to/CREMA-D "
            "(the folder holding tabulatedVotes.csv)",
        )
    root = Path(source)
    if modality not in MODALITIES:
        raise InputError(
            f"unknown modality {modality!r}; expected one of {sorted(MODALITIES)}", file="task.yaml"
        )
    drops: dict[str, int] = {}
    responses = _find(root, "finishedResponses.csv")
    tabulated = _find(root, "tabulatedVotes.csv")
    if responses is not None:
        votes = _from_responses(responses, MODALITIES[modality], drops)
        used, counts_only = responses, False
    elif tabulated is not None:
        votes = _from_tabulated(tabulated, MODALITIES[modality])
        used, counts_only = tabulated, True
    else:
        raise InputError(
            "neither finishedResponses.csv nor tabulatedVotes.csv found",
            file=root,
            fix="point --source at a clone of the CREMA-D repository",
        )
    votes["question"] = PRIMARY
    votes["speaker_id"] = votes["utterance_id"].str.slice(0, 4)
    votes["session"] = None
    wav_dir = root / "AudioWAV"
    audio: dict[str, tuple[str | None, float | None]] = {}
    missing_audio = 0
    broken: dict[str, int] = {}
    for utt in votes["utterance_id"].unique():
        wav = wav_dir / f"{utt}.wav"
        if not wav.exists():
            audio[utt] = (None, None)
            missing_audio += wav_dir.exists()
            continue
        problem, seconds = wav_problem(wav)
        if problem is None:
            audio[utt] = (str(wav.resolve()), seconds)
        else:
            audio[utt] = (None, None)
            broken[problem] = broken.get(problem, 0) + 1
    if missing_audio:
        drops["clips without an AudioWAV file (ratings kept, audio null)"] = missing_audio
    for problem, n in sorted(broken.items()):
        drops[f"clips with {problem} (ratings kept, audio null)"] = n
    if broken and len(broken) == 1 and "git-lfs" in next(iter(broken)) and \
            sum(broken.values()) == len(audio):
        notes_lfs = ["every AudioWAV file is a git-lfs pointer: run git lfs pull in the clone"]
    else:
        notes_lfs = []
    votes["audio_path"] = votes["utterance_id"].map(lambda u: audio[u][0])
    votes["duration"] = votes["utterance_id"].map(lambda u: audio[u][1])
    votes["source"] = str(used)
    notes = ([] if wav_dir.exists() else ["no AudioWAV/ folder: labels only"]) + notes_lfs
    return ReadResult(
        table=votes, drops=drops, files=[str(used)], counts_only=counts_only, notes=notes
    )
