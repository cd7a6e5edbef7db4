"""``serbench export`` and external-predictions scoring: self-contained typer commands.

Wire them into the CLI with ``app.command("export")(export_command)``, and let
``serbench score`` call :func:`score_external_command` when its argument is a
predictions file (``.csv`` / ``.parquet``) rather than a run folder (or
register it on its own: ``app.command("score-external")(score_external_command)``).
Errors are :class:`serbench.errors.SerbenchError`, which the CLI's ``main``
prints as one message with exit status 2.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

app = typer.Typer(help="Bridges to the ecosystem: export tasks, score external predictions.",
                  no_args_is_help=True, add_completion=False)


def _load(name: str) -> Any:
    """The prepared task (the demo is generated and prepared on first use)."""
    from .tasks import load_task

    return load_task(name)


def _print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=True) + "\n")


@app.command("export")
def export_command(
    task: Annotated[str, typer.Argument(help="Task name (see `serbench tasks list`).")],
    to: Annotated[Path, typer.Option("--to", help="Folder to write (must not exist).")],
    audio: Annotated[bool, typer.Option(
        "--audio", help="Add an Audio column (embeds the audio bytes; decoding it needs "
                        "datasets' torchcodec). The audio_path column is always there.")] = False,
    overwrite: Annotated[bool, typer.Option(
        "--overwrite", help="Replace a previous serbench export at --to.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Write a task as a Hugging Face DatasetDict (datasets.load_from_disk reads it)."""
    from .export import check_target, export_task, metadata

    check_target(to, overwrite=overwrite)  # refuse before the task is built
    built = _load(task)
    folder = export_task(built, to, audio=audio, overwrite=overwrite)
    meta = metadata(built) | {"path": str(folder), "audio": audio}
    if json_out:
        _print_json(meta)
        return
    out.print(f"[green]exported[/] {task} ({len(built.counts.ids)} clips, {built.n_folds} folds "
              f"x train/dev/test) to {folder}")
    out.print(f"fingerprint {meta['fingerprint']}")
    out.print(f"read it with: datasets.load_from_disk({str(folder)!r})")


@app.command("score")
def score_external_command(
    predictions: Annotated[Path, typer.Argument(
        help="CSV or Parquet: utterance_id, p_<class>..., optional fold, train_rule, seed, "
             "task_fingerprint.")],
    task: Annotated[str, typer.Option(help="Task the predictions are for.")],
    name: Annotated[str, typer.Option(help="Submission name for the records and leaderboard.")],
    fingerprint: Annotated[str | None, typer.Option(
        help="Task fingerprint the model was trained on (else a task_fingerprint column).")
    ] = None,
    version: Annotated[str, typer.Option(help="Version string of your model.")] = "",
    train_rule: Annotated[str, typer.Option(
        help="Training rule when the file has no train_rule column.")] = "AR",
    run_seed: Annotated[int, typer.Option(
        "--run-seed", help="Seed of the records when the file has no seed column.")] = 0,
    runs: Annotated[Path, typer.Option(help="Folder of run records to add to.")] =
    Path("leaderboard/runs"),
    resamples: Annotated[int, typer.Option(help="Bootstrap resamples for the intervals.")] = 1000,
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Check predictions made outside serbench, write them as run records and score them."""
    from .external import import_predictions

    built = _load(task)
    folders = import_predictions(built, predictions, name=name, runs=runs, version=version,
                                 fingerprint=fingerprint, train_rule=train_rule,
                                 seed=run_seed)
    from .records import read_record
    from .scoring import score_record

    scored = [score_record(built, read_record(f / "record.json"), n_resamples=resamples)
              for f in folders]
    if json_out:
        _print_json({"records": [str(f / "record.json") for f in folders],
                     "cells": [s.as_json() for s in scored]})
        return
    pm = built.spec.primary_metric
    table = Table(title=f"{task} · {name} (external) · {pm} by test rule")
    table.add_column("fold")
    table.add_column("trained on")
    table.add_column("seed")
    for rule in built.spec.rules:
        table.add_column(rule, justify="right")
    for s in scored:
        cells = []
        for rule in built.spec.rules:
            v = s.point.get(rule, {}).get(pm)
            cells.append("n/a" if v is None else f"{v:.4f}")
        table.add_row(str(s.key.fold), s.key.train_rule, str(s.key.seed), *cells)
    out.print(table)
    out.print(f"wrote {len(folders)} run record(s) under {runs}; "
              f"rebuild the leaderboard with: serbench leaderboard --runs {runs}")


def main() -> None:
    """Run these commands on their own (``python -m serbench.cli_bridges``), as ``serbench``
    runs them: a user's mistake is one message and exit status 2, never a traceback."""
    from .errors import SerbenchError

    try:
        app(standalone_mode=False)
    except SerbenchError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:  # click usage errors
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise


if __name__ == "__main__":
    main()
