"""Ratings from a Hugging Face ``datasets`` dataset: a folder written by ``save_to_disk`` or
a hub id.

``--source`` (or ``corpus.options.dataset``) is the folder or the hub id.
A folder is read with ``datasets.load_from_disk``; anything else is passed to
``datasets.load_dataset`` (``config``, ``split`` options).  Without network a
hub id fails, and the error says to pass a local copy (``load_dataset(ID)
.save_to_disk(DIR)`` where there is network, then ``--source DIR``).  A
``DatasetDict`` is read whole (all splits, since the task decides the folds)
unless ``split`` names one.

Rows are either one rater answer each or one clip with per-class vote
counts.  ``corpus.options.columns`` maps serbench's names to the dataset's:

================  ===============================================  ===========
name              meaning                                          needed
================  ===============================================  ===========
``utterance_id``  clip id                                          yes
``label``         the rater's label (a ``ClassLabel`` is read as   yes, unless
                  its names)                                       vote columns
``speaker_id``    speaker                                          yes
``rater_id``      rater                                            no
``session``       recording session                                no
``question``      ``primary`` / ``secondary``                      no
``audio``         audio: an ``Audio`` column (never decoded here:  no
                  its path, or its bytes written once to the
                  serbench cache) or a string path
================  ===============================================  ===========

A name absent from the map defaults to itself and may be missing from the
dataset (except the required ones); a name the map gives must exist, or it is
an error naming the column and listing the dataset's columns.  With
``vote_columns: {count_column: raw_label}`` each row is one clip and each
count column gives that many votes (no rater ids).  Relative audio paths are
confined to the dataset folder (or ``audio_root``); absolute ones need
``allow_absolute_audio: true``.

A folder written by ``serbench export`` is recognised by its dataset info and
read back without a column map: the clips of fold 1 (each clip once) with one
row per rating of its ``ratings`` column, the audio from its ``Audio`` column
when it has one, else from ``audio_path`` (absolute: ``allow_absolute_audio``).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import paths
from ..errors import InputError
from ..ratings import PRIMARY
from .base import ReadResult
from .manifests import AudioFiles, table

FIELDS = ("utterance_id", "label", "speaker_id", "rater_id", "session", "question", "audio")
REQUIRED = ("utterance_id", "speaker_id")


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def load(src: str, *, config: str | None = None,
         split: str | None = None) -> tuple[Any, Path | None]:
    """The dataset (or DatasetDict) and its folder (None for a hub dataset)."""
    import datasets

    path = Path(src)
    if path.exists():
        try:
            return datasets.load_from_disk(str(path)), path
        except (FileNotFoundError, ValueError, OSError) as exc:
            raise InputError(f"not a dataset saved with save_to_disk ({_short(exc)})", file=path,
                             fix="save it with Dataset.save_to_disk(DIR) / "
                                 "DatasetDict.save_to_disk(DIR) and pass DIR") from None
    try:
        return datasets.load_dataset(src, config, split=split), None
    except Exception as exc:  # offline, unknown id, gated: all end the same way for the user
        raise InputError(
            f"{src!r} is not a local folder, and loading it from the Hugging Face hub failed "
            f"({_short(exc)})",
            fix=f"pass a local copy: where there is network, run datasets.load_dataset("
                f"{src!r}).save_to_disk('DIR'), copy DIR here and pass --source DIR") from None


def _one(ds: Any, split: str | None, where: str) -> Any:
    import datasets

    if isinstance(ds, datasets.DatasetDict):
        if split is not None:
            if split not in ds:
                raise InputError(f"no split {split!r}; the dataset has {list(ds)}", file=where,
                                 fix="fix corpus.options.split in the task file")
            return ds[split]
        try:
            return datasets.concatenate_datasets(list(ds.values()))
        except ValueError as exc:
            raise InputError(f"its splits have different columns ({_short(exc)})", file=where,
                             fix="name one split with corpus.options.split") from None
    return ds


def _audio_refs(values: list[Any], ids: list[str], cache: Path) -> list[str | None]:
    """A path (or None) per row from an Audio column (path/bytes dicts) or a string column."""
    out: list[str | None] = []
    for v, utt in zip(values, ids, strict=True):
        if v is None or isinstance(v, str):
            out.append(v or None)
            continue
        if not isinstance(v, dict):
            raise InputError(f"audio of clip {utt!r} is neither a path nor an Audio value",
                             fix="map the audio column to a path or an Audio column")
        data, ref = v.get("bytes"), v.get("path")
        if data:
            suffix = Path(ref).suffix if ref else ".wav"
            digest = hashlib.sha256(data).hexdigest()[:32]
            target = cache / f"{digest}{suffix or '.wav'}"
            if not target.exists():
                from .. import atomic

                atomic.write_bytes(target, data)
            out.append(str(target))
        else:
            out.append(ref or None)
    return out


def _export_meta(ds: Any) -> dict[str, Any] | None:
    """The serbench metadata when ``ds`` is a serbench export (``serbench export``), else None."""
    from ..export import export_metadata

    try:
        return export_metadata(ds)
    except (InputError, AttributeError):
        return None


def _export_ratings(dd: Any) -> Any:
    """An export's fold-1 parts (every clip once) with one row per rating.

    Each clip appears once per fold in an export; reading every split would
    count each vote once per fold.
    """
    import datasets

    parts = [dd[name] for name in dd if name.startswith("fold1_")]
    keep = [c for c in ("utterance_id", "speaker_id", "session", "audio_path", "audio",
                        "ratings") if c in parts[0].column_names]
    clips = datasets.concatenate_datasets([p.select_columns(keep) for p in parts])
    if "audio" in keep:
        clips = clips.cast_column("audio", datasets.Audio(decode=False))
    frame = clips.with_format("arrow")[:].to_pandas().explode("ratings", ignore_index=True)
    frame = frame[frame["ratings"].notna()]
    for field in ("rater_id", "label", "question"):
        frame[field] = [r[field] for r in frame["ratings"]]
    return datasets.Dataset.from_pandas(frame.drop(columns="ratings"), preserve_index=False)


def read_hf_dataset(source: str | Path | None = None, *, dataset: str | None = None,
                    config: str | None = None, split: str | None = None,
                    columns: dict[str, str] | None = None,
                    vote_columns: dict[str, str] | None = None, audio_root: str | None = None,
                    allow_missing_audio: bool = False, allow_absolute_audio: bool = False,
                    **_: object) -> ReadResult:
    src = str(source) if source is not None else dataset
    if not src:
        raise InputError("this task reads a datasets dataset: pass --source DIR (save_to_disk) "
                         "or a hub id, or set corpus.options.dataset")
    ds, folder = load(src, config=config, split=split)
    where = src if split is None else f"{src} [{split}]"
    notes = []
    exported = _export_meta(ds)
    if exported is not None:  # a serbench export: one fold's clips, their ratings as rows
        if columns or vote_columns or split:
            raise InputError("this is a serbench export: it needs no column map, vote columns "
                             "or split", file=where, fix="remove those corpus options")
        ds = _export_ratings(ds)
        columns = {"audio": "audio" if "audio" in ds.column_names else "audio_path"}
        notes.append(f"serbench export of task {exported['task']} v{exported['version']} "
                     f"(fingerprint {exported['fingerprint'][:12]})")
    ds = _one(ds, split, where)
    names = dict(zip(FIELDS, FIELDS, strict=True)) | dict(columns or {})
    unknown = sorted(set(columns or {}) - set(FIELDS))
    if unknown:
        raise InputError(f"the column map has unknown name(s) {unknown}", file=where,
                         fix=f"map any of {list(FIELDS)}")
    have = list(ds.column_names)
    need = [*REQUIRED, *(() if vote_columns else ("label",))]
    for field in FIELDS:
        explicit = field in (columns or {})
        if (explicit or field in need) and names[field] not in have:
            raise InputError(f"column {names[field]!r} (for {field}) is not in the dataset; its "
                             f"columns: {have}", file=where,
                             fix="fix corpus.options.columns in the task file")
    for col in vote_columns or {}:
        if col not in have:
            raise InputError(f"vote column {col!r} is not in the dataset; its columns: {have}",
                             file=where, fix="fix corpus.options.vote_columns in the task file")
    used = {f: names[f] for f in FIELDS if names[f] in have and (f != "label" or not vote_columns)}
    import datasets

    audio_col = used.get("audio")
    if audio_col and isinstance(ds.features[audio_col], datasets.Audio):
        ds = ds.cast_column(audio_col, datasets.Audio(decode=False))
    keep = sorted(set(used.values()) | set(vote_columns or {}))
    frame = ds.select_columns(keep).with_format("arrow")[:].to_pandas()
    frame["_row"] = np.arange(1, len(frame) + 1)
    label_col = used.get("label")
    if label_col is not None and isinstance(ds.features[label_col], datasets.ClassLabel):
        feature = ds.features[label_col]
        frame[label_col] = [None if v is None or v < 0 else feature.int2str(int(v))
                            for v in frame[label_col]]
    if label_col is not None:
        lists = frame[label_col].map(lambda v: isinstance(v, (list, np.ndarray, dict)))
        if lists.any():
            raise InputError(f"column {label_col!r} holds lists, not one label per row",
                             file=where, row=int(frame["_row"][lists].iloc[0]),
                             fix="one row per rater answer, or per-class counts with "
                                 "vote_columns")
    for field in ("utterance_id", "speaker_id"):
        col = frame[used[field]]
        empty = col.isna() | (col.astype(str).str.strip() == "")
        if empty.any():
            raise InputError(f"empty {field} (column {used[field]!r})", file=where,
                             row=int(frame["_row"][empty].iloc[0]),
                             fix=f"every row needs a {field}")
    if vote_columns:
        parts = []
        for col, label in vote_columns.items():
            n = pd.to_numeric(frame[col], errors="coerce")
            bad = n.isna() | (n < 0) | (n != n.round())
            if bad.any():
                raise InputError(f"vote count {frame[col][bad].iloc[0]!r} in column {col!r} is "
                                 "not a non-negative integer", file=where,
                                 row=int(frame["_row"][bad].iloc[0]),
                                 fix="vote columns hold counts of votes")
            rep = frame.loc[frame.index.repeat(n.astype(int).to_numpy())].copy()
            rep["_label"] = str(label)
            parts.append(rep)
        frame = pd.concat(parts).sort_values(["_row", "_label"], kind="stable")
        frame = frame.reset_index(drop=True)
    else:
        frame["_label"] = frame[label_col].astype(object)
    ids = frame[used["utterance_id"]].astype(str).str.strip().tolist()
    rows = frame["_row"].astype(int).tolist()
    audio_paths: list[str | None] = [None] * len(frame)
    durations: list[float | None] = [None] * len(frame)
    resolver = AudioFiles(allow_missing_audio, allow_absolute_audio)
    if audio_col:
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", src.strip("/"))[-80:]
        cache = paths.corpus_cache(f"datasets-{slug}") / "audio"
        first = frame.drop_duplicates(used["utterance_id"])
        refs = _audio_refs(first[audio_col].tolist(),
                           first[used["utterance_id"]].astype(str).tolist(), cache)
        root = (folder or Path(".")) / (audio_root or ".")
        found: dict[str, tuple[str | None, float | None]] = {}
        for utt, ref, row in zip(first[used["utterance_id"]].astype(str), refs, first["_row"],
                                 strict=True):
            if ref is None:
                found[utt] = (None, None)
            elif ref.startswith(str(cache)):
                found[utt] = AudioFiles(allow_absolute=True).resolve(cache, ref, file=where,
                                                                     row=int(row))
            else:
                found[utt] = resolver.resolve(root, ref, file=where, row=int(row))
        audio_paths = [found[u][0] for u in ids]
        durations = [found[u][1] for u in ids]

    def column(field: str, default: Any = None) -> list[Any]:
        if field not in used:
            return [default] * len(frame)
        return [None if pd.isna(v) else str(v).strip() for v in frame[used[field]]]

    df = table({"utterance_id": ids, "rater_id": column("rater_id"),
                "label": [None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)
                          for v in frame["_label"]],
                "question": [q or PRIMARY for q in column("question", PRIMARY)],
                "speaker_id": column("speaker_id"), "session": column("session"),
                "audio_path": audio_paths, "duration": durations, "source_row": rows},
               source=where)
    return ReadResult(table=df, drops=resolver.drops(), files=[where],
                      counts_only=bool(df["rater_id"].isna().all()),
                      notes=[*notes, f"read {len(ds)} rows of {where} with the datasets library"])
