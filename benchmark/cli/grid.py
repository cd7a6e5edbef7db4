"""``serbench run``, ``ablate`` and ``study``: options in, progress and tables out."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from .common import (
    GridBars,
    JsonOpt,
    cell_counts,
    err,
    escape,
    grid_progress,
    int_list,
    load,
    out,
    print_json,
    report_cells,
    show,
    str_list,
    table,
)


def _three_by_three(board: Any, task: str, label: str, board_runs: Path) -> None:
    """The train x test table of the task's primary metric, with the reference rows below."""
    from ..views import terminal_three_by_three

    got = terminal_three_by_three(board, task, label)
    if got is None:
        return
    title, head, rows, notes = got
    show(table(*head, rows=rows, title=escape(title)))
    for note in notes:
        out.print(f"[dim]{escape(note)}[/]")
    agg = next(a for tb in board.tasks if tb.task.spec.name == task
               for a in tb.aggregates if a.submission == label)
    if not any(agg.complete.values()):
        done = ", ".join(f"{rule} {n}/{agg.n_folds}" for rule, n in agg.folds_done.items())
        out.print(f"— : a training rule is scored once every fold of it is recorded (folds "
                  f"recorded: {done}); scores of single cells: serbench score "
                  f"{escape(str(board_runs))}/{task}/{escape(label)}")


def run(
    task: Annotated[str, typer.Option(help="Task name.")] = "demo",
    submission: Annotated[str, typer.Option(
        help="Submission name, path/to/file.py:ClassName, or an entry point.")] = "blstm-fc",
    config: Annotated[list[str] | None, typer.Option(
        help="Submission option key=value (JSON values), repeatable; checked against the "
             "options the submission declares.")] = None,
    name: Annotated[str | None, typer.Option(
        help="Record the runs under this name instead of the submission's (one name per "
             "configuration, e.g. blstm-fc+kl+pen0.2).")] = None,
    folds: Annotated[str | None, typer.Option(help="Comma-separated folds (default all).")] = None,
    rules: Annotated[str | None, typer.Option(help="Comma-separated training rules.")] = None,
    seeds: Annotated[str, typer.Option(help="Comma-separated training seeds.")] = "0,1,2",
    device: Annotated[str, typer.Option(help="auto, cpu or cuda[:N].")] = "auto",
    runs: Annotated[Path, typer.Option(help="Run records folder.")] = Path("leaderboard/runs"),
    out_dir: Annotated[Path, typer.Option("--out", help="Leaderboard folder.")] =
    Path("leaderboard"),
    allow_missing_audio: Annotated[bool, typer.Option(
        help="Predict test clips without audio as uniform (the record lists them).")] = False,
    leaderboard_: Annotated[bool, typer.Option("--leaderboard/--no-leaderboard",
                                               help="Rebuild the leaderboard after the grid.")]
    = True,
    resamples: Annotated[int, typer.Option(
        min=1, help="Bootstrap resamples when scoring.")] = 1000,
    executor_: Annotated[str, typer.Option("--executor", help=(
        "local (cells one by one here) or ray (cells and feature shards as Ray tasks; "
        'needs the ray extra: pip install "serbench[ray]").'))] = "local",
    address: Annotated[str | None, typer.Option(help=(
        "Ray cluster address (auto, host:6379, ray://host:10001); default: a private "
        "local Ray instance on 127.0.0.1."))] = None,
    cpus_per_cell: Annotated[int, typer.Option(help=(
        "CPUs (torch threads) per cell: on the local executor the torch threads of each "
        "CPU cell (1 is fastest for the shipped baselines); on Ray the CPUs reserved per "
        "cell, and cells on cuda also get one GPU each."))] = 1,
    jobs: Annotated[int | None, typer.Option(help=(
        "Local executor: CPU cells computed at once, each in its own process (default: "
        "the CPU cores over --cpus-per-cell). Records are the same as one at a time."))]
    = None,
    cell_timeout: Annotated[float | None, typer.Option(help=(
        "Seconds a cell may run before its process is killed and the cell recorded as "
        "failed (the other cells go on)."))] = None,
    save_models: Annotated[bool, typer.Option(help=(
        "Save each fitted model as model.safetensors in its cell folder."))] = False,
    load_models: Annotated[Path | None, typer.Option(help=(
        "Runs folder of an earlier --save-models run: load its models instead of "
        "training (same task, submission name and configuration)."))] = None,
    deterministic: Annotated[bool | None, typer.Option(
        "--deterministic/--fast", help=(
            "Bit-reproducible kernels (slower on GPU) or the fastest ones; default: "
            "deterministic on CPU, fast on GPU. The record states the mode."))] = None,
    json_out: JsonOpt = False,
) -> None:
    """Run a submission on a task's grid (folds x rules x seeds), score it, update the leaderboard.

    With no arguments: the demo task with the blstm-fc baseline, 3 seeds, end to end.
    Cells already recorded in --runs are kept (the run resumes): inside the
    repository checkout that is the committed results, so pass --runs DIR to train afresh.
    Exit status: 0 when every cell is done, 1 when a cell failed or a record under --runs could
    not be scored (listed as skipped, as serbench leaderboard does), 2 on bad input.
    """
    from ..params import parse_items

    t0 = time.perf_counter()
    parsed = parse_items(config or [])
    fold_list, seed_list = int_list(folds, "--folds"), int_list(seeds, "--seeds")
    rule_list = str_list(rules, "--rules")
    if name is not None and not name.strip():
        from ..errors import InputError
        raise InputError("--name '' is empty", fix="give the runs a name, or leave --name out "
                                                   "for the submission's own")
    from .. import grid  # torch loads here: the options above are checked without it

    built = load(task)

    def announce(runner: Any, keys: Any, already: int) -> None:
        if json_out:
            return
        out.print(f"[bold]{escape(runner.label)}[/] v{runner.cls.version} on [bold]{task}[/] "
                  f"({len(keys)} cells, device {runner.device}, executor {executor_}) -> "
                  f"{escape(str(runs))}")
        if already:
            out.print(f"{already} of {len(keys)} cells are already recorded in "
                      f"{escape(str(runs))} and are kept; pass --runs DIR to train afresh")

    with grid_progress() as progress:
        result = grid.run(built, submission, parsed, name=name, folds=fold_list,
                          rules=rule_list, seeds=seed_list or list(grid.DEFAULT_SEEDS),
                          device=device, runs=runs, out=out_dir if leaderboard_ else None,
                          executor=executor_, address=address, cpus_per_cell=cpus_per_cell,
                          cell_timeout=cell_timeout, save_models=save_models,
                          load_models=load_models, allow_missing_audio=allow_missing_audio,
                          deterministic=deterministic, resamples=resamples,
                          hooks=GridBars(progress, None, "grid", executor_, announce),
                          jobs=jobs)
    runner, cells = result.runner, result.cells
    if json_out:
        print_json(result.as_json() | {"seconds": round(time.perf_counter() - t0, 1)})
    else:
        from .results import not_scored, partial_lines, skipped_records

        out.print(f"cells: {cell_counts(result.counts())}")
        report_cells(cells, runs)
        if result.board is not None:
            _three_by_three(result.board, task, runner.label, runs)
            skipped_records(result.board)  # as serbench leaderboard shows them
            if result.written:
                out.print(f"leaderboard written to {escape(str(out_dir))}")
                partial_lines(result.partial)
            else:
                err.print("[yellow]leaderboard not rewritten[/]: "
                          f"{escape(str(result.not_written))}")
            if result.skipped:
                not_scored(result.skipped, runs, bool(result.written))
        out.print(f"wall time {time.perf_counter() - t0:.1f} s")
    if result.failed or result.skipped:  # a record that could not be scored: a failure found
        raise typer.Exit(1)


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
        min=1, help="Raters kept by rater fusion / crowd layers: at least this many training "
                    "ratings.")] = 20,
    epochs: Annotated[int, typer.Option(min=1, help="Max epochs of every variant (patience "
                                                    "epochs // 3 + 1).")] = 10,
    train_rule: Annotated[str, typer.Option(help="Training rule of every variant.")] = "AR",
    folds: Annotated[str | None, typer.Option(help="Comma-separated folds (default all).")] = None,
    seeds: Annotated[str, typer.Option(help="Comma-separated training seeds.")] = "0,1,2",
    device: Annotated[str, typer.Option(help="auto, cpu or cuda[:N].")] = "auto",
    out_dir: Annotated[Path | None, typer.Option(
        "--out", help="Folder for runs/ and the report (default leaderboard/ablation/TASK).")]
    = None,
    resamples: Annotated[int, typer.Option(min=1, help="Bootstrap resamples.")] = 1000,
    jobs: Annotated[int | None, typer.Option(help=(
        "CPU cells computed at once, each in its own process (default: one per CPU core). "
        "Records are the same as one at a time."))] = None,
) -> None:
    """The paper's ablation: losses +/- co-occurrence penalty; rater fusion vs consensus and crowd
    layers.  Runs every variant (resumable), then prints and writes the paired comparison."""
    from rich.markdown import Markdown

    from ..errors import InputError

    t0 = time.perf_counter()
    try:
        alpha_list = [float(a) for a in alphas.split(",") if a.strip()]
        if not alpha_list:
            raise ValueError
    except ValueError:
        raise InputError(f"--alphas {alphas!r} is not a comma-separated list of numbers",
                         fix="e.g. --alphas 0,0.2,0.5") from None
    if not all(math.isfinite(a) and a >= 0 for a in alpha_list):
        raise InputError(f"--alphas {alphas!r}: penalty weights are finite numbers >= 0",
                         fix="e.g. --alphas 0,0.2,0.5 (0 is always run)")
    from ..grid import writable  # the heavy imports after the checks that need none
    from ..params import parse_items
    from ..recipes import ablation

    built = load(task)
    if train_rule not in built.spec.rules:
        raise InputError(f"--train-rule {train_rule!r}: task {task} trains on "
                         f"{', '.join(built.spec.rules)} (upper case)",
                         fix=f"e.g. --train-rule {built.spec.rules[-1]}")
    backbone = {"max_epochs": epochs, "patience": epochs // 3 + 1,
                **parse_items(config or [])}
    variants = ablation.plan(
        losses=str_list(losses, "--losses") or [], alphas=alpha_list, raters=raters,
        crowd_kinds=str_list(crowd_kinds, "--crowd-kinds") or [], backbone=backbone,
        penalty=parse_items(penalty or []), min_ratings=min_ratings)
    ablation.check(variants, built)  # a configuration a variant refuses: exit 2 before any cell
    fold_list = int_list(folds, "--folds") or list(range(1, built.n_folds + 1))
    seed_list = int_list(seeds, "--seeds") or [0]
    out_dir = out_dir or Path("leaderboard/ablation") / task
    writable(out_dir, "--out")  # a file there, or a read-only folder: exit 2 before any cell
    runs = out_dir / "runs"
    out.print(f"ablation on [bold]{task}[/]: {len(variants)} variants x {len(fold_list)} folds "
              f"x {len(seed_list)} seeds, training rule {train_rule} -> {escape(str(out_dir))}")
    with grid_progress() as progress:
        bars: list[GridBars] = []

        def hooks(v: Any, n: int) -> GridBars:
            for b in bars:  # one grid bar at a time
                progress.update(b.grid, visible=False)
            bars.append(GridBars(progress, n, f"[{len(bars) + 1}/{len(variants)}] {v.label}",
                                 "local"))
            return bars[-1]

        seconds, failed, cells = ablation.run(built, variants, runs=runs, folds=fold_list,
                                              seeds=seed_list, train_rule=train_rule,
                                              device=device, hooks=hooks, jobs=jobs)
    from ..grid import counts

    for v in variants:
        n = counts(cells[v.label])
        out.print(f"  {escape(v.label)}: {cell_counts(n)} ({seconds[v.label]:.0f} s)")
        report_cells(cells[v.label], runs, v.label)
    if failed:
        err.print(f"{len(failed)} cell(s) failed; the report is not written")
        raise typer.Exit(1)
    rep = ablation.score(built, runs, variants, train_rule=train_rule, folds=fold_list,
                         seeds=seed_list, n_resamples=resamples, seconds=seconds)
    out.print(Markdown(ablation.markdown(rep, configs=False)))
    for path in ablation.write(rep, out_dir):
        out.print(f"wrote {escape(str(path))}")
    out.print(f"wall time {time.perf_counter() - t0:.1f} s")


def study(
    levels: Annotated[str, typer.Option(
        help="Comma-separated rater-heterogeneity levels of the demo (none, moderate, high).")]
    = "none,moderate,high",
    config: Annotated[list[str] | None, typer.Option(
        help="Backbone (BLSTM-FC) option key=value shared by every arm, repeatable.")] = None,
    folds: Annotated[str | None, typer.Option(help="Comma-separated folds (default all).")] = None,
    seeds: Annotated[str, typer.Option(help="Comma-separated training seeds.")] = "0,1,2",
    device: Annotated[str, typer.Option(help="auto, cpu or cuda[:N].")] = "auto",
    out_dir: Annotated[Path, typer.Option(
        "--out", help="Folder for runs/ and the report.")] = Path("leaderboard/study"),
    resamples: Annotated[int, typer.Option(min=1, help="Bootstrap resamples.")] = 1000,
    jobs: Annotated[int | None, typer.Option(help=(
        "CPU cells computed at once, each in its own process (default: one per CPU core). "
        "Records are the same as one at a time."))] = None,
) -> None:
    """The rater-heterogeneity study on demo v2: AR vs PR training, the penalty, rater fusion and
    a crowd layer at each heterogeneity level, judged against the known truth (resumable)."""
    from ..params import parse_items
    from ..recipes import heterogeneity as het

    t0 = time.perf_counter()
    from ..errors import InputError

    level_list = list(dict.fromkeys(str_list(levels) or []))  # each level once
    bad = [lv for lv in level_list if lv not in het.LEVELS]
    if bad or not level_list:
        raise InputError(f"--levels {levels!r}: " + (f"unknown level(s) {bad}" if bad
                                                      else "no level given"),
                         fix=f"use some of {', '.join(het.LEVELS)}")
    study_arms = het.arms(parse_items(config or []))
    n_folds = load("demo").n_folds
    fold_list = list(dict.fromkeys(int_list(folds, "--folds") or range(1, n_folds + 1)))
    if any(not 1 <= f <= n_folds for f in fold_list):
        raise InputError(f"--folds {folds}: the demo has folds 1..{n_folds}",
                         fix="e.g. --folds 1,2 (or leave it out for all)")
    seed_list = int_list(seeds, "--seeds") or [0]
    from ..grid import writable

    writable(out_dir, "--out")  # a file there, or a read-only folder: exit 2 before any cell
    runs = out_dir / "runs"
    out.print(f"heterogeneity study: {len(level_list)} levels x {len(study_arms)} arms x "
              f"{len(fold_list)} folds x {len(seed_list)} seeds -> {escape(str(out_dir))}")
    with grid_progress() as progress:
        bars: list[GridBars] = []

        def hooks(level: str, arm: Any, n: int) -> GridBars:
            for b in bars:
                progress.update(b.grid, visible=False)
            bars.append(GridBars(progress, n, f"{level} / {arm.label}", "local"))
            return bars[-1]

        tasks = {lv: het.level_task(lv) for lv in level_list}  # built once: run, then score
        cells, failed = het.run(level_list, study_arms, runs=runs, folds=fold_list,
                                seeds=seed_list, device=device, hooks=hooks, tasks=tasks,
                                jobs=jobs)
    from ..grid import counts

    for name, res in cells.items():
        out.print(f"  {escape(name)}: {cell_counts(counts(res))}")
        report_cells(res, runs, name)
    if failed:
        err.print(f"{len(failed)} cell(s) failed; the report is not written")
        raise typer.Exit(1)
    rep = het.score(level_list, study_arms, runs=runs, folds=fold_list, seeds=seed_list,
                    n_resamples=resamples, tasks=tasks)
    from rich.markdown import Markdown

    out.print(Markdown(het.markdown(rep)))
    for path in het.write(rep, out_dir):
        out.print(f"wrote {escape(str(path))}")
    out.print(f"wall time {time.perf_counter() - t0:.1f} s")
