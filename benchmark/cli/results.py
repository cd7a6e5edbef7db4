"""``serbench score``, ``serbench leaderboard`` and ``serbench compare``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, TextColumn, TimeElapsedColumn

from .common import Bars, JsonOpt, err, escape, load, out, print_json, show, table


def no_records(folder: Path, bad: list[tuple[Path, str]]) -> Exception:
    """The error for a folder without a usable record: none at all, or only unreadable ones
    (the first is named with why, rather than "no record found")."""
    from ..errors import InputError

    if not folder.exists():
        return InputError("no readable record.json found: no such file or folder", file=folder,
                          fix="point at a run folder written by serbench run (--runs)")
    if bad:
        return InputError(f"no readable record.json found: {len(bad)} unreadable, e.g. "
                          f"{bad[0][0]}: {bad[0][1]}", file=folder,
                          fix="rerun those cells (serbench run recomputes a broken cell), or "
                              "point at another run folder")
    return InputError("no readable record.json found", file=folder,
                      fix="point at a run folder written by serbench run (--runs)")


def score(
    run_dir: Annotated[Path, typer.Argument(
        help="A run folder (or any folder above run cells), or a CSV / Parquet file of "
             "predictions made outside serbench (utterance_id, p_<class>..., optional fold, "
             "train_rule, seed, task_fingerprint), which is checked and written as run "
             "records.")],
    json_out: JsonOpt = False,
    resamples: Annotated[int, typer.Option(
        min=1, help="Bootstrap resamples for the intervals.")] = 1000,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the bootstrap.")] = 0,
    double_softmax: Annotated[bool, typer.Option(
        help="Reproduce the released code's second softmax before the 1/K threshold.")] = False,
    task: Annotated[str | None, typer.Option(
        help="Predictions file: the task they are for.")] = None,
    name: Annotated[str | None, typer.Option(
        help="Predictions file: the submission name for the records and leaderboard.")] = None,
    fingerprint: Annotated[str | None, typer.Option(
        help="Predictions file: the task fingerprint the model was trained on (else a "
             "task_fingerprint column).")] = None,
    version: Annotated[str, typer.Option(help="Predictions file: your model's version.")] = "",
    train_rule: Annotated[str, typer.Option(
        help="Predictions file: training rule when it has no train_rule column.")] = "AR",
    run_seed: Annotated[int, typer.Option(
        "--run-seed", help="Predictions file: seed of the records when it has no seed "
                           "column.")] = 0,
    runs: Annotated[Path, typer.Option(
        help="Predictions file: the run records folder to add to.")] = Path("leaderboard/runs"),
) -> None:
    """Score run cells on the MR, PR and AR test sets of their folds, or bring in predictions
    made outside serbench (a model trained elsewhere enters the leaderboard this way)."""
    from ..errors import InputError, SerbenchError, reason
    from ..records import find_records
    from ..scoring import score_record

    if run_dir.suffix.lower() in (".csv", ".parquet") or (run_dir.is_file() and \
            run_dir.name != "record.json"):
        if task is None or name is None:
            raise InputError("scoring a predictions file needs --task and --name", file=run_dir,
                             fix=f"serbench score {run_dir} --task demo --name my-model")
        from .bridges import score_external

        score_external(run_dir, task=task, name=name, fingerprint=fingerprint, version=version,
                       train_rule=train_rule, run_seed=run_seed, runs=runs,
                       resamples=resamples, json_out=json_out)
        return

    records, bad = find_records(run_dir)
    if not records:
        raise no_records(run_dir, bad)
    tasks: dict[str, Any] = {}
    scored, refused = [], []
    for r in records:
        name = r.data["task"]
        try:
            if name not in tasks:
                tasks[name] = load(name)
            scored.append(score_record(tasks[name], r, n_resamples=resamples, seed=seed,
                                       double_softmax=double_softmax))
        except SerbenchError as exc:  # one stale or broken record does not hide the others
            refused.append((r.path, exc))
    if not scored:  # nothing could be scored: the first reason is the message (exit 2)
        raise refused[0][1]
    # unreadable records and records refused by scoring are one kind for the user, as in
    # ``serbench leaderboard``: "skipped", and a failure found (exit 1)
    skipped = sorted([(p, w) for p, w in bad]
                     + [(p, reason(e, p).splitlines()[0]) for p, e in refused])
    if json_out:
        print_json({"cells": [s.as_json() for s in scored],
                    "skipped": [{"record": str(p), "why": w} for p, w in skipped]})
        if skipped:
            raise typer.Exit(1)
        return
    for s in scored:
        spec = tasks[s.key.task].spec
        shown = list(dict.fromkeys(m for m in (spec.primary_metric, "uar", "macro_f1", "nll",
                                               "ece_classwise") if m in spec.metrics))
        shown += ["vote_ll", "minority_recall"]  # rater-level (docs/methods.md#rater-eval)
        rows = []
        for rule, values in s.point.items():
            cells = []
            for m in shown:
                v = values.get(m)
                if v is None:
                    cells.append("[dim]n/a[/]")
                else:
                    lo, hi = s.interval(rule, m)
                    cells.append(f"{v:.4f} [dim]\\[{lo:.3f}, {hi:.3f}][/]")
            rows.append([rule, str(s.n[rule]), *cells])
        show(table("test rule", "clips", *shown, rows=rows,
                        title=escape(f"{s.key.task} · {s.key.submission} · fold {s.key.fold} · "
                                     f"trained on {s.key.train_rule} · seed {s.key.seed}")))
        for why in sorted({f"{m}: {w}" for notes in s.notes.values() for m, w in notes.items()
                           if m in shown}):
            out.print(f"[dim]n/a, {escape(why)}[/]")
    for p, why in skipped:
        err.print(f"[yellow]skipped[/] {escape(str(p))}: {escape(why)}")
    if skipped:
        err.print(f"{len(skipped)} of {len(records) + len(bad)} record(s) under "
                  f"{escape(str(run_dir))} could not be scored (listed above)")
        raise typer.Exit(1)


def _check_settings(stored: tuple[int, int] | None, resamples: int | None, seed: int | None,
                    file: Path) -> tuple[int | None, int | None]:
    """The bootstrap settings ``--check`` recomputes with: the stored board's, unless it records
    none (then the options, as given); options given that differ from the stored ones are
    refused, since every interval would differ for that reason alone."""
    from ..errors import InputError

    if stored is None:
        return resamples, seed
    asked = {"--resamples": resamples, "--seed": seed}
    differ = {k: (v, s) for (k, v), s in zip(asked.items(), stored, strict=True)
              if v is not None and v != s}
    if differ:
        raise InputError(
            "the stored leaderboard was computed with --resamples {} --seed {}, and --check was "
            "asked for {}: every interval would differ for that alone".format(
                *stored, " ".join(f"{k} {v}" for k, (v, _) in differ.items())),
            file=file,
            fix="leave out " + " and ".join(differ) + " to check with the stored settings, or "
                "regenerate the board with the new ones (serbench leaderboard "
                + " ".join(f"{k} {v}" for k, (v, _) in differ.items()) + ")")
    return stored


def leaderboard(
    runs: Annotated[Path, typer.Option(help="Folder of run records.")] = Path("leaderboard/runs"),
    out_dir: Annotated[Path, typer.Option("--out", help="Where to write the leaderboard.")] =
    Path("leaderboard"),
    resamples: Annotated[int | None, typer.Option(
        min=1, help="Bootstrap resamples [default: 1000; with --check, the stored board's]."
    )] = None,
    seed: Annotated[int | None, typer.Option(
        min=0, help="Seed of the bootstrap [default: 0; with --check, the stored board's]."
    )] = None,
    check_: Annotated[bool, typer.Option(
        "--check", help="Recompute every score from the stored predictions and compare with "
                        "the stored leaderboard.json; write nothing, exit 1 on any difference."
    )] = False,
    replace: Annotated[bool, typer.Option(
        "--replace", help="Write even when the stored leaderboard has rows these records do "
                          "not give (a task not prepared here, runs kept elsewhere): they are "
                          "dropped.")] = False,
) -> None:
    """Regenerate README.md, leaderboard.csv/json, index.html and plots from run records."""
    from .. import leaderboard as lb
    from ..errors import InputError
    from ..grid import build_leaderboard, writable
    from ..records import find_records

    if not runs.is_dir():
        raise InputError(f"--runs {runs} is a file, not a folder" if runs.exists() else
                         f"--runs {runs}: no such folder",
                         fix="pass the folder of run records (serbench run --runs)")
    if check_:
        lb.load_stored(out_dir)  # a missing or malformed stored board: exit 2 before scoring
        resamples, seed = _check_settings(lb.stored_bootstrap(out_dir), resamples, seed,
                                          out_dir / "leaderboard.json")
    else:
        writable(out_dir, "--out")
        lb.guard_out(out_dir, runs)  # refuse a folder of other files before scoring anything
        was_complete = lb.stored_complete(out_dir)

    n = len(find_records(runs)[0])
    progress = Bars(TextColumn("[bold]scoring records"), BarColumn(),
                    TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                    console=err, transient=True)
    with progress:
        handle = progress.add_task("score", total=n)
        board = build_leaderboard(runs, None, resamples=1000 if resamples is None else resamples,
                                  seed=0 if seed is None else seed,
                                  progress=lambda: progress.advance(handle))
    broken = skipped_records(board)
    if check_:
        compared, diffs = lb.check(board, out_dir)
        if diffs:
            for d in diffs[:50]:
                err.print(f"[red]differs[/] {escape(str(d))}")
            err.print(f"{len(diffs)} difference(s) between the stored leaderboard and the "
                      f"scores recomputed from {escape(str(runs))}")
            raise typer.Exit(1)
        out.print(f"leaderboard matches: {compared} values recomputed from {n} record(s)")
        if board.unavailable:
            out.print(f"not checked: {', '.join(sorted(board.unavailable))} (prepare the task "
                      "to check its rows)")
        return
    gone = lb.dropped_rows(board, lb.stored_rows(out_dir)) if replace else []
    files = lb.write(board, out_dir, replace=replace)
    if gone:  # --replace: the rows (and their plots) it dropped, named
        err.print(f"[yellow]--replace dropped {len(gone)} row(s) of the stored leaderboard, "
                  f"and their plots[/]: {escape(', '.join(gone))}")
    out.print(f"wrote {len(files)} files to {escape(str(out_dir))} ({len(board.tasks)} task(s), "
              f"{sum(len(t.aggregates) for t in board.tasks)} submission(s))")
    partial_lines(lb.partial_messages(board, was_complete))
    if broken:  # written without them (README lists them), but a failure found: exit 1
        not_scored(broken, runs)
        raise typer.Exit(1)


def skipped_records(board: Any) -> list[tuple[str, str]]:
    """Print the tasks not prepared here and the records that could not be read or scored
    (``skipped PATH: why``); return those records (a failure found, exit 1, after writing)."""
    for name, why in board.unavailable.items():
        err.print(f"[yellow]task {escape(name)} not available here[/]: {escape(why)}")
    broken = [(p, why) for p, why in board.skipped if not why.startswith("task not available")]
    for p, why in broken:
        err.print(f"[yellow]skipped[/] {escape(str(p))}: {escape(why)}")
    return broken


def partial_lines(messages: list[tuple[bool, str]]) -> None:
    """The rows shown — on the written board (:func:`serbench.leaderboard.partial_messages`);
    a row that became partial is highlighted."""
    for became, line in messages:
        err.print(f"[yellow]{escape(line)}[/]" if became else escape(line))


def not_scored(broken: list[tuple[str, str]], runs: Path, written: bool = True) -> None:
    """The closing line when records could not be scored (left out of the written board)."""
    err.print(f"{len(broken)} record(s) under {escape(str(runs))} could not be scored"
              + (" and are left out of the leaderboard (listed above and in its README)"
                 if written else " (listed above)"))


def compare(
    run_a: Annotated[Path, typer.Argument(help="Run folder of submission A.")],
    run_b: Annotated[Path, typer.Argument(help="Run folder of submission B.")],
    metric: Annotated[str | None, typer.Option(help="Metric (default: the task's primary).")] =
    None,
    train_rule: Annotated[str, typer.Option(help="Training rule of the compared cells.")] = "AR",
    test_rule: Annotated[str, typer.Option(help="Test rule.")] = "AR",
    resamples: Annotated[int, typer.Option(min=1, help="Bootstrap resamples.")] = 1000,
    json_out: JsonOpt = False,
) -> None:
    """Paired bootstrap and subset t-test between two submissions on shared cells."""
    from dataclasses import asdict

    from ..errors import InputError
    from ..records import find_records
    from ..scoring import load_probs
    from ..summaries import compare as cmp

    runs = []
    for folder in (run_a, run_b):
        records, bad = find_records(folder)
        if not records:
            raise no_records(folder, bad)
        names = sorted({(r.data["task"], r.key.submission) for r in records})
        if len(names) > 1:  # their cells would be paired as if they were one submission's
            shown = ", ".join(f"{t}/{n}" for t, n in names[:4])
            raise InputError(f"holds the records of {len(names)} submissions ({shown}"
                             f"{', ...' if len(names) > 4 else ''}): a comparison needs one "
                             "submission per folder", file=folder,
                             fix="point at one submission's folder, e.g. "
                                 f"{next(r.path for r in records).parent.parent}")
        runs.append(records)
    task = load(runs[0][0].data["task"])
    loaded = [[(r.key, *load_probs(task, r)) for r in rs] for rs in runs]
    res = cmp(task, loaded[0], loaded[1], metric=metric or task.spec.primary_metric,
              train_rule=train_rule, test_rule=test_rule, n_resamples=resamples)
    if json_out:
        print_json(asdict(res))
        return
    a, b = runs[0][0].key.submission, runs[1][0].key.submission
    out.print(f"{res.metric} on {res.test_rule} test, trained on {res.train_rule}, "
              f"{res.cells} shared cell(s)")
    out.print(f"  {escape(a)}: {res.mean_a:.4f}   {escape(b)}: {res.mean_b:.4f}   difference "
              f"{res.diff:+.4f} \\[{res.diff_ci[0]:+.4f}, {res.diff_ci[1]:+.4f}]")
    t = res.t_subsets
    if res.t_test_refused:
        subsets = f"n/a ({res.t_test_refused})"
    elif t is None or (isinstance(t, float) and math.isnan(t)):
        subsets = "n/a (no difference between the two on any subset)"
    else:
        subsets = f"t = {t:.3f}, p = {res.p_subsets:.4g}"
    out.print(f"  paired bootstrap p = {res.p_bootstrap:.4f};  subset paired t-test "
              f"({res.n_subsets} subsets over the shared cells) {subsets}")
    if res.seed_diffs:
        diffs = ", ".join(f"{d:+.4f}" for d in res.seed_diffs)
        out.print(f"  per seed: {diffs}; same sign as the mean in {res.seed_agreement} seeds")
