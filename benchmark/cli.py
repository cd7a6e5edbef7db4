"""The ``serbench`` command line (typer + rich).

Every command that fails on bad input prints one clear message (file, row,
fix) and exits with status 2; no traceback reaches the user.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from . import __version__
from .errors import SerbenchError

app = typer.Typer(
    help="serbench: a speech emotion recognition benchmark that counts every rater.",
    no_args_is_help=True,
    add_completion=False,
)
tasks_app = typer.Typer(help="List, show, verify and freeze tasks.", no_args_is_help=True)
app.add_typer(tasks_app, name="tasks")
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output (stable keys).")]


def _print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def _demo_progress() -> tuple[Progress, Any]:
    progress = Progress(
        TextColumn("[bold]generating demo corpus"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} clips"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )
    handle = progress.add_task("demo", total=None)

    def update(done: int, total: int) -> None:
        progress.update(handle, completed=done, total=total)

    return progress, update


def _load(name: str):
    from .demo import corpus
    from .tasks import get_spec, load_task
    from .tasks import prepare as prep

    spec = get_spec(name)
    if spec.reader == "demo":
        from . import paths

        if not (paths.task_cache(name) / "ratings.parquet").exists():
            progress, update = _demo_progress()
            with progress:
                corpus.ensure_demo_corpus(update)
            return prep(name)[0]
    return load_task(name)


@app.command()
def version() -> None:
    """Print the serbench version."""
    out.print(__version__)


@app.command()
def prepare(
    task: Annotated[str, typer.Argument(help="Task name (see `serbench tasks list`).")],
    source: Annotated[Path | None, typer.Option(help="Folder of the corpus release.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Build a task's ratings table from a raw source and check it against the frozen task."""
    from .demo import corpus
    from .tasks import get_spec
    from .tasks import prepare as prep

    spec = get_spec(task)
    if spec.reader == "demo" and source is None:
        progress, update = _demo_progress()
        with progress:
            corpus.ensure_demo_corpus(update)
    built, prov = prep(task, source)
    if json_out:
        _print_json(prov)
        return
    out.print(
        f"[green]prepared[/] {task}: {prov['n_ratings']} ratings of "
        f"{len(built.counts.ids)} utterances from {prov['source'] or 'the generated corpus'}"
    )
    if prov.get("frozen", True):
        out.print(f"fingerprint {prov['fingerprint'][:12]} matches the frozen task")
    else:
        out.print(f"[yellow]fingerprint {prov['fingerprint'][:12]} (task not frozen)[/]")
    for reason, n in prov["drops"].items():
        out.print(f"[yellow]dropped[/] {n}: {reason}")
    for note in prov["notes"]:
        out.print(f"note: {note}")


@tasks_app.command("list")
def tasks_list(json_out: JsonOpt = False) -> None:
    """List the tasks and whether they are prepared."""
    from . import paths
    from .tasks import get_spec, list_tasks

    rows = []
    for name in list_tasks():
        spec = get_spec(name)
        rows.append(
            {
                "task": name,
                "classes": len(spec.classes),
                "folds": len(spec.folds),
                "reader": spec.reader,
                "question": spec.question,
                "frozen": spec.frozen,
                "prepared": (paths.task_cache(name) / "ratings.parquet").exists(),
            }
        )
    if json_out:
        _print_json(rows)
        return
    table = Table("task", "K", "folds", "reader", "question", "frozen", "prepared")
    for r in rows:
        table.add_row(
            r["task"],
            str(r["classes"]),
            str(r["folds"]),
            r["reader"],
            r["question"],
            "yes" if r["frozen"] else "[yellow]no[/]",
            "yes" if r["prepared"] else "[dim]no[/]",
        )
    out.print(table)


@tasks_app.command("show")
def tasks_show(
    task: Annotated[str, typer.Argument(help="Task name.")],
    json_out: JsonOpt = False,
) -> None:
    """Per fold and rule: train/dev/test counts, class distribution and the fingerprint."""
    built = _load(task)
    summary = built.summary()
    if json_out:
        _print_json(summary)
        return
    spec = built.spec
    out.print(
        f"[bold]{spec.name}[/] v{spec.version}  fingerprint [cyan]{summary['fingerprint'][:12]}[/]"
    )
    out.print(spec.description)
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
    out.print(f"agreement over {ag['clips']} clips with >= 2 in-set votes "
              f"({ag['raters_per_clip']:.2f} per clip): Fleiss' kappa {ag['fleiss_kappa']:.3f}, "
              f"Krippendorff's alpha {ag['krippendorff_alpha']:.3f}")
    table = Table("fold", "rule", "train", "dev", "test", "test class distribution")
    for fold in summary["folds"]:
        for rule, cell in fold["rules"].items():
            dist = "  ".join(
                f"{c[:3]} {v:.1f}" if rule == "AR" else f"{c[:3]} {v}"
                for c, v in cell["test"]["class_counts"].items()
            )
            table.add_row(
                str(fold["fold"]),
                rule,
                str(cell["train"]["n"]),
                str(cell["dev"]["n"]),
                str(cell["test"]["n"]),
                dist,
            )
        table.add_section()
    out.print(table)
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
        out.print(f"  why: {dropped['mr_exclusions']['reason']}")


@tasks_app.command("verify")
def tasks_verify(
    task: Annotated[str, typer.Argument(help="Task name.")],
    against: Annotated[
        Path, typer.Option(help="Released label folder (config.json + M/P/D_<p>.csv).")
    ],
    targets: Annotated[bool, typer.Option(help="Also compare the smoothed targets.")] = True,
    json_out: JsonOpt = False,
) -> None:
    """Compare the prepared task with released label files: membership, splits, targets."""
    from dataclasses import asdict

    from .tasks.verify import verify

    reports = verify(_load(task), against, targets=targets)
    ok = all(r.ok for r in reports)
    if json_out:
        _print_json({"ok": ok, "cells": [asdict(r) | {"ok": r.ok} for r in reports]})
    else:
        table = Table(
            "partition",
            "rule",
            "release",
            "task",
            "only release",
            "only task",
            "split differs",
            "max |target diff|",
            "ok",
        )
        for r in reports:
            table.add_row(
                str(r.partition),
                r.rule,
                str(r.n_release),
                str(r.n_task),
                str(len(r.only_release)),
                str(len(r.only_task)),
                str(len(r.split_differs)),
                "-" if r.target_max_abs_diff is None else f"{r.target_max_abs_diff:.1e}",
                "[green]yes[/]" if r.ok else "[red]NO[/]",
            )
        out.print(table)
        for r in reports:
            for label, items in (
                ("only in release", r.only_release),
                ("only in task", r.only_task),
                ("split differs", r.split_differs),
                ("target differs", r.target_differs),
            ):
                if items:
                    out.print(
                        f"partition {r.partition} {r.rule} {label}: {items[:10]}"
                        + (f" (+{len(items) - 10} more)" if len(items) > 10 else "")
                    )
    if not ok:
        raise typer.Exit(1)


@tasks_app.command("freeze")
def tasks_freeze(
    task: Annotated[str, typer.Argument(help="Task name.")],
    source: Annotated[Path | None, typer.Option(help="Folder of the corpus release.")] = None,
) -> None:
    """(Maintainers) write the task's manifest.csv and fingerprint.json from a source."""
    from .tasks import freeze

    built = freeze(task, source)
    out.print(
        f"froze {task}: fingerprint {built.fingerprint['fingerprint'][:12]}, "
        f"{len(built.counts.ids)} utterances"
    )


@app.command()
def score(
    run_dir: Annotated[Path, typer.Argument(help="A run folder (or any folder above run cells).")],
    json_out: JsonOpt = False,
    resamples: Annotated[int, typer.Option(help="Bootstrap resamples for the intervals.")] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap.")] = 0,
    double_softmax: Annotated[bool, typer.Option(
        help="Reproduce the released code's second softmax before the 1/K threshold.")] = False,
) -> None:
    """Score run cells on the MR, PR and AR test sets of their folds."""
    from .records import find_records
    from .scoring import score_record

    records, bad = find_records(run_dir)
    if not records:
        from .errors import InputError
        raise InputError("no readable record.json found", file=run_dir,
                         fix="point at a run folder written by serbench run")
    tasks: dict[str, Any] = {}
    scored = []
    for r in records:
        name = r.data["task"]
        if name not in tasks:
            tasks[name] = _load(name)
        scored.append(score_record(tasks[name], r, n_resamples=resamples, seed=seed,
                                   double_softmax=double_softmax))
    if json_out:
        _print_json({"cells": [s.as_json() for s in scored],
                     "skipped": [{"record": str(p), "why": w} for p, w in bad]})
        return
    for s in scored:
        spec = tasks[s.key.task].spec
        shown = [m for m in (spec.primary_metric, "uar", "macro_f1", "kl", "ece")
                 if m in spec.metrics]
        shown = list(dict.fromkeys(shown))
        table = Table(title=f"{s.key.task} · {s.key.submission} · fold {s.key.fold} · "
                            f"trained on {s.key.train_rule} · seed {s.key.seed}")
        table.add_column("test rule")
        table.add_column("clips", justify="right")
        for m in shown:
            table.add_column(m, justify="right")
        for rule, values in s.point.items():
            cells = []
            for m in shown:
                v = values.get(m)
                if v is None:
                    cells.append("[dim]n/a[/]")
                else:
                    lo, hi = s.interval(rule, m)
                    cells.append(f"{v:.4f} [dim][{lo:.3f}, {hi:.3f}][/]")
            table.add_row(rule, str(s.n[rule]), *cells)
        out.print(table)
    for p, why in bad:
        err.print(f"[yellow]skipped[/] {p}: {why}")


@app.command()
def leaderboard(
    runs: Annotated[Path, typer.Option(help="Folder of run records.")] = Path("leaderboard/runs"),
    out_dir: Annotated[Path, typer.Option("--out", help="Where to write the leaderboard.")] =
    Path("leaderboard"),
    resamples: Annotated[int, typer.Option(help="Bootstrap resamples.")] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap.")] = 0,
    check_: Annotated[bool, typer.Option(
        "--check", help="Recompute every score from the stored predictions and compare with "
                        "the stored leaderboard.json; write nothing, exit 1 on any difference."
    )] = False,
) -> None:
    """Regenerate README.md, leaderboard.csv/json, index.html and plots from run records."""
    from . import leaderboard as lb
    from .records import find_records

    n = len(find_records(runs)[0]) if runs.exists() else 0
    progress = Progress(TextColumn("[bold]scoring records"), BarColumn(),
                        TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                        console=err, transient=True)
    with progress:
        handle = progress.add_task("score", total=n)
        board = lb.build(runs, n_resamples=resamples, seed=seed,
                         progress=lambda: progress.advance(handle))
    if check_:
        compared, diffs = lb.check(board, out_dir)
        for p, why in board.skipped:
            err.print(f"[yellow]skipped[/] {p}: {why}")
        if diffs:
            for d in diffs[:50]:
                err.print(f"[red]differs[/] {d}", highlight=False)
            err.print(f"{len(diffs)} difference(s) between the stored leaderboard and the "
                      f"scores recomputed from {runs}")
            raise typer.Exit(1)
        out.print(f"leaderboard matches: {compared} values recomputed from {n} record(s)")
        return
    files = lb.write(board, out_dir)
    out.print(f"wrote {len(files)} files to {out_dir} ({len(board.tasks)} task(s), "
              f"{sum(len(t.aggregates) for t in board.tasks)} submission(s))")
    for p, why in board.skipped:
        err.print(f"[yellow]skipped[/] {p}: {why}")


@app.command()
def compare(
    run_a: Annotated[Path, typer.Argument(help="Run folder of submission A.")],
    run_b: Annotated[Path, typer.Argument(help="Run folder of submission B.")],
    metric: Annotated[str | None, typer.Option(help="Metric (default: the task's primary).")] =
    None,
    train_rule: Annotated[str, typer.Option(help="Training rule of the compared cells.")] = "AR",
    test_rule: Annotated[str, typer.Option(help="Test rule.")] = "AR",
    resamples: Annotated[int, typer.Option(help="Bootstrap resamples.")] = 1000,
    json_out: JsonOpt = False,
) -> None:
    """Paired bootstrap and 40-subset t-test between two submissions on shared cells."""
    from dataclasses import asdict

    from .records import find_records
    from .scoring import compare as cmp
    from .scoring import load_probs

    runs = []
    for folder in (run_a, run_b):
        records, _ = find_records(folder)
        if not records:
            from .errors import InputError
            raise InputError("no readable record.json found", file=folder)
        runs.append(records)
    task = _load(runs[0][0].data["task"])
    loaded = [[(r.key, *load_probs(task, r)) for r in rs] for rs in runs]
    res = cmp(task, loaded[0], loaded[1], metric=metric or task.spec.primary_metric,
              train_rule=train_rule, test_rule=test_rule, n_resamples=resamples)
    if json_out:
        _print_json(asdict(res))
        return
    a, b = runs[0][0].key.submission, runs[1][0].key.submission
    out.print(f"{res.metric} on {res.test_rule} test, trained on {res.train_rule}, "
              f"{res.cells} shared cell(s)")
    out.print(f"  {a}: {res.mean_a:.4f}   {b}: {res.mean_b:.4f}   difference {res.diff:+.4f} "
              f"[{res.diff_ci[0]:+.4f}, {res.diff_ci[1]:+.4f}]")
    out.print(f"  paired bootstrap p = {res.p_bootstrap:.4f};  {res.n_subsets}-subset paired "
              f"t-test t = {res.t_subsets:.3f}, p = {res.p_subsets:.4g}")


def _parse_config(items: list[str]) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            from .errors import InputError
            raise InputError(f"--config {item!r} is not key=value",
                             fix="e.g. --config loss=kl --config max_epochs=5")
        try:
            config[key] = json.loads(value)
        except json.JSONDecodeError:
            config[key] = value
    return config


def _run_grid(runner, keys, title: str = "grid", executor=None) -> list:
    """Features, then every cell, with rich progress bars (features, grid, training)."""
    from rich.progress import MofNCompleteColumn

    from .executors import LocalExecutor

    executor = executor or LocalExecutor()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[info]}"), TimeElapsedColumn())
    with Progress(*columns, console=err) as progress:
        feat = progress.add_task("features", total=None, info="")
        mapper = None
        if executor.name != "local":
            def mapper(fn, items, _ex=executor):
                return _ex.map(fn, items, device=runner.device)
        runner.prepare_features(lambda d, n: progress.update(feat, completed=d, total=n),
                                mapper=mapper)
        progress.update(feat, visible=False)
        grid = progress.add_task(title, total=len(keys), info="")
        train = progress.add_task("training", total=None, info="", visible=False)

        def start(key) -> None:
            label = f"fold {key.fold} {key.train_rule} seed {key.seed}"
            progress.update(grid, info=label if executor.name == "local" else
                            f"{executor.name}: submitted {label}")
            if executor.name == "local":
                progress.reset(train, total=None, visible=True, description=f"  {label}",
                               info="")

        def report(_key):
            def update(step: int, total: int, message: str) -> None:
                progress.update(train, completed=step, total=total, info=message)
            return update

        def done(_res) -> None:
            progress.update(train, visible=False)
            progress.advance(grid)

        return executor.run(runner, keys, on_start=start, on_done=done, report=report)


def _cell_counts(results: list) -> str:
    """``3 run, 2 already done`` (+ cells another process was running at the time)."""
    from .runner import BUSY

    done = sum(r.status == "done" for r in results)
    busy = sum(r.status == "skipped" and r.message == BUSY for r in results)
    skipped = sum(r.status == "skipped" for r in results) - busy
    text = f"{done} run, {skipped} already done"
    return text + (f", {busy} left to another run working in the same folder" if busy else "")


def _executor(name: str, address: str | None, cpus_per_cell: int, runner_device: str):
    """The executor, and the device its cells run on (a Ray cluster decides ``auto`` itself)."""
    from .executors import make

    executor = make(name, address=address, cpus_per_cell=cpus_per_cell)
    if executor.name == "local":
        return executor, None
    return executor, executor.device(runner_device)


@app.command()
def run(
    task: Annotated[str, typer.Option(help="Task name.")] = "demo",
    submission: Annotated[str, typer.Option(
        help="Submission name, path/to/file.py:ClassName, or an entry point.")] = "blstm-fc",
    config: Annotated[list[str] | None, typer.Option(
        help="Submission option key=value (JSON values), repeatable.")] = None,
    name: Annotated[str | None, typer.Option(
        help="Record the runs under this name instead of the submission's (one name per "
             "configuration, e.g. blstm-fc+kl+pen0.2).")] = None,
    folds: Annotated[str | None, typer.Option(help="Comma-separated folds (default all).")] = None,
    rules: Annotated[str | None, typer.Option(help="Comma-separated training rules.")] = None,
    seeds: Annotated[str, typer.Option(help="Comma-separated seeds.")] = "0",
    device: Annotated[str, typer.Option(help="auto, cpu or cuda[:N].")] = "auto",
    runs: Annotated[Path, typer.Option(help="Run records folder.")] = Path("leaderboard/runs"),
    out_dir: Annotated[Path, typer.Option("--out", help="Leaderboard folder.")] =
    Path("leaderboard"),
    allow_missing_audio: Annotated[bool, typer.Option(
        help="Predict test clips without audio as uniform (the record lists them).")] = False,
    leaderboard_: Annotated[bool, typer.Option("--leaderboard/--no-leaderboard",
                                               help="Rebuild the leaderboard after the grid.")]
    = True,
    resamples: Annotated[int, typer.Option(help="Bootstrap resamples when scoring.")] = 1000,
    executor_: Annotated[str, typer.Option("--executor", help=(
        "local (cells one by one here) or ray (cells and feature shards as Ray tasks; "
        'pip install "serbench[ray]").'))] = "local",
    address: Annotated[str | None, typer.Option(help=(
        "Ray cluster address (auto, host:6379, ray://host:10001); default: a private "
        "local Ray instance on 127.0.0.1."))] = None,
    cpus_per_cell: Annotated[int, typer.Option(help=(
        "Ray: CPUs (and torch threads) per cell; cells on cuda also get one GPU each."))] = 1,
    cell_timeout: Annotated[float | None, typer.Option(help=(
        "Seconds a cell may run before it fails (the other cells go on)."))] = None,
    save_models: Annotated[bool, typer.Option(help=(
        "Save each fitted model as model.safetensors in its cell folder."))] = False,
    load_models: Annotated[Path | None, typer.Option(help=(
        "Runs folder of an earlier --save-models run: load its models instead of "
        "training (same task, submission name and configuration)."))] = None,
) -> None:
    """Run a submission on a task's grid (folds x rules x seeds), score it, update the leaderboard.

    With no arguments: the demo task with the blstm-fc baseline, end to end.
    """
    import time

    from . import leaderboard as lb
    from .plugins import resolve
    from .runner import Runner

    t0 = time.perf_counter()
    built = _load(task)
    cls = resolve(submission)
    executor, cluster_device = _executor(executor_, address, cpus_per_cell, device)
    runner = Runner(built, cls, _parse_config(config or []), runs=runs,
                    device="cpu" if cluster_device else device, label=name,
                    cell_timeout=cell_timeout, save_models=save_models,
                    load_models=load_models)
    if cluster_device:  # cells run on the cluster's devices, not this machine's
        runner.device = cluster_device
    keys = runner.cells([int(f) for f in folds.split(",")] if folds else None,
                        rules.split(",") if rules else None, [int(s) for s in seeds.split(",")])
    out.print(f"[bold]{runner.label}[/] v{cls.version} on [bold]{task}[/] "
              f"({len(keys)} cells, device {runner.device}, executor {executor.name}) -> {runs}")
    try:
        results = _run_grid(runner, keys, executor=executor)
    finally:
        if executor.name != "local":
            executor.shutdown()
    failed = [r for r in results if r.status == "failed"]
    out.print(f"cells: {_cell_counts(results)}, {len(failed)} failed")
    for r in failed:
        err.print(f"[red]failed[/] fold {r.key.fold} {r.key.train_rule} seed {r.key.seed}: "
                  f"{r.message}  (traceback in {r.key.folder(runs) / 'error.txt'})")
    if leaderboard_:
        board = lb.build(runs, n_resamples=resamples)
        lb.write(board, out_dir)
        for tb in board.tasks:
            if tb.task.spec.name != task:
                continue
            for agg in tb.aggregates:
                if agg.submission != runner.label:
                    continue
                spec = tb.task.spec
                table = Table(title=f"{runner.label} on {task}: {spec.primary_metric}, "
                                    "training rule x test rule")
                table.add_column("train \\ test")
                for r in spec.rules:
                    table.add_column(r, justify="right")
                for tr in spec.rules:
                    table.add_row(tr, *[
                        f"{agg.mean[(tr, te, spec.primary_metric)]:.4f}"
                        if (tr, te, spec.primary_metric) in agg.mean else "—"
                        for te in spec.rules])
                out.print(table)
        out.print(f"leaderboard written to {out_dir}")
    out.print(f"wall time {time.perf_counter() - t0:.1f} s")
    if failed:
        raise typer.Exit(1)


@app.command()
def ablate(
    task: Annotated[str, typer.Option(help="Task name.")] = "demo",
    losses: Annotated[str, typer.Option(help="Comma-separated base losses.")] =
    "ce,bce,kl,cb_soft_ce",
    alphas: Annotated[str, typer.Option(
        help="Comma-separated penalty weights (0 is always run); the paper's sweep is "
             "0,0.2,0.5,0.8.")] = "0,0.2",
    raters: Annotated[bool, typer.Option("--raters/--no-raters", help=(
        "Also run rater fusion, the consensus model and the crowd layers."))] = True,
    crowd_kinds: Annotated[str, typer.Option(help="Crowd layer kinds (MW,VW,VB,VW+B,SW).")] =
    "MW",
    config: Annotated[list[str] | None, typer.Option(
        help="Backbone (BLSTM-FC) option key=value shared by every variant, repeatable.")] = None,
    penalty: Annotated[list[str] | None, typer.Option(
        help="Penalty option key=value (penalty_form, penalty_combine, cooc_mode, cooc_norm), "
             "repeatable.")] = None,
    min_ratings: Annotated[int, typer.Option(
        help="Raters kept by rater fusion / crowd layers: at least this many training "
             "ratings.")] = 20,
    epochs: Annotated[int, typer.Option(help="Max epochs of every variant (patience "
                                             "epochs // 3 + 1).")] = 10,
    train_rule: Annotated[str, typer.Option(help="Training rule of every variant.")] = "AR",
    folds: Annotated[str | None, typer.Option(help="Comma-separated folds (default all).")] = None,
    seeds: Annotated[str, typer.Option(help="Comma-separated seeds.")] = "0",
    device: Annotated[str, typer.Option(help="auto, cpu or cuda[:N].")] = "auto",
    out_dir: Annotated[Path | None, typer.Option(
        "--out", help="Folder for runs/ and the report (default leaderboard/ablation/TASK).")]
    = None,
    resamples: Annotated[int, typer.Option(help="Bootstrap resamples.")] = 1000,
) -> None:
    """The paper's ablation: losses +/- co-occurrence penalty; rater fusion vs consensus and crowd
    layers.  Runs every variant (resumable), then prints and writes the paired comparison."""
    import time

    from . import ablation
    from .plugins import resolve
    from .runner import Runner

    t0 = time.perf_counter()
    built = _load(task)
    backbone = {"max_epochs": epochs, "patience": epochs // 3 + 1, **_parse_config(config or [])}
    variants = ablation.plan(
        losses=[x for x in losses.split(",") if x], alphas=[float(a) for a in alphas.split(",")],
        raters=raters, crowd_kinds=[k for k in crowd_kinds.split(",") if k], backbone=backbone,
        penalty=_parse_config(penalty or []), min_ratings=min_ratings)
    out_dir = out_dir or Path("leaderboard/ablation") / task
    runs = out_dir / "runs"
    fold_list = [int(f) for f in folds.split(",")] if folds else \
        list(range(1, built.n_folds + 1))
    seed_list = [int(s) for s in seeds.split(",")]
    out.print(f"ablation on [bold]{task}[/]: {len(variants)} variants x {len(fold_list)} folds "
              f"x {len(seed_list)} seeds, training rule {train_rule} -> {out_dir}")
    seconds: dict[str, float] = {}
    failed = []
    for i, v in enumerate(variants, 1):
        runner = Runner(built, resolve(v.submission), v.config, runs=runs, device=device,
                        label=v.label)
        keys = runner.cells(fold_list, [train_rule], seed_list)
        results = _run_grid(runner, keys, title=f"[{i}/{len(variants)}] {v.label}")
        seconds[v.label] = round(sum(r.seconds for r in results if r.status == "done"), 1)
        failed += [(v.label, r) for r in results if r.status == "failed"]
        out.print(f"  {v.label}: {_cell_counts(results)} ({seconds[v.label]:.0f} s)")
    for label, r in failed:
        err.print(f"[red]failed[/] {label} fold {r.key.fold}: {r.message} "
                  f"(traceback in {r.key.folder(runs) / 'error.txt'})")
    if failed:
        raise typer.Exit(1)
    rep = ablation.score(built, runs, variants, train_rule=train_rule, folds=fold_list,
                         seeds=seed_list, n_resamples=resamples, seconds=seconds)
    from rich.markdown import Markdown

    out.print(Markdown(ablation.markdown(rep, configs=False)))
    for path in ablation.write(rep, out_dir):
        out.print(f"wrote {path}")
    out.print(f"wall time {time.perf_counter() - t0:.1f} s")


submissions_app = typer.Typer(help="List the discoverable submissions.", no_args_is_help=True)
app.add_typer(submissions_app, name="submissions")


@submissions_app.command("list")
def submissions_list(json_out: JsonOpt = False) -> None:
    """Submissions from submissions/, SERBENCH_SUBMISSIONS_DIR and the entry-point group."""
    from .plugins import available

    rows = [{"name": name, "version": cls.version, "class": f"{cls.__module__}.{cls.__qualname__}",
             "trains": cls.trains(), "source": where}
            for name, (cls, where) in sorted(available().items())]
    if json_out:
        _print_json(rows)
        return
    table = Table("name", "version", "trains", "class", "from")
    for r in rows:
        table.add_row(r["name"], r["version"], "yes" if r["trains"] else "no", r["class"],
                      r["source"])
    out.print(table)


def main() -> None:
    try:
        app(standalone_mode=False)
    except SerbenchError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err.print("aborted")
        sys.exit(1)
    except Exception as exc:  # click usage errors
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise


if __name__ == "__main__":
    main()
