"""Compare a built task with released label files (``serbench tasks verify``).

The released format has one CSV per rule and partition (``M_<p>.csv``,
``P_<p>.csv``, ``D_<p>.csv``; see :mod:`serbench.readers.released`).  For
every file found, partition ``p`` is compared with fold ``p`` of the task:
which clips the rule keeps, each clip's Train / Development / Test split, and
(optionally) the smoothed targets.  Released class names are matched to task
classes through the task's label map.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError
from ..vocab import SPLITS
from .task import Task

RULE_FILES = {"M": "MR", "P": "PR", "D": "AR"}
SPLIT_NAMES = {"Train": "train", "Development": "dev", "Test": "test"}


@dataclass
class CellReport:
    partition: int
    rule: str
    n_release: int
    n_task: int
    only_release: list[str] = field(default_factory=list)
    only_task: list[str] = field(default_factory=list)
    split_differs: list[str] = field(default_factory=list)
    target_max_abs_diff: float | None = None
    target_differs: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (
            self.only_release or self.only_task or self.split_differs or self.target_differs
        )


def _shares_clips(task: Task, root: Path) -> bool:
    """Whether the first released M/P/D file under ``root`` has a clip of ``task`` (True when
    there is none to read: the caller's own message says so)."""
    first = next((root / f"{letter}_{p}.csv" for p in range(1, task.n_folds + 1)
                  for letter in RULE_FILES if (root / f"{letter}_{p}.csv").exists()), None)
    if first is None:
        return True
    rel = pd.read_csv(first)
    id_col = "FileName" if "FileName" in rel.columns else rel.columns[0]
    ids = set(rel[id_col].astype(str).str.replace(r"\.wav$", "", regex=True))
    return bool(ids & set(map(str, task.counts.ids)))


def verify(
    task: Task, against: str | Path, *, targets: bool = True, tol: float = 1e-5
) -> list[CellReport]:
    root = Path(against)
    config = root / "config.json"
    if not config.exists():
        raise InputError(
            "config.json not found",
            file=config,
            fix="--against must be a released label folder (config.json + M/P/D files)",
        )
    released_classes = json.loads(config.read_text())["categorical"]["emo_type"]
    to_task = {c: task.spec.label_map.get(c, c) for c in released_classes}
    if not _shares_clips(task, root):
        raise InputError(
            f"none of its released clips is a clip of task {task.spec.name}: the folder holds "
            "another corpus's labels",
            file=root, fix=f"--against must be the released label folder of {task.spec.name}")
    if targets and sorted(to_task.values()) != sorted(task.spec.classes):
        raise InputError(
            f"released classes {released_classes} do not map onto the task classes "
            f"{list(task.spec.classes)}",
            file=config,
            fix="use --no-targets to compare membership and splits only",
        )
    order = (
        [
            released_classes.index(next(c for c in released_classes if to_task[c] == k))
            for k in task.spec.classes
        ]
        if targets
        else []
    )
    reports = []
    for p in range(1, task.n_folds + 1):
        for letter, rule in RULE_FILES.items():
            path = root / f"{letter}_{p}.csv"
            if not path.exists() or rule not in task.spec.rules:
                continue
            rel = pd.read_csv(path)
            id_col = "FileName" if "FileName" in rel.columns else rel.columns[0]
            rel.index = rel[id_col].astype(str).str.replace(r"\.wav$", "", regex=True)
            parts = [task.split(p, s, rule) for s in SPLITS]
            ids = np.concatenate([s.ids for s in parts]).astype(str)
            split = np.concatenate([[s.split] * len(s) for s in parts])
            tgt = np.concatenate([s.smoothed(task.spec.smoothing) for s in parts])
            mine = pd.DataFrame({"split": split}, index=ids)
            rep = CellReport(p, rule, len(rel), len(mine))
            rep.only_release = sorted(set(rel.index) - set(mine.index))
            rep.only_task = sorted(set(mine.index) - set(rel.index))
            common = rel.index.intersection(mine.index)
            rs = rel.loc[common, "Split_Set"].map(SPLIT_NAMES)
            rep.split_differs = sorted(common[(rs != mine.loc[common, "split"]).to_numpy()])
            if targets and len(common):
                theirs = rel.loc[common, released_classes].to_numpy(dtype=float)[:, order]
                pos = pd.Index(ids).get_indexer(common)
                diff = np.abs(theirs - tgt[pos]).max(axis=1)
                rep.target_max_abs_diff = float(diff.max())
                rep.target_differs = sorted(common[diff > tol])
            reports.append(rep)
    if not reports:
        raise InputError(
            "no M_<p>.csv / P_<p>.csv / D_<p>.csv files for this task's folds",
            file=root,
            fix="--against must be the released label folder of this corpus",
        )
    return reports
