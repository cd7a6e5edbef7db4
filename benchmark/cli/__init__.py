"""The ``serbench`` command line: a thin layer of typer commands over the library.

Each module holds the commands of one area and only parses options and shows
results.  :func:`main` owns the exit status: 0 success, 1 a failure found
(failed cells, differences, check failures), 2 a usage or input error,
printed as one message (what, where, fix) without a traceback.
"""

from __future__ import annotations

import errno
from typing import Any

import typer

from .. import __version__
from ..errors import SerbenchError
from .bridges import export
from .common import err, escape, out
from .grid import ablate, run, study
from .results import compare, leaderboard, score
from .submissions import submissions_app
from .tasks import prepare, tasks_app

app = typer.Typer(
    help="serbench: a speech emotion recognition benchmark that counts every rater.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,  # help texts are plain: "[ray]" stays "[ray]"
    pretty_exceptions_enable=False,
)


@app.command()
def version() -> None:
    """Print the serbench version."""
    out.print(__version__)


app.command()(prepare)
app.add_typer(tasks_app, name="tasks")
app.command()(run)
app.command()(ablate)
app.command()(study)
app.command()(score)
app.command()(leaderboard)
app.command()(compare)
app.command()(export)
app.add_typer(submissions_app, name="submissions")

#: errno values that mean "this destination cannot be written" (read-only, no permission, full).
_UNWRITABLE = {errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EDQUOT}


def _interrupted() -> None:
    err.print("interrupted: every finished cell is kept; rerun the same command to resume")


def _error(message: str) -> None:
    err.print(f"[bold red]error:[/] {escape(message)}")


def _notes() -> Any:
    """Show serbench's own warnings (:class:`SerbenchWarning`: a penalty that cannot act, a
    metric that is undefined) as one ``note:`` line each, once per message, instead of Python's
    warning format with a file, a line number and a line of source, repeated per cell."""
    import warnings

    from ..errors import SerbenchWarning

    shown: set[str] = set()
    default = warnings.showwarning

    def show(message: Any, category: type[Warning], *args: Any, **kwargs: Any) -> None:
        if not issubclass(category, SerbenchWarning):
            default(message, category, *args, **kwargs)
        elif str(message) not in shown:
            shown.add(str(message))
            err.print(f"[yellow]note:[/] {escape(str(message))}")

    return show


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return (and, as a script, exit with) 0, 1 or 2."""
    import warnings

    with warnings.catch_warnings():
        warnings.showwarning = _notes()
        return _main(argv)


def _main(argv: list[str] | None) -> int:
    from typer._click import exceptions as click_exc

    try:
        rv = app(args=argv, prog_name="serbench", standalone_mode=False)
    except SerbenchError as exc:
        _error(str(exc))
        return 2
    except click_exc.NoArgsIsHelpError as exc:
        out.print(exc.format_message(), markup=False)
        return 0
    except click_exc.UsageError as exc:
        cmd = exc.ctx.command_path if exc.ctx is not None else "serbench"
        _error(f"{exc.format_message()}\n  fix: see `{cmd} --help`")
        return 2
    except click_exc.ClickException as exc:
        _error(exc.format_message())
        return exc.exit_code
    except typer.Abort:
        err.print("aborted")
        return 1
    except KeyboardInterrupt:
        _interrupted()
        return 130
    except OSError as exc:
        if exc.errno == errno.ENOTDIR:  # a path through a file, met below a check
            _error(f"{exc.filename}: a file stands where a folder is needed\n  fix: point "
                   "serbench at folders (--runs, --out, --to, SERBENCH_HOME), not files; "
                   "nothing already written was changed")
            return 2
        if exc.errno in _UNWRITABLE:
            where = exc.filename or "a destination folder"
            _error(f"{where}: cannot write there ({exc.strerror})\n  fix: make the folder "
                   "writable or free space, or point serbench elsewhere (SERBENCH_HOME for "
                   "caches, --runs / --out for results); nothing already written was changed")
            return 2
        raise
    if rv == 130:  # typer turns Ctrl-C into Exit(130)
        _interrupted()
    return rv if isinstance(rv, int) else 0


__all__ = ["app", "main"]
