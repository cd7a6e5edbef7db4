"""What every command module shares: the consoles, ``--json``, tables that never truncate.

Commands only parse options and show results; the work is done by the library
(:mod:`serbench.grid`, :mod:`serbench.tasks`, :mod:`serbench.leaderboard`, ...).
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from ..cell import CellResult
from ..errors import InputError
from ..executors import Hooks, Report
from ..records import CellKey


def _console(stderr: bool) -> Console:
    """A console that never cuts identifiers: unbounded width when not a terminal."""
    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() else 10_000
    return Console(stderr=stderr, soft_wrap=True, width=width, highlight=False)


out = _console(stderr=False)
err = _console(stderr=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output (stable keys).")]


def strict(obj: Any) -> Any:
    """``obj`` with every NaN or infinite float as None: ``--json`` output is strict JSON.

    Python's :mod:`json` writes ``NaN`` / ``Infinity``, which RFC 8259 does not allow and
    most readers (``jq``, JavaScript's ``JSON.parse``) refuse; an undefined value is ``null``.
    """
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: strict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict(v) for v in obj]
    if hasattr(obj, "dtype") and hasattr(obj, "tolist"):  # numpy scalars and arrays
        return strict(obj.tolist())
    return obj


def print_json(obj: Any) -> None:
    """Write ``obj`` as strict JSON (undefined values as null) on stdout."""
    text = json.dumps(strict(obj), indent=2, sort_keys=True, default=str, allow_nan=False)
    sys.stdout.write(text + "\n")


def table(*columns: str, rows: Sequence[Sequence[str]], ident: int = 1,
          title: str | None = None) -> Table:
    """A rich table whose first ``ident`` columns (names, ids) are never wrapped or cut.

    On a narrow terminal the table grows wider than the screen rather than
    dropping or eliding a value (scripts that grep the output rely on it).
    """
    t = Table(title=title)
    for i, c in enumerate(columns):
        cells = [_plain(r[i]) for r in rows]
        if i < ident:  # names and ids: never wrapped, never cut
            width = max([len(c), *(len(x) for x in cells)])
            t.add_column(c, no_wrap=True, min_width=width, overflow="fold")
        else:  # other columns may wrap, but never shrink below their longest word
            words = [len(w) for x in [c, *cells] for w in x.split()] or [1]
            t.add_column(c, min_width=max(words), overflow="fold")
    for r in rows:
        t.add_row(*r)
    return t


def show(t: Table, console: Console | None = None) -> None:
    """Print a table at least as wide as it needs: a narrow terminal never squeezes a column."""
    from rich.measure import Measurement

    console = console or out
    need = Measurement.get(console, console.options.update_width(10_000), t).minimum
    if need > console.width:  # print() cannot exceed the console's width: a wider console
        console = Console(file=console.file, width=need, soft_wrap=True, highlight=False,
                          force_terminal=console.is_terminal,
                          no_color=console.no_color)
    console.print(t)


def _plain(text: str) -> str:
    from rich.text import Text

    return Text.from_markup(text).plain


def int_list(value: str | None, option: str) -> list[int] | None:
    """``"1,2,3"`` -> ``[1, 2, 3]``; None when the option is not given; anything else,
    an empty value included (it would silently mean "all"), is one clear error (exit 2)."""
    if value is None:
        return None
    try:
        out = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise InputError(f"{option} {value!r} is not a comma-separated list of integers",
                         fix=f"e.g. {option} 1,2,3") from None
    if not out:
        raise InputError(f"{option} {value!r} is empty",
                         fix=f"e.g. {option} 1,2,3, or leave the option out for the default")
    return out


def path_option(value: str | None, option: str) -> Path | None:
    """The path given as ``option``; None when not given.  An empty value is refused (exit 2)
    rather than read as the current folder, which is what ``Path("")`` means."""
    if value is None:
        return None
    if not value.strip():
        raise InputError(f"{option} {value!r} is empty",
                         fix=f"give a path as {option} (write {option} . for the current "
                             "folder)")
    return Path(value)


def str_list(value: str | None, option: str | None = None) -> list[str] | None:
    """``"a, b"`` -> ``["a", "b"]``; None when not given; with ``option``, an empty value is
    an error (exit 2) rather than the default."""
    if value is None:
        return None
    out = [v.strip() for v in value.split(",") if v.strip()]
    if not out:
        if option is None:
            return None
        raise InputError(f"{option} {value!r} is empty",
                         fix=f"name one or more, or leave {option} out for the default")
    return out


class Bars(Progress):
    """rich's :class:`~rich.progress.Progress` whose bars never split an error message.

    rich prints an empty line when bars stop on a console that is not a terminal (a
    pipe, a log file, a test capturing stderr), and prints the bars' last state
    there; an error that stops the bars then came after a blank line and the
    bars, not as one block.  Here the bars add no empty line, and bars stopped by
    an exception are cleared (transient), so the error is the only thing printed.
    """

    def stop(self) -> None:
        if not self.disable:  # rich's own stop, without its empty line off a terminal
            self.live.stop()

    def __exit__(self, exc_type: Any, exc_val: Any, exc_tb: Any) -> None:
        if exc_type is not None:
            self.live.transient = True
        self.stop()


def demo_progress() -> tuple[Progress, Callable[[int, int], None]]:
    """A transient bar for generating the demo corpus on first use."""
    progress = Bars(TextColumn("[bold]generating demo corpus"), BarColumn(),
                        TextColumn("{task.completed}/{task.total} clips"), TimeElapsedColumn(),
                        console=err, transient=True)
    handle = progress.add_task("demo", total=None)

    def update(done: int, total: int) -> None:
        progress.update(handle, completed=done, total=total)

    return progress, update


def load(name: str) -> Any:
    """A prepared task; the demo is generated (with a progress bar) on first use."""
    from ..tasks import load_task

    progress, update = demo_progress()
    with progress:
        return load_task(name, progress=update)


class GridBars(Hooks):
    """Rich progress bars for a grid: features, cells and the cell in training."""

    def __init__(self, progress: Progress, total: int | None, title: str, executor: str,
                 announce: Callable[[Any, Sequence[CellKey], int], None] | None = None) -> None:
        self.progress = progress
        self.executor = executor
        self.announce = announce
        self.feat = progress.add_task("features", total=None, info="")
        self.grid = progress.add_task(title, total=total, info="")
        self.train = progress.add_task("training", total=None, info="", visible=False)

    def plan(self, runner: Any, keys: Sequence[CellKey], already: int) -> None:
        self.progress.update(self.grid, total=len(keys))
        if self.announce is not None:
            self.announce(runner, keys, already)

    def features(self, done: int, total: int) -> None:
        self.progress.update(self.feat, completed=done, total=total)
        if done >= total:
            self.progress.update(self.feat, visible=False)

    def start(self, key: CellKey) -> None:
        label = f"fold {key.fold} {key.train_rule} seed {key.seed}"
        if self.executor == "local":
            self.progress.update(self.grid, info=label)
            self.progress.reset(self.train, total=None, visible=True, description=f"  {label}",
                                info="")
        else:
            self.progress.update(self.grid, info=f"{self.executor}: submitted {label}")

    def training(self, key: CellKey) -> Report | None:
        def update(step: int, total: int, message: str) -> None:
            self.progress.update(self.train, completed=step, total=total, info=message)
        return update

    def done(self, result: CellResult) -> None:
        self.progress.update(self.train, visible=False)
        self.progress.update(self.feat, visible=False)
        self.progress.advance(self.grid)


def grid_progress() -> Progress:
    return Bars(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[info]}"), TimeElapsedColumn(), console=err)


def cell_counts(counts: dict[str, int]) -> str:
    """``3 run, 2 already done, 0 failed`` (+ busy and recomputed cells when there are any)."""
    text = f"{counts['run']} run, {counts['already_done']} already done"
    if counts.get("busy"):
        text += f", {counts['busy']} left to another run working in the same folder"
    if counts.get("recomputed"):
        text += f", {counts['recomputed']} recomputed (what was broken is " \
                "named below)"
    return text + f", {counts['failed']} failed"


def report_cells(cells: Sequence[CellResult], runs: Any, label: str = "") -> None:
    """One line per failed or recomputed cell, on stderr."""
    from ..cell import ERROR_FILE

    for r in cells:
        where = f"{label + ' ' if label else ''}fold {r.key.fold} {r.key.train_rule} " \
                f"seed {r.key.seed}"
        if r.status == "failed":
            err.print(f"[red]failed[/] {escape(where)}: {escape(r.message)}  (traceback in "
                      f"{escape(str(r.key.folder(runs) / ERROR_FILE))})")
        elif r.message.startswith("recomputed"):
            err.print(f"[yellow]recomputed[/] {escape(where)}: "
                      f"{escape(r.message.removeprefix('recomputed: '))}")


__all__ = ["Bars", "GridBars", "JsonOpt", "cell_counts", "demo_progress", "err", "escape",
           "grid_progress", "int_list", "load", "out", "path_option", "print_json", "report_cells",
           "show", "str_list", "strict", "table"]
