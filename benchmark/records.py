"""Run records: one prediction file and one JSON record per run cell.

A run cell is (task, submission, fold, training rule, seed).  Its folder::

    <runs>/<task>/<submission>/fold<f>-<rule>-seed<s>/
        predictions.parquet   utterance_id, p_<class> for every task class
        record.json           who made it, on which task fingerprint, how

The predictions cover the fold's AR test set (it contains the MR and PR test
sets), one row per clip, probabilities summing to 1.  The record is written
last, so a folder without ``record.json`` is an unfinished cell.  Both are
written atomically.  Everything read is validated: each problem is an error
naming the file, the row and the fix.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from . import atomic
from .errors import InputError

SCHEMA_VERSION = 1
RECORD = "record.json"
PREDICTIONS = "predictions.parquet"
SUM_TOLERANCE = 1e-6
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
_REQUIRED = {"schema": int, "task": str, "task_fingerprint": str, "fold": int, "train_rule": str,
             "seed": int, "submission": dict}


@dataclass(frozen=True)
class CellKey:
    task: str
    submission: str
    fold: int
    train_rule: str
    seed: int

    def folder(self, runs: str | Path) -> Path:
        for part in (self.task, self.submission):
            if not _NAME.match(part):
                raise InputError(f"unsafe name {part!r} for a run folder",
                                 fix="names are letters, digits, '.', '_', '+' and '-'")
        return Path(runs) / self.task / self.submission / \
            f"fold{self.fold}-{self.train_rule}-seed{self.seed}"


@dataclass
class Record:
    """A validated ``record.json`` and where it lives."""

    path: Path
    data: dict[str, Any] = field(repr=False)

    @property
    def key(self) -> CellKey:
        d = self.data
        return CellKey(d["task"], d["submission"]["name"], d["fold"], d["train_rule"], d["seed"])

    @property
    def folder(self) -> Path:
        return self.path.parent

    @property
    def predictions_path(self) -> Path:
        return self.folder / self.data.get("predictions", PREDICTIONS)

    @property
    def rater_predictions_path(self) -> Path | None:
        """The per-rater prediction file (``predict_rater_proba``), or None when the cell has
        none."""
        name = self.data.get("rater_predictions")
        return None if name is None else self.folder / name


def prob_columns(classes: list[str] | tuple[str, ...]) -> list[str]:
    return [f"p_{c}" for c in classes]


PREDICTIONS_NEXT = "predictions-next.parquet"
#: Per-rater predictions: utterance_id, rater_id, p_<class> (one row per test vote's
#: (clip, rater) pair); the two names alternate like the clip predictions'.
RATER_PREDICTIONS = "rater-predictions.parquet"
RATER_PREDICTIONS_NEXT = "rater-predictions-next.parquet"


def _rater_table(rater: tuple[np.ndarray, np.ndarray, np.ndarray],
                 classes: list[str] | tuple[str, ...]) -> pa.Table:
    ids, raters, probs = rater
    return pa.table({"utterance_id": pa.array([str(u) for u in ids], pa.string()),
                     "rater_id": pa.array([str(r) for r in raters], pa.string()),
                     **{c: pa.array(np.asarray(probs[:, i], dtype=np.float64))
                        for i, c in enumerate(prob_columns(classes))}})


def write_cell(folder: str | Path, record: dict[str, Any], ids: np.ndarray, probs: np.ndarray,
               classes: list[str] | tuple[str, ...],
               rater: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> Path:
    """Write predictions, then the record that names them, each atomically.

    A cell that already has a record keeps it readable until the new one lands:
    new predictions go to the file the old record does *not* name (the two
    names alternate), the record switches over in one rename, and only then is
    the old prediction file removed.  A full disk or a permission error at any
    step therefore leaves the previous record and its predictions intact, and is
    reported as an :class:`InputError` naming the folder.
    """
    folder = Path(folder)
    old = old_rater = None
    with contextlib.suppress(OSError, ValueError, AttributeError):
        previous = json.loads((folder / RECORD).read_text(encoding="utf-8"))
        old, old_rater = previous.get("predictions"), previous.get("rater_predictions")
    name = PREDICTIONS_NEXT if old == PREDICTIONS else PREDICTIONS
    rater_name = RATER_PREDICTIONS_NEXT if old_rater == RATER_PREDICTIONS else RATER_PREDICTIONS
    table = pa.table({"utterance_id": pa.array([str(u) for u in ids], pa.string()),
                      **{c: pa.array(np.asarray(probs[:, i], dtype=np.float64))
                         for i, c in enumerate(prob_columns(classes))}})
    extra = {}
    try:
        atomic.write_with(folder / name, lambda tmp: pq.write_table(table, tmp))
        if rater is not None:
            rater_table = _rater_table(rater, classes)
            atomic.write_with(folder / rater_name, lambda tmp: pq.write_table(rater_table, tmp))
            extra["rater_predictions"] = rater_name
        atomic.write_json(folder / RECORD, {"schema": SCHEMA_VERSION, **record,
                                            "predictions": name, **extra})
    except OSError as exc:
        raise InputError(f"could not write the run record: {exc}", file=folder,
                         fix="free disk space or fix the folder's permissions, then rerun; "
                             "the previous record of this cell (if any) is unchanged") from exc
    if old in (PREDICTIONS, PREDICTIONS_NEXT) and old != name:
        with contextlib.suppress(OSError):
            (folder / old).unlink()
    if old_rater in (RATER_PREDICTIONS, RATER_PREDICTIONS_NEXT) and \
            old_rater != extra.get("rater_predictions"):
        with contextlib.suppress(OSError):
            (folder / old_rater).unlink()
    return folder


def read_record(path: str | Path) -> Record:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"unreadable run record: {exc}", file=path,
                         fix="rerun this cell (serbench run resumes) or delete its folder") from exc
    if not isinstance(data, dict):
        raise InputError("a run record must be a JSON object", file=path)
    for key, kind in _REQUIRED.items():
        if not isinstance(data.get(key), kind) or isinstance(data.get(key), bool):
            what = {"int": "an integer", "str": "a string", "dict": "an object",
                    "list": "a list", "float": "a number"}.get(kind.__name__, kind.__name__)
            raise InputError(f"record key {key!r} missing or not {what}", file=path,
                             fix="records are written by serbench run; rerun the cell")
    if data["schema"] > SCHEMA_VERSION:
        raise InputError(f"record schema {data['schema']} is newer than this serbench "
                         f"({SCHEMA_VERSION})", file=path, fix="upgrade serbench")
    sub = data["submission"]
    if not isinstance(sub.get("name"), str) or not _NAME.match(sub["name"]):
        raise InputError("record needs submission.name (letters, digits, . _ + -)", file=path)
    for key, default in (("predictions", PREDICTIONS), ("rater_predictions", None)):
        pred = data.get(key, default)
        if pred is None and default is None:
            continue
        if not isinstance(pred, str) or "/" in pred or "\\" in pred or pred.startswith("."):
            raise InputError(f"{key} file name {pred!r} must be a plain file name in the "
                             "record's folder", file=path)
    return Record(path, data)


def find_records(root: str | Path) -> tuple[list[Record], list[tuple[Path, str]]]:
    """All readable records under ``root`` (sorted) and the unreadable ones with why."""
    root = Path(root)
    good, bad = [], []
    paths = [root] if root.is_file() else sorted(root.rglob(RECORD))
    for p in paths:
        try:
            good.append(read_record(p))
        except InputError as exc:
            bad.append((p, exc.problem))
    return good, bad


def numeric_columns(df: pd.DataFrame, columns: list[str], path: Path,
                    row_of: Callable[[int], int] | None = None) -> np.ndarray:
    """The probability ``columns`` of ``df`` as float64; a column that is not numbers is
    refused with the file, the column and the fix (``row_of``: data row -> row shown).

    Parquet stores a type per column: probabilities stored as text (``"0.25"``) or
    booleans mean the writer produced the wrong thing, so such a column is refused
    even when every value would parse.  A CSV has no types: a column is refused at its
    first value that is not a number.
    """
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    typed = path.suffix.lower() != ".csv" and path.suffix.lower() != ".tsv"
    out = np.empty((len(df), len(columns)), dtype=np.float64)
    for j, col in enumerate(columns):
        values = df[col]
        if is_numeric_dtype(values) and not is_bool_dtype(values):
            out[:, j] = values.to_numpy(dtype=np.float64, na_value=np.nan)
            continue
        if typed or is_bool_dtype(values):
            example = values.iloc[0] if len(values) else None
            raise InputError(f"column {col} holds {values.dtype} values, not numbers (e.g. "
                             f"{example!r})", file=path,
                             fix=f"write the p_<class> columns as floats (in pandas: "
                                 f"df[{col!r}] = df[{col!r}].astype('float64') before writing)")
        parsed = pd.to_numeric(values, errors="coerce")
        bad = (parsed.isna() & values.notna()).to_numpy()
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InputError(f"column {col} holds {values.iloc[i]!r}, not a number "
                             f"({int(bad.sum())} row(s))", file=path,
                             row=row_of(i) if row_of is not None else i + 1,
                             fix="write plain decimal numbers in the p_<class> columns")
        out[:, j] = parsed.to_numpy(dtype=np.float64, na_value=np.nan)
    return out


def read_predictions(path: str | Path, classes: list[str] | tuple[str, ...],
                     expected_ids: np.ndarray, *, independent: bool = False) -> np.ndarray:
    """Probabilities [N, K] aligned with ``expected_ids``; every defect is an error.

    ``independent``: the cell declared
    independent per-class probabilities, so each value must lie in [0, 1] and rows
    need not sum to 1.
    """
    path = Path(path)
    try:
        if path.suffix == ".csv":
            df = pd.read_csv(path, dtype={"utterance_id": str})
        else:
            df = pq.read_table(path).to_pandas()
    except FileNotFoundError:
        raise InputError("prediction file not found", file=path,
                         fix="rerun the cell; its record points at a missing file") from None
    except (OSError, pa.ArrowException, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(f"unreadable prediction file: {exc}", file=path,
                         fix="rerun the cell") from exc
    want = prob_columns(classes)
    if "utterance_id" not in df.columns:
        raise InputError("no utterance_id column", file=path,
                         fix="columns must be utterance_id, " + ", ".join(want))
    have = [c for c in df.columns if c.startswith("p_")]
    if have != want:
        raise InputError(f"wrong class columns: expected {len(want)} {want}, found {len(have)} "
                         f"{have}", file=path,
                         fix="one p_<class> column per task class, in the task's class order")
    ids = df["utterance_id"].astype(str).to_numpy()
    dup = pd.Series(ids).duplicated().to_numpy()
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        raise InputError(f"utterance {ids[i]!r} predicted twice", file=path, row=i + 1,
                         fix="one row per test clip")
    probs = numeric_columns(df, want, path)
    for bad, what in ((~np.isfinite(probs).all(axis=1), "NaN or infinite probability"),
                      ((probs < 0).any(axis=1), "negative probability"),
                      ((probs > 1.0 + SUM_TOLERANCE).any(axis=1) if independent else
                       np.abs(probs.sum(axis=1) - 1.0) > SUM_TOLERANCE,
                       "probability above 1" if independent else
                       f"probabilities do not sum to 1 (tolerance {SUM_TOLERANCE})")):
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InputError(f"{what}: utterance {ids[i]!r} has {probs[i].round(6).tolist()} "
                             f"({int(bad.sum())} rows)", file=path, row=i + 1,
                             fix="write a probability distribution per clip (softmax outputs)")
    expected = np.asarray(expected_ids).astype(str)
    unknown = np.setdiff1d(ids, expected)
    missing = np.setdiff1d(expected, ids)
    if len(unknown):
        raise InputError(f"{len(unknown)} predicted utterance(s) are not in this fold's test set, "
                         f"e.g. {unknown[:5].tolist()}", file=path,
                         fix="predict exactly the fold's AR test clips")
    if len(missing):
        raise InputError(f"{len(missing)} test utterance(s) have no prediction, e.g. "
                         f"{missing[:5].tolist()}", file=path,
                         fix="predict every clip of the fold's AR test set")
    order = pd.Index(ids).get_indexer(expected)
    return probs[order]


def read_rater_predictions(path: str | Path, classes: list[str] | tuple[str, ...],
                           expected_ids: np.ndarray, expected_raters: np.ndarray) -> np.ndarray:
    """Per-rater probabilities [P, K] aligned with the expected (clip, rater) pairs.

    Checked like the clip predictions: the class columns, finite non-negative rows
    summing to 1, each pair once, none missing and none unexpected; every defect is
    an error naming the file, the row and the fix.
    """
    path = Path(path)
    fix = ("rerun the cell; the file holds one row per (test clip, rater) pair of the fold's "
           "counted votes, from predict_rater_proba")
    try:
        df = pq.read_table(path).to_pandas()
    except FileNotFoundError:
        raise InputError("rater prediction file not found", file=path, fix=fix) from None
    except (OSError, pa.ArrowException) as exc:
        raise InputError(f"unreadable rater prediction file: {exc}", file=path, fix=fix) from exc
    want = prob_columns(classes)
    have = [c for c in df.columns if c.startswith("p_")]
    if {"utterance_id", "rater_id"} - set(df.columns) or have != want:
        raise InputError(f"columns must be utterance_id, rater_id, {', '.join(want)}; found "
                         f"{list(df.columns)}", file=path, fix=fix)
    pairs = list(zip(df["utterance_id"].astype(str), df["rater_id"].astype(str), strict=True))
    index: dict[tuple[str, str], int] = {}
    for i, pair in enumerate(pairs):
        if pair in index:
            raise InputError(f"(clip, rater) {pair} predicted twice", file=path, row=i + 1,
                             fix=fix)
        index[pair] = i
    probs = numeric_columns(df, want, path)
    for bad, what in ((~np.isfinite(probs).all(axis=1), "NaN or infinite probability"),
                      ((probs < 0).any(axis=1), "negative probability"),
                      (np.abs(probs.sum(axis=1) - 1.0) > SUM_TOLERANCE,
                       f"probabilities do not sum to 1 (tolerance {SUM_TOLERANCE})")):
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InputError(f"{what}: (clip, rater) {pairs[i]} has "
                             f"{probs[i].round(6).tolist()} ({int(bad.sum())} rows)",
                             file=path, row=i + 1, fix=fix)
    expected = list(zip(np.asarray(expected_ids).astype(str),
                        np.asarray(expected_raters).astype(str), strict=True))
    missing = [p for p in expected if p not in index]
    unknown = sorted(set(index) - set(expected))
    if missing:
        raise InputError(f"{len(missing)} (clip, rater) pair(s) of the fold's test votes have no "
                         f"rater prediction, e.g. {missing[:3]}", file=path, fix=fix)
    if unknown:
        raise InputError(f"{len(unknown)} predicted (clip, rater) pair(s) are not test votes of "
                         f"this fold, e.g. {unknown[:3]}", file=path, fix=fix)
    return probs[np.array([index[p] for p in expected], dtype=np.int64)] if expected else \
        np.zeros((0, len(classes)))
