"""Predictions made outside serbench, turned into ordinary run records.

A model trained with another toolkit (the HF ``Trainer``, SpeechBrain, a
hand-written loop over an export) enters the leaderboard without a
``Submission`` class: it writes one file of class probabilities for the test
clips and ``import_predictions`` checks it and writes one run record per
(fold, training rule, seed) in the format ``serbench run`` writes.

The file is CSV or Parquet, one row per (test clip, fold, training rule, seed):

=====================  ========  =============================================
column                 needed    meaning
=====================  ========  =============================================
``utterance_id``       yes       a clip of the fold's AR test set
``p_<class>``          yes       one per task class (any order), probabilities
``fold``               no        1-based fold; inferred when every clip is
                                 tested in exactly one fold
``train_rule``         no        a rule of the task (default: the option, AR)
``seed``               no        an integer (default: the option, 0)
``task_fingerprint``   no*       the task fingerprint (*or pass it as an
                                 option: one of the two is required)
=====================  ========  =============================================

Every check the runner applies to ``predict_proba`` output applies here
(:func:`serbench.outputs.check_probabilities`: numbers, no NaN / inf, no
negative value, rows summing to 1 within its tolerance, then renormalised),
plus the record reader's: every clip of the fold's test set predicted, no
unknown or duplicate id.  Each problem is one error naming the file, the row
and the fix, found before anything is written.  A cell that already has a
record is never replaced: the import refuses, and writes nothing.
"""

from __future__ import annotations

import hashlib
import platform
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import __version__
from .errors import FingerprintMismatch, InputError
from .records import RECORD, CellKey, numeric_columns, prob_columns, write_cell
from .tasks.task import Task

EXTERNAL = "external"
OPTIONAL = ("fold", "train_rule", "seed", "task_fingerprint")


@dataclass(frozen=True)
class ExternalCell:
    """One checked cell of an external predictions file, ready to be written."""

    key: CellKey
    ids: np.ndarray
    probs: np.ndarray
    rows: int


def read_file(path: str | Path) -> pd.DataFrame:
    """The predictions table (CSV or Parquet), with ``source_row`` numbers for messages."""
    path = Path(path)
    if path.is_dir():
        raise InputError("is a folder, not a predictions file", file=path,
                         fix="pass the CSV or Parquet file your model wrote (a run folder has "
                             "no .csv / .parquet suffix)")
    if not path.is_file():
        raise InputError("predictions file not found", file=path,
                         fix="pass the CSV or Parquet file your model wrote")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            df = pd.read_parquet(path)
            first = 1
        elif path.suffix.lower() in (".csv", ".tsv"):
            df = pd.read_csv(path, sep="\t" if path.suffix.lower() == ".tsv" else ",",
                             dtype={"utterance_id": str, "train_rule": str,
                                    "task_fingerprint": str})
            first = 2  # the header is line 1
        else:
            raise InputError(f"unknown predictions format {path.suffix!r}", file=path,
                             fix="write a .csv or .parquet file")
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"unreadable predictions file: {exc}", file=path,
                         fix="write one header row and one row per clip (CSV, UTF-8), or "
                             "Parquet") from None
    df = df.reset_index(drop=True)
    df["_row"] = np.arange(first, first + len(df))
    return df


def _fail(problem: str, path: Path, df: pd.DataFrame, mask: np.ndarray, fix: str) -> None:
    i = int(np.flatnonzero(mask)[0])
    raise InputError(f"{problem} ({int(mask.sum())} row(s))", file=path,
                     row=int(df["_row"].iloc[i]), fix=fix)


def _fingerprint(df: pd.DataFrame, path: Path, given: str | None, task: Task) -> str:
    """The one fingerprint the file claims, compared with the prepared task's."""
    claimed = given
    if "task_fingerprint" in df.columns:
        values = df["task_fingerprint"].astype(str).str.strip().unique()
        if len(values) != 1:
            raise InputError(f"the task_fingerprint column holds {len(values)} different values",
                             file=path, fix="predictions of one file are for one task build")
        if given is not None and values[0] != given:
            raise InputError(f"the task_fingerprint column ({values[0][:12]}) differs from the "
                             f"fingerprint passed ({given[:12]})", file=path,
                             fix="pass the fingerprint of the export the model was trained on")
        claimed = str(values[0])
    if not claimed:
        raise InputError("no task fingerprint: the file has no task_fingerprint column and none "
                         "was passed", file=path,
                         fix="pass --fingerprint (from the export's info or `serbench tasks show "
                             f"{task.spec.name} --json`) or add a task_fingerprint column")
    fp = task.fingerprint["fingerprint"]
    if claimed != fp:
        raise FingerprintMismatch(
            f"the predictions were made for task fingerprint {claimed[:12]}, the prepared task "
            f"{task.spec.name} is {fp[:12]}: its clips or targets differ", file=path,
            fix="re-export the task (serbench export), retrain and predict again, or prepare "
                "the task from the source the predictions were made for")
    return claimed


def _test_folds(task: Task) -> dict[str, list[int]]:
    """clip id -> the folds whose AR test set holds it."""
    out: dict[str, list[int]] = {}
    for f in range(1, task.n_folds + 1):
        for u in task.split(f, "test", "AR").ids:
            out.setdefault(str(u), []).append(f)
    return out


def check_predictions(task: Task, path: str | Path, *, name: str,
                      fingerprint: str | None = None, train_rule: str = "AR",
                      seed: int = 0) -> list[ExternalCell]:
    """Read and check an external predictions file; return its cells (nothing is written)."""
    path = Path(path)
    df = read_file(path)
    classes = list(task.spec.classes)
    want = prob_columns(classes)
    if "utterance_id" not in df.columns:
        raise InputError("missing column 'utterance_id'", file=path,
                         fix="columns: utterance_id, " + ", ".join(want))
    missing = [c for c in want if c not in df.columns]
    extra = sorted(c for c in df.columns if str(c).startswith("p_") and c not in want)
    if missing or extra:
        raise InputError(
            (f"missing probability column(s) {missing}" if missing else "") +
            ("; " if missing and extra else "") +
            (f"column(s) {extra} are not classes of {task.spec.name}" if extra else ""),
            file=path, fix=f"one p_<class> column per task class: {want}")
    if len(df) == 0:
        raise InputError("the predictions file has no rows", file=path)
    _fingerprint(df, path, fingerprint, task)
    ids = df["utterance_id"].astype(str).str.strip()
    empty = (df["utterance_id"].isna() | (ids == "")).to_numpy()
    if empty.any():
        _fail("empty utterance_id", path, df, empty, "every row names its clip")
    df["utterance_id"] = ids

    if "train_rule" not in df.columns and train_rule not in task.spec.rules:
        raise InputError(f"--train-rule {train_rule!r} (used because the file has no "
                         f"train_rule column) is not a training rule of {task.spec.name}",
                         fix=f"pass one of {', '.join(task.spec.rules)} (upper case), or add "
                             f"a train_rule column to {path}")
    if "seed" not in df.columns and (isinstance(seed, bool) or not isinstance(seed, int)
                                     or seed < 0):
        raise InputError(f"--run-seed {seed!r} (used because the file has no seed column) is "
                         "not a non-negative integer",
                         fix=f"pass e.g. --run-seed 0, or add a seed column to {path}")
    rules = df["train_rule"].astype(str).str.strip() if "train_rule" in df.columns else \
        pd.Series(train_rule, index=df.index)
    bad = ~rules.isin(task.spec.rules).to_numpy()
    if bad.any():
        _fail(f"training rule {rules[bad].iloc[0]!r} is not one of {list(task.spec.rules)}",
              path, df, bad, f"write one of {', '.join(task.spec.rules)} in train_rule")
    df["train_rule"] = rules
    seeds = pd.to_numeric(df["seed"], errors="coerce") if "seed" in df.columns else \
        pd.Series(seed, index=df.index, dtype=float)
    bad = (seeds.isna() | (seeds < 0) | (seeds != seeds.round())).to_numpy()
    if bad.any():
        _fail("seed is not a non-negative integer", path, df, bad, "write integer seeds")
    df["seed"] = seeds.astype(np.int64)

    known = _test_folds(task)
    if "fold" in df.columns:
        folds = pd.to_numeric(df["fold"], errors="coerce")
        bad = (folds.isna() | ~folds.isin(range(1, task.n_folds + 1))).to_numpy()
        if bad.any():
            _fail(f"fold is not an integer in 1..{task.n_folds}", path, df, bad,
                  f"folds of {task.spec.name} are 1..{task.n_folds}")
        df["fold"] = folds.astype(np.int64)
    else:
        unknown = ~df["utterance_id"].isin(list(known)).to_numpy()
        if unknown.any():
            _fail(f"utterance {df['utterance_id'][unknown].iloc[0]!r} is in no fold's test set "
                  f"of {task.spec.name}", path, df, unknown,
                  "predict only test clips (the export's foldN_test splits)")
        several = np.array([len(known[u]) > 1 for u in df["utterance_id"]])
        if several.any():
            _fail(f"utterance {df['utterance_id'][several].iloc[0]!r} is tested in several "
                  "folds", path, df, several, "add a fold column")
        df["fold"] = [known[u][0] for u in df["utterance_id"]]

    dup = df.duplicated(["utterance_id", "fold", "train_rule", "seed"], keep="first").to_numpy()
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        _fail(f"utterance {df['utterance_id'].iloc[i]!r} is predicted twice for fold "
              f"{df['fold'].iloc[i]}, rule {df['train_rule'].iloc[i]}, seed {df['seed'].iloc[i]}",
              path, df, dup, "one row per test clip and cell")
    from .outputs import SUM_TOLERANCE, check_probabilities

    probs: Any = numeric_columns(df, want, path, row_of=lambda i: int(df["_row"].iloc[i]))
    for mask, what in ((~np.isfinite(probs).all(axis=1), "NaN or infinite probability"),
                       ((probs < 0).any(axis=1), "negative probability"),
                       (np.abs(probs.sum(axis=1) - 1.0) > SUM_TOLERANCE,
                        f"probabilities do not sum to 1 (tolerance {SUM_TOLERANCE:g})")):
        if mask.any():
            i = int(np.flatnonzero(mask)[0])
            _fail(f"{what}: utterance {df['utterance_id'].iloc[i]!r} has "
                  f"{probs[i].round(6).tolist()}", path, df, mask,
                  "write a probability distribution per clip (softmax outputs)")

    cells = []
    for (fold, rule, sd), part in df.groupby(["fold", "train_rule", "seed"], sort=True):
        expected = task.split(int(fold), "test", "AR").ids.astype(str)
        got = part["utterance_id"].to_numpy()
        unknown = ~np.isin(got, expected)
        if unknown.any():
            u = got[unknown][0]
            where = f"tested in fold(s) {known[u]}" if u in known else \
                f"not a test clip of {task.spec.name}"
            raise InputError(f"{int(unknown.sum())} utterance(s) are not in fold {fold}'s test "
                             f"set, e.g. {u!r} ({where})", file=path,
                             row=int(part["_row"].to_numpy()[unknown][0]),
                             fix="predict exactly the clips of the fold's test split")
        absent = np.setdiff1d(expected, got)
        if len(absent):
            raise InputError(f"{len(absent)} test utterance(s) of fold {fold} (rule {rule}, "
                             f"seed {sd}) have no prediction, e.g. {absent[:5].tolist()}",
                             file=path, fix="predict every clip of the fold's test split "
                                            f"(fold{fold}_test in the export)")
        order = pd.Index(got).get_indexer(expected)
        p = probs[part.index.to_numpy()][order]
        try:
            p = check_probabilities(p, len(expected), len(classes))
        except ValueError as exc:  # the runner's own check, for any case the loop above missed
            raise InputError(str(exc).replace("predict_proba returned", "the file has"),
                             file=path) from None
        key = CellKey(task.spec.name, name, int(fold), str(rule), int(sd))
        cells.append(ExternalCell(key, expected, p, len(part)))
    return cells


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def import_predictions(task: Task, path: str | Path, *, name: str, runs: str | Path,
                       version: str = "", fingerprint: str | None = None,
                       train_rule: str = "AR", seed: int = 0,
                       description: str = "") -> list[Path]:
    """Check an external predictions file and write its run records; return the cell folders.

    Refuses (and writes nothing) when any of its cells already has a record.
    """
    from .cell import cell_lock

    path = Path(path)
    cells = check_predictions(task, path, name=name, fingerprint=fingerprint,
                              train_rule=train_rule, seed=seed)
    runs = Path(runs)
    taken = [c.key.folder(runs) for c in cells if (c.key.folder(runs) / RECORD).exists()]
    if taken:
        raise InputError(f"{len(taken)} cell(s) already have a run record, e.g. {taken[0]}",
                         file=path, fix="nothing was written; import under another --name, or "
                                        "delete those cell folders first")
    digest = sha256(path)
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    written = []
    for c in cells:
        folder = c.key.folder(runs)
        with cell_lock(folder) as held:
            if not held or (folder / RECORD).exists():
                raise InputError("another process is writing this cell", file=folder,
                                 fix="wait for it, or import under another --name")
            record: dict[str, Any] = {
                "task": c.key.task, "task_fingerprint": task.fingerprint["fingerprint"],
                "fold": c.key.fold, "train_rule": c.key.train_rule, "seed": c.key.seed,
                "submission": {"name": name, "plugin": EXTERNAL, "version": version,
                               "class": None},
                "external": {"file": str(path.resolve()), "sha256": digest, "rows": c.rows,
                             "imported_at": now, "description": description},
                "config": {}, "device": None,
                "versions": {"python": platform.python_version(), "serbench": __version__},
                "timings": {}, "n": {"test": len(c.ids)}, "missing_audio_test": [],
            }
            write_cell(folder, record, c.ids, c.probs, task.spec.classes)
        written.append(folder)
    return written
