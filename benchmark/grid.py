"""Run a submission on a task's grid in one call: the library behind ``serbench run``.

``run`` does what the CLI used to orchestrate itself: load (or, for the demo,
generate) the task, resolve and validate the submission and its options,
choose the executor and its device, build the feature cache, claim, compute
and write every cell of folds x training rules x seeds, then rebuild the
leaderboard from every stored record.  The CLI only parses options and shows
progress through :class:`~serbench.executors.Hooks`; a notebook gets the same
result without it::

    import serbench
    result = serbench.run("demo", "blstm-fc", seeds=[0], folds=[1], rules=["AR"],
                          runs="my-runs", out="my-board")
    result.counts(), result.board

The default is three training seeds, so that every interval and comparison
can include seed variance (one seed made a "significant" effect flip sign).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .cell import BUSY, CellResult
from .executors import Executor, Hooks, make
from .records import CellKey
from .submission import Submission
from .tasks import Task, load_task

if TYPE_CHECKING:  # leaderboard / score / compare import this module; torch loads with a cell
    from .runner import Runner

#: Training seeds of ``serbench run`` and ``serbench ablate`` unless told otherwise.
DEFAULT_SEEDS = (0, 1, 2)


@dataclass
class GridResult:
    """What one grid run did: the runner (task, submission, config), each cell, the board."""

    runner: Runner
    cells: list[CellResult]
    board: Any = None  # serbench.leaderboard.Board when the leaderboard was rebuilt
    executor: str = "local"
    notes: list[str] = field(default_factory=list)
    #: Where the leaderboard files were written, or why they were not (the stored files
    #: hold rows of a task that is not prepared here, which rewriting would drop).
    written: str | None = None
    not_written: str | None = None
    #: After writing: one line per partial row of the board, and whether it *became* partial
    #: (:func:`serbench.leaderboard.partial_messages`), as ``serbench leaderboard`` shows them.
    partial: list[tuple[bool, str]] = field(default_factory=list)

    @property
    def skipped(self) -> list[tuple[str, str]]:
        """Records under ``runs`` that could not be read or scored, left out of the board
        (path, why); records of a task not prepared here are in ``board.unavailable``."""
        if self.board is None:
            return []
        return [(p, why) for p, why in self.board.skipped
                if not why.startswith("task not available")]

    @property
    def failed(self) -> list[CellResult]:
        return [c for c in self.cells if c.status == "failed"]

    @property
    def recomputed(self) -> list[CellResult]:
        """Cells whose stored predictions were broken and were computed again."""
        return [c for c in self.cells if c.status == "done" and c.message.startswith("recomputed")]

    def counts(self) -> dict[str, int]:
        """``{"run": .., "already_done": .., "busy": .., "failed": .., "recomputed": ..}``."""
        return counts(self.cells)

    def as_json(self) -> dict[str, Any]:
        """A stable, machine-readable summary (``serbench run --json``)."""
        r = self.runner
        return {
            "task": r.task.spec.name, "submission": r.label, "plugin": r.cls.name,
            "config": r.recorded_config, "device": r.device, "executor": self.executor,
            "runs": str(r.runs), "counts": self.counts(), "notes": self.notes,
            "leaderboard": {"written": self.written, "not_written": self.not_written,
                            "skipped": [{"record": p, "why": w} for p, w in self.skipped],
                            "partial": [line for _became, line in self.partial]},
            "cells": [{"fold": c.key.fold, "train_rule": c.key.train_rule, "seed": c.key.seed,
                       "status": c.status, "message": c.message, "seconds": round(c.seconds, 3),
                       "folder": str(c.key.folder(r.runs))} for c in self.cells],
        }


def writable(folder: Path, option: str, given: Path | None = None, *,
             create: bool = True) -> None:
    """Refuse, before any cell runs, a results folder that cannot be written.

    ``given``: what the user passed when ``folder`` is the folder it goes into (an
    export's parent folder), so that the message names what was given.  ``create=False``:
    only refuse a file in the way, and leave a missing folder unmade (for a command that
    may still refuse its input and must then leave nothing behind).
    """
    import tempfile

    from .errors import InputError

    shown = given or folder
    fix = f"pass a folder (a new one is made) as {option}; the file was left as it is"
    for part in (folder, *folder.parents):  # the folder, or a folder above it, is a file
        if part.exists() and not part.is_dir():
            raise InputError(f"{option} {shown} is a file, not a folder" if part == shown else
                             f"{option} {shown} cannot be made ({part} is a file, not a folder)",
                             fix=fix)
    if not create:
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".serbench-probe-"):
            pass
    except OSError as exc:
        where = "" if given is None else f" (in {folder})"
        raise InputError(f"{option} {shown}: cannot write there{where} ({exc.strerror})",
                         fix=f"make the folder writable or free space, or pass another {option}"
                         ) from None


def counts(cells: Sequence[CellResult]) -> dict[str, int]:
    """How many cells ran, were already done, were busy elsewhere, failed or were recomputed."""
    busy = sum(c.status == "skipped" and c.message == BUSY for c in cells)
    return {"run": sum(c.status == "done" for c in cells),
            "already_done": sum(c.status == "skipped" for c in cells) - busy,
            "busy": busy, "failed": sum(c.status == "failed" for c in cells),
            "recomputed": sum(c.status == "done" and c.message.startswith("recomputed")
                              for c in cells)}


def grid_runner(task: str | Task, submission: str | type[Submission],
                config: dict[str, Any] | None = None, *, executor: Executor | None = None,
                device: str = "auto", runs: str | Path = "leaderboard/runs",
                **options: Any) -> Runner:
    """The :class:`Runner` for one grid, with the task, submission and device resolved."""
    from .plugins import resolve
    from .runner import Runner

    built = load_task(task) if isinstance(task, str) else task
    cls = resolve(submission) if isinstance(submission, str) else submission
    executor = executor or make("local")
    return Runner(built, cls, config, runs=runs, device=executor.device(device), **options)


def run_cells(runner: Runner, keys: Sequence[CellKey], executor: Executor,
              hooks: Hooks | None = None) -> list[CellResult]:
    """Features (sharded by the executor when it runs elsewhere), then every cell."""
    hooks = hooks or Hooks()
    mapper = None
    if not executor.in_process:
        def mapper(fn: Any, items: Any) -> Any:
            return executor.map(fn, items, device=runner.device)
    runner.prepare_features(hooks.features, mapper=mapper)
    return executor.run(runner, keys, hooks)


def run(task: str | Task = "demo", submission: str | type[Submission] = "blstm-fc",
        config: dict[str, Any] | None = None, *, name: str | None = None,
        folds: Sequence[int] | None = None, rules: Sequence[str] | None = None,
        seeds: Sequence[int] = DEFAULT_SEEDS, device: str = "auto",
        runs: str | Path = "leaderboard/runs", out: str | Path | None = "leaderboard",
        executor: str | Executor = "local", address: str | None = None,
        cpus_per_cell: int = 1, cell_timeout: float | None = None, save_models: bool = False,
        load_models: str | Path | None = None, allow_missing_audio: bool = False,
        deterministic: bool | None = None, resamples: int = 1000,
        hooks: Hooks | None = None, jobs: int | None = None) -> GridResult:
    """Train (or load) and record ``submission`` on every fold x rule x seed of ``task``.

    Returns the cells and, unless ``out`` is None, the leaderboard rebuilt from
    every record under ``runs`` and written to ``out``.  Cells already recorded
    with this task version and configuration are kept (the run resumes); a cell
    whose stored predictions are broken is computed again.  A failed cell does
    not stop the others: see :attr:`GridResult.failed`.  ``deterministic``: bit-reproducible
    kernels (None: on CPU, where they cost nothing; fast kernels on GPU).  ``jobs``: CPU
    cells the local executor computes at once (None: the CPU cores over ``cpus_per_cell``).
    """
    from .errors import SerbenchError

    folders = [Path(f) for f in (runs, out) if f is not None]
    made = [top for f in folders if (top := _first_missing(f)) is not None]
    try:  # a refusal before any record is written leaves no folder this call made behind
        for folder, option in ((runs, "--runs"), (out, "--out")):
            if folder is not None:
                writable(Path(folder), option, create=False)
        from . import leaderboard as lb

        was_complete: set[tuple[str, str, str]] = set()
        if out is not None:
            lb.guard_out(Path(out), runs)  # other files there: refused before any cell runs
            was_complete = lb.stored_complete(Path(out))
        ex = make(executor, address=address, cpus_per_cell=cpus_per_cell, jobs=jobs) \
            if isinstance(executor, str) else executor
        try:
            runner = grid_runner(task, submission, config, executor=ex, device=device,
                                 runs=runs, label=name, cell_timeout=cell_timeout,
                                 save_models=save_models, load_models=load_models,
                                 allow_missing_audio=allow_missing_audio,
                                 deterministic=deterministic)
            keys = runner.cells(list(folds) if folds else None,
                                list(rules) if rules else None, list(seeds))
            runner.check_saved_models(keys)  # --load-models: every model is there, or exit 2
            for folder in folders:  # every check that needs no cell passed: make them now
                writable(folder, "--runs" if folder == Path(runs) else "--out")
            made += [top for k in keys if (top := _first_missing(k.folder(runner.runs)))
                     is not None]
            hooks = hooks or Hooks()
            hooks.plan(runner, keys, sum(runner.is_done(k) for k in keys))
            cells = run_cells(runner, keys, ex, hooks)
        finally:
            ex.close()
    except SerbenchError:
        for top in made:
            _remove_if_unused(top)
        raise
    result = GridResult(runner, cells, executor=ex.name)
    if out is not None:
        result.board = build_leaderboard(runs, None, resamples=resamples)
        try:
            lb.write(result.board, Path(out))
            result.written = str(out)
            result.partial = lb.partial_messages(result.board, was_complete)
        except lb.WouldDropRows as exc:  # the cells are recorded; the stored board is kept
            result.not_written = str(exc)
    return result


def _first_missing(folder: Path) -> Path | None:
    """The topmost of ``folder`` and the folders above it that do not exist yet (what making
    ``folder`` would create), or None when it exists."""
    if folder.exists():
        return None
    top = folder
    while not top.parent.exists() and top.parent != top:
        top = top.parent
    return top


def _remove_if_unused(top: Path) -> None:
    """Remove ``top``, a folder this run made, when it holds nothing but folders and cell lock
    files: what a run refused before writing a record leaves (never a record or a file of
    the user's)."""
    import shutil

    from .cell import LOCK_FILE

    if not top.is_dir() or top.is_symlink():
        return
    if all((p.is_dir() and not p.is_symlink()) or (p.name == LOCK_FILE and p.is_file())
           for p in top.rglob("*")):
        shutil.rmtree(top, ignore_errors=True)


def build_leaderboard(runs: str | Path = "leaderboard/runs", out: str | Path | None = "leaderboard",
                      *, resamples: int = 1000, seed: int = 0,
                      progress: Any = None) -> Any:
    """Score every record under ``runs``; write the leaderboard files to ``out`` (unless None)."""
    from . import leaderboard as lb

    if out is not None:
        lb.guard_out(Path(out), runs)  # other files there: refused before scoring anything
    board = lb.build(Path(runs), n_resamples=resamples, seed=seed, progress=progress)
    if out is not None:
        lb.write(board, Path(out))
    return board


def cell_data(task: str | Task, fold: int, rule: str, split: str,
              submission: str | type[Submission] | None = None,
              config: dict[str, Any] | None = None) -> Any:
    """The :class:`~serbench.submission.Data` a submission sees in one cell's split.

    For writing and debugging a submission outside the runner: the same clips,
    targets, ratings and (when ``submission`` declares features) feature store
    that ``fit`` / ``predict_proba`` get.  Test splits carry no targets.

    >>> train = cell_data("demo", fold=1, rule="AR", split="train")
    >>> len(train), train.targets.shape[1], bool((train.targets.sum(axis=1) > 0.999).all())
    (216, 6, True)
    >>> test = cell_data("demo", fold=1, rule="AR", split="test")
    >>> len(test), test.targets.shape, test.ratings is None
    (72, (0, 6), True)
    """
    from .plugins import resolve

    built = load_task(task) if isinstance(task, str) else task
    if submission is None:
        cls: type[Submission] = Submission
    else:
        cls = resolve(submission) if isinstance(submission, str) else submission
    from .runner import Runner

    runner = Runner(built, cls, config, runs=Path("."), device="cpu")
    if runner.feature_spec is not None:
        runner.prepare_features()
    data, _missing = runner.data(fold, split, rule, with_targets=split != "test")
    return data


__all__ = ["DEFAULT_SEEDS", "GridResult", "build_leaderboard", "cell_data", "counts",
           "grid_runner",
           "run", "run_cells"]
