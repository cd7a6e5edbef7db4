"""``serbench prepare`` and ``serbench tasks list|show|verify|freeze|truth``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from .common import (
    JsonOpt,
    demo_progress,
    err,
    escape,
    load,
    out,
    path_option,
    print_json,
    show,
    table,
)

tasks_app = typer.Typer(help="List, show, verify and freeze tasks.", no_args_is_help=True)


def existing(path: Path | None, option: str, *, folder: bool = False) -> None:
    """Refuse a --source / --against that does not exist (or, with ``folder``, is a file)
    with the option named, rather than a message about a file expected inside it."""
    from ..errors import InputError

    if path is None:
        return
    if not path.exists():
        raise InputError(f"{option} {path}: no such {'folder' if folder else 'file or folder'}",
                         fix=f"pass the corpus release's folder as {option}" + (
                             "" if folder else ", or leave it out for the demo"))
    if folder and not path.is_dir():
        raise InputError(f"{option} {path} is a file, not a folder",
                         fix=f"pass the folder that holds the released files as {option}")


def prepare(
    task: Annotated[str, typer.Argument(help="Task name (see `serbench tasks list`).")],
    source_: Annotated[str | None, typer.Option(
        "--source", help="Folder of the corpus release.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Build a task's ratings table from a raw source and check it against the frozen task."""
    from ..readers import source_is_a_path
    from ..tasks import get_spec
    from ..tasks import prepare as prep

    source = path_option(source_, "--source")
    if source is not None and source_is_a_path(get_spec(task).reader):
        existing(source, "--source")
    progress, update = demo_progress()
    with progress:
        built, prov = prep(task, source, progress=update)
    if json_out:
        print_json(prov)
        return
    where = escape(str(prov["source"] or "the generated corpus"))
    out.print(f"[green]prepared[/] {task}: {prov['n_ratings']} ratings of "
              f"{len(built.counts.ids)} utterances from {where}")
    if prov.get("frozen", True):
        out.print(f"fingerprint {prov['fingerprint'][:12]} matches the frozen task")
    else:
        out.print(f"[yellow]fingerprint {prov['fingerprint'][:12]} (task not frozen)[/]")
    for reason, n in prov["drops"].items():
        out.print(f"[yellow]dropped[/] {n}: {escape(reason)}")
    for note in prov["notes"]:
        out.print(f"note: {escape(note)}")


def _task_row(name: str) -> dict[str, Any]:
    from .. import paths
    from ..errors import SerbenchError
    from ..tasks import get_spec

    try:
        spec = get_spec(name)
    except SerbenchError as exc:  # one broken private task must not hide the others
        return {"task": name, "error": str(exc)}
    return {"task": name, "classes": len(spec.classes), "folds": len(spec.folds),
            "reader": spec.reader, "question": spec.question, "frozen": spec.frozen,
            "prepared": (paths.task_cache(name) / "ratings.parquet").exists()}


@tasks_app.command("list")
def tasks_list(json_out: JsonOpt = False) -> None:
    """List the tasks and whether they are prepared (a broken task file is listed with why)."""
    from ..tasks import list_tasks

    rows = [_task_row(name) for name in list_tasks()]
    if json_out:
        print_json(rows)
        return
    shown = []
    for r in rows:
        if "error" in r:
            shown.append([r["task"], "-", "-", "-", "-", "-", "[red]unreadable[/]"])
            continue
        shown.append([r["task"], str(r["classes"]), str(r["folds"]), r["reader"], r["question"],
                      "yes" if r["frozen"] else "[yellow]no[/]",
                      "yes" if r["prepared"] else "[dim]no[/]"])
    show(table("task", "K", "folds", "reader", "question", "frozen", "prepared",
                    rows=shown, ident=4))
    for r in rows:
        if "error" in r:
            err.print(f"[yellow]task {escape(r['task'])} could not be read:[/] "
                      f"{escape(r['error'])}")


@tasks_app.command("show")
def tasks_show(
    task: Annotated[str, typer.Argument(help="Task name.")],
    json_out: JsonOpt = False,
) -> None:
    """Per fold and rule: train/dev/test counts, class distribution and the fingerprint."""
    from ..reference import human_spread, reference_rows
    from ..views import reference_table

    built = load(task)
    summary = built.summary()
    if json_out:
        print_json(summary | {"reference": reference_rows(built),
                              "reference_human_spread": human_spread(built)})
        return
    spec = built.spec
    out.print(
        f"[bold]{spec.name}[/] v{spec.version}  fingerprint [cyan]{summary['fingerprint'][:12]}[/]"
    )
    out.print(escape(spec.description))
    out.print(
        f"classes ({spec.k}): {', '.join(spec.classes)}   question: {spec.question}   "
        f"folds: {built.n_folds} by {spec.group_by}"
    )
    out.print(
        f"{summary['n_utterances']} utterances, {summary['n_ratings']} ratings, "
        f"{summary['n_raters'] or 'unknown'} raters;  kept: "
        + ", ".join(f"{r} {n}" for r, n in summary["rules"].items())
    )
    ag = summary["agreement"]
    if ag.get("krippendorff_alpha") is None:
        out.print(f"agreement: n/a ({escape(str(ag.get('why', 'not computable')))})")
    else:
        out.print(f"agreement over {ag['clips']} clips with >= 2 in-set votes "
                  f"({ag['raters_per_clip']:.2f} per clip): Fleiss' kappa "
                  f"{ag['fleiss_kappa']:.3f}, Krippendorff's alpha "
                  f"{ag['krippendorff_alpha']:.3f}")
    for rule, fit in summary.get("aggregation", {}).items():
        out.print(f"{rule}: {fit['method']}, {fit['workers']} ({fit['n_workers']} worker"
                  f"{'s' if fit['n_workers'] != 1 else ''}), {fit['iterations']} EM iterations, "
                  + ("converged" if fit["converged"] else "[yellow]not converged[/]")
                  + (f"; {escape(fit['note'])}" if fit.get("note") else ""))
    rows = []
    for fold in summary["folds"]:
        for rule, cell in fold["rules"].items():
            dist = "  ".join(
                f"{c[:3]} {v:.1f}" if rule == "AR" else f"{c[:3]} {v}"
                for c, v in cell["test"]["class_counts"].items()
            )
            rows.append([str(fold["fold"]), rule, str(cell["train"]["n"]), str(cell["dev"]["n"]),
                         str(cell["test"]["n"]), dist])
    show(table("fold", "rule", "train", "dev", "test", "test class distribution",
                    rows=rows, ident=2))
    head, ref_rows, notes = reference_table(built)
    show(table(*head, rows=ref_rows, ident=2,
                    title="reference rows: what a prior, the best constant and one held-out "
                          "rater score" + (", and the oracle (the known truth)"
                                           if built.truth is not None else "")
                          + " (docs/methods.md#ref)"))
    for note in notes:
        out.print(f"[dim]{escape(note)}[/]")
    dropped = summary["dropped"]
    if dropped["no_in_set_vote"]:
        out.print(
            f"dropped by every rule: {dropped['no_in_set_vote']} utterances with no in-set vote"
        )
    if dropped["mr_exclusions"]["ids"]:
        out.print(
            f"[yellow]excluded from MR[/] ({len(dropped['mr_exclusions']['ids'])}): "
            + ", ".join(dropped["mr_exclusions"]["ids"])
        )
        out.print(f"  why: {escape(dropped['mr_exclusions']['reason'])}")


@tasks_app.command("verify")
def tasks_verify(
    task: Annotated[str, typer.Argument(help="Task name.")],
    against: Annotated[
        Path, typer.Option(help="Released label folder (config.json + M/P/D_<p>.csv).")
    ],
    targets: Annotated[bool, typer.Option(help="Also compare the smoothed targets.")] = True,
    json_out: JsonOpt = False,
) -> None:
    """Compare the prepared task with released label files; exit 1 on any difference."""
    from dataclasses import asdict

    from ..tasks.verify import verify

    existing(against, "--against", folder=True)
    reports = verify(load(task), against, targets=targets)
    ok = all(r.ok for r in reports)
    if json_out:
        print_json({"ok": ok, "cells": [asdict(r) | {"ok": r.ok} for r in reports]})
    else:
        rows = [[str(r.partition), r.rule, str(r.n_release), str(r.n_task),
                 str(len(r.only_release)), str(len(r.only_task)), str(len(r.split_differs)),
                 "-" if r.target_max_abs_diff is None else f"{r.target_max_abs_diff:.1e}",
                 "[green]yes[/]" if r.ok else "[red]NO[/]"] for r in reports]
        show(table("partition", "rule", "release", "task", "only release", "only task",
                        "split differs", "max |target diff|", "ok", rows=rows, ident=2))
        for r in reports:
            for label, items in (
                ("only in release", r.only_release),
                ("only in task", r.only_task),
                ("split differs", r.split_differs),
                ("target differs", r.target_differs),
            ):
                if items:
                    out.print(
                        f"partition {r.partition} {r.rule} {label}: {escape(str(items[:10]))}"
                        + (f" (+{len(items) - 10} more)" if len(items) > 10 else "")
                    )
    if not ok:
        raise typer.Exit(1)


@tasks_app.command("freeze")
def tasks_freeze(
    task: Annotated[str, typer.Argument(help="Task name.")],
    source_: Annotated[str | None, typer.Option(
        "--source", help="Folder of the corpus release.")] = None,
    force: Annotated[bool, typer.Option(
        "--force", help="Overwrite a frozen task with a different build even though the "
                        "version in task.yaml is not above the frozen one (only for a "
                        "fingerprint.json that records no version).")] = False,
) -> None:
    """(Maintainers) write the task's manifest.csv and fingerprint.json from a source.

    A frozen task whose build differs is refused (exit 2) unless `version:` in task.yaml
    was raised above the frozen version; an identical build writes nothing."""
    from ..tasks import freeze

    source = path_option(source_, "--source")
    existing(source, "--source")
    built, written = freeze(task, source, force=force)
    fp = built.fingerprint["fingerprint"][:12]
    if not written:
        out.print(f"{task} is already frozen with this build (fingerprint {fp}, "
                  f"{len(built.counts.ids)} utterances): nothing written")
        return
    out.print(f"froze {task} v{built.spec.version}: fingerprint {fp}, "
              f"{len(built.counts.ids)} utterances")


@tasks_app.command("truth")
def tasks_truth(
    task: Annotated[str, typer.Argument(help="Task name (a simulated corpus).")],
    clips: Annotated[Path, typer.Option(help="The corpus's clip table (CSV) with one "
                                             "mix_<class> column per class.")],
    id_column: Annotated[str, typer.Option(help="Clip id column of the table.")] =
    "utterance_id",
    json_out: JsonOpt = False,
) -> None:
    """How close each rule's targets are to the clips' true mixtures (simulated corpora)."""
    from ..truth import SETS, closest_rule, read_clip_table, report_rows, task_truth_report

    built = load(task)
    report = task_truth_report(built, read_clip_table(clips), id_column=id_column,
                               file=str(clips))
    closest = {s: {m: closest_rule(report, clips=s, measure=m) for m in ("tv", "js", "accuracy")}
               for s in SETS}
    if json_out:
        print_json({"task": built.spec.name, "fingerprint": built.fingerprint["fingerprint"],
                    "rules": report, "closest": closest})
        return
    head, rows = report_rows(report)
    show(table(*head, rows=rows, ident=1,
               title=f"{built.spec.name}: rule targets against the true mixtures (tv, js: "
                     "lower is closer; accuracy: top class = the truth's)"))
    for s in SETS:
        out.print(f"closest on {s} clips: " + ", ".join(f"{m} {r or '-'}"
                                                        for m, r in closest[s].items()))
