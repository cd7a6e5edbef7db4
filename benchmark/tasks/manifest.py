"""Frozen split manifests: utterance id -> group and split in every fold.

``tasks/<name>/manifest.csv`` has columns ``utterance_id, group, fold_1 ..
fold_F`` with values ``train`` / ``dev`` / ``test``.  It is derived from the
fold definition and the data once (``serbench tasks freeze``) and then acts
as the contract: a later build must reproduce it exactly, or it is an error
that lists the differences.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .. import atomic
from ..errors import InputError
from ..vocab import SPLITS  # declared once, in serbench.vocab
from .spec import TaskSpec


def fold_columns(n_folds: int) -> list[str]:
    return [f"fold_{i + 1}" for i in range(n_folds)]


def assign_folds(groups: pd.Series, spec: TaskSpec) -> pd.DataFrame:
    """Apply the task's fold definition to utterance -> group (index = utterance id)."""
    groups = groups.astype(str)
    known = set(groups.unique())
    out = pd.DataFrame({"utterance_id": groups.index.astype(str), "group": groups.to_numpy()})
    for i, fold in enumerate(spec.folds):
        missing = sorted((set(fold.test) | set(fold.dev)) - known)
        frozen = spec.frozen and spec.path is not None and \
            (Path(spec.path).parent / "fingerprint.json").exists()
        if missing and frozen:  # a frozen task is right by definition: the source is short
            raise InputError(
                f"the source has no clip of {spec.group_by} {missing}, which fold {i + 1} of "
                f"the frozen task {spec.name} needs: is the source incomplete (truncated, or a "
                "subset of the corpus)?",
                fix="prepare from the complete, unmodified release; the task file is not at "
                    "fault",
            )
        if missing:
            raise InputError(
                f"fold {i + 1} names {spec.group_by} value(s) {missing} that are not in the data",
                file=spec.path,
                fix=f"check folds.splits; the data has {sorted(known)[:12]}...",
            )
        col = pd.Series("train", index=out.index)
        col[out["group"].isin(fold.dev)] = "dev"
        col[out["group"].isin(fold.test)] = "test"
        out[f"fold_{i + 1}"] = col
    return out.sort_values("utterance_id").reset_index(drop=True)


def write_manifest(path: str | Path, manifest: pd.DataFrame) -> None:
    atomic.write_text(path, manifest.to_csv(index=False, lineterminator="\n"))


def read_manifest(path: str | Path, n_folds: int) -> pd.DataFrame:
    path = Path(path)
    if not path.exists():
        raise InputError(
            "split manifest not found",
            file=path,
            fix="freeze the task first: serbench tasks freeze TASK --source DIR",
        )
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"unreadable split manifest: {exc}", file=path,
                         fix="restore the task's manifest.csv from the repository") from None
    cols = ["utterance_id", "group", *fold_columns(n_folds)]
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise InputError(
            f"manifest lacks columns {missing}",
            file=path,
            fix="the manifest must match the task's folds; re-freeze the task",
        )
    for c in fold_columns(n_folds):
        bad = ~df[c].isin(SPLITS)
        if bad.any():
            i = int(bad.to_numpy().nonzero()[0][0])
            raise InputError(
                f"{c} has value {df[c].iloc[i]!r}, expected one of {SPLITS}", file=path, row=i + 2
            )
    dup = df["utterance_id"].duplicated()
    if dup.any():
        i = int(dup.to_numpy().nonzero()[0][0])
        raise InputError(
            f"duplicate utterance id {df['utterance_id'].iloc[i]!r}", file=path, row=i + 2
        )
    return df[cols].sort_values("utterance_id").reset_index(drop=True)


def compare(frozen: pd.DataFrame, built: pd.DataFrame, *, file: str | Path, limit: int = 5) -> None:
    """Raise an error listing how ``built`` differs from the ``frozen`` manifest."""
    a = frozen.set_index("utterance_id")
    b = built.set_index("utterance_id")
    problems = []
    only_frozen = a.index.difference(b.index)
    only_built = b.index.difference(a.index)
    if len(only_frozen):
        problems.append(
            f"{len(only_frozen)} utterance(s) of the manifest are missing from the data, "
            f"e.g. {list(only_frozen[:limit])}"
        )
    if len(only_built):
        problems.append(
            f"{len(only_built)} utterance(s) in the data are not in the manifest, "
            f"e.g. {list(only_built[:limit])}"
        )
    common = a.index.intersection(b.index)
    cols = [c for c in a.columns if c in b.columns]
    diff = (a.loc[common, cols] != b.loc[common, cols]).any(axis=1)
    if diff.any():
        ex = common[diff.to_numpy()][:limit]
        detail = "; ".join(
            f"{u}: manifest {a.loc[u, cols].tolist()} vs data {b.loc[u, cols].tolist()}" for u in ex
        )
        problems.append(f"{int(diff.sum())} utterance(s) change group or split: {detail}")
    if problems:
        raise InputError(
            "the data does not match the frozen split manifest:\n  - " + "\n  - ".join(problems),
            file=file,
            fix="prepare the task from the corpus release it was frozen on; a deliberate change "
            "needs a new task version (serbench tasks freeze)",
        )
