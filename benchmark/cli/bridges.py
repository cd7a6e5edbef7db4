"""``serbench export`` and the external-predictions path of ``serbench score``.

Export writes a task as a Hugging Face ``DatasetDict`` (:mod:`serbench.export`);
``serbench score preds.csv --task T --name N`` checks predictions made outside
serbench and writes them as ordinary run records (:mod:`serbench.external`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .common import escape, load, out, path_option, print_json, show, table


def export(
    task: Annotated[str, typer.Argument(help="Task name (see `serbench tasks list`).")],
    to_: Annotated[str, typer.Option("--to", help="Folder to write (must not exist).")],
    audio: Annotated[bool, typer.Option(
        "--audio", help="Add an Audio column (embeds the audio bytes; decoding it needs "
                        "datasets' torchcodec). The audio_path column is always there.")] = False,
    overwrite: Annotated[bool, typer.Option(
        "--overwrite", help="Replace a previous serbench export at --to.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Write a task as a Hugging Face DatasetDict (datasets.load_from_disk reads it)."""
    from ..export import check_target, export_task, metadata
    from ..grid import writable

    to = path_option(to_, "--to")
    assert to is not None
    check_target(to, overwrite=overwrite)  # refuse before the task is built
    writable(to.parent, "--to", given=to)  # its folder: a file, read-only, not real (/proc)
    built = load(task)
    folder = export_task(built, to, audio=audio, overwrite=overwrite)
    meta = metadata(built) | {"path": str(folder), "audio": audio}
    if json_out:
        print_json(meta)
        return
    out.print(f"[green]exported[/] {task} ({len(built.counts.ids)} clips, {built.n_folds} folds "
              f"x train/dev/test) to {escape(str(folder))}")
    out.print(f"fingerprint {meta['fingerprint']}")
    out.print(f"read it with: datasets.load_from_disk({str(folder)!r})")


def score_external(predictions: Path, *, task: str, name: str, fingerprint: str | None,
                   version: str, train_rule: str, run_seed: int, runs: Path, resamples: int,
                   json_out: bool) -> None:
    """Check predictions made outside serbench, write them as run records and score them."""
    from ..external import import_predictions
    from ..grid import writable

    writable(runs, "--runs", create=False)  # a file in the way: exit 2 before checking
    built = load(task)
    folders = import_predictions(built, predictions, name=name, runs=runs, version=version,
                                 fingerprint=fingerprint, train_rule=train_rule,
                                 seed=run_seed)
    from ..records import read_record
    from ..scoring import score_record

    scored = [score_record(built, read_record(f / "record.json"), n_resamples=resamples)
              for f in folders]
    if json_out:
        print_json({"records": [str(f / "record.json") for f in folders],
                     "cells": [s.as_json() for s in scored]})
        return
    pm = built.spec.primary_metric
    rows = []
    for s in scored:
        cells = []
        for rule in built.spec.rules:
            v = s.point.get(rule, {}).get(pm)
            cells.append("n/a" if v is None else f"{v:.4f}")
        rows.append([str(s.key.fold), s.key.train_rule, str(s.key.seed), *cells])
    show(table("fold", "trained on", "seed", *built.spec.rules, rows=rows, ident=2,
                    title=escape(f"{task} · {name} (external) · {pm} by test rule")))
    out.print(f"wrote {len(folders)} run record(s) under {escape(str(runs))}; "
              f"rebuild the leaderboard with: serbench leaderboard --runs {escape(str(runs))}")
