"""What the recipes share: the finished cells of one variant, and writing a report's files."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .. import atomic
from ..records import Record, find_records
from ..tasks.task import Task


def finished(task: Task, runs: Path, label: str, train_rule: str, folds: list[int],
             seeds: list[int]) -> list[Record]:
    """The records of ``label`` under ``runs`` on these folds, seeds and training rule,
    made on the task as it is now (another fingerprint is not this task's cell)."""
    records, _ = find_records(runs / task.spec.name / label)
    return [r for r in records
            if r.key.train_rule == train_rule and r.key.fold in folds and r.key.seed in seeds
            and r.data["task_fingerprint"] == task.fingerprint["fingerprint"]]


def write_report(out: str | Path, stem: str, markdown: str, report: Any, svg: str
                 ) -> list[Path]:
    """``<stem>.md``, ``<stem>.json`` (the report dataclass) and ``<stem>.svg`` in ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    md, js, plot = out / f"{stem}.md", out / f"{stem}.json", out / f"{stem}.svg"
    atomic.write_text(md, markdown)
    atomic.write_text(js, json.dumps(asdict(report), indent=2, sort_keys=True) + "\n")
    atomic.write_text(plot, svg)
    return [md, js, plot]
