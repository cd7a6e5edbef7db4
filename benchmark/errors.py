"""Errors that tell the user what is wrong, where, and what to do about it.

Every error raised on bad input is an :class:`InputError` carrying the file,
the row (when there is one) and a remedy, so that the CLI can print one clear
message instead of a traceback.
"""

from __future__ import annotations

from pathlib import Path


class SerbenchError(Exception):
    """Base class for every error serbench raises on purpose."""


class InputError(SerbenchError):
    """Bad input: names the file, the row and the fix."""

    def __init__(
        self,
        problem: str,
        *,
        file: str | Path | None = None,
        row: int | str | None = None,
        fix: str | None = None,
    ) -> None:
        self.problem = problem
        self.file = None if file is None else str(file)
        self.row = row
        self.fix = fix
        super().__init__(self.message())

    def message(self) -> str:
        where = ""
        if self.file is not None:
            where = f"{self.file}"
            if self.row is not None:
                where += f", row {self.row}"
            where += ": "
        text = f"{where}{self.problem}"
        if self.fix:
            text += f"\n  fix: {self.fix}"
        return text


def reason(exc: BaseException, path: str | Path) -> str:
    """The message of ``exc`` for a line that already names ``path``: the path is not
    repeated (``skipped a/record.json: a/record.json: ...`` read as two problems)."""
    if isinstance(exc, InputError) and exc.file == str(path):
        text = exc.problem if exc.row is None else f"row {exc.row}: {exc.problem}"
        return text + (f"\n  fix: {exc.fix}" if exc.fix else "")
    return str(exc)


class FingerprintMismatch(InputError):
    """The data no longer gives the targets the task was frozen with."""


class NotPrepared(SerbenchError):
    """A task's ratings table has not been built yet."""


class SerbenchWarning(UserWarning):
    """Something a run should say and record, though it is not an error.

    The runner records every such warning raised while a cell is fitted in the
    cell's run record (``warnings``), so a reader of the results sees it too.
    """
