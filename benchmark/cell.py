"""What a grid cell is while it runs: its result, its output, its lock and its time limit.

A cell is (task, submission, fold, training rule, seed).  :class:`CellOutput`
is what computing it gave (a record and predictions, or a traceback), before
anything is written; :class:`CellResult` is what became of it.  The lock keeps
two runs sharing a results folder from computing the same cell at once.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .records import CellKey
from .vocab import CellStatus

ERROR_FILE = "error.txt"
LOCK_FILE = ".lock"
BUSY = "running in another process"


@dataclass
class CellResult:
    key: CellKey
    status: CellStatus
    message: str = ""
    seconds: float = 0.0


@dataclass
class CellOutput:
    """What a cell computed, before anything is written: a record and predictions, or why not."""

    key: CellKey
    record: dict[str, Any] | None = None
    ids: np.ndarray | None = None
    probs: np.ndarray | None = None
    error: str | None = None  # the traceback of a failed cell
    checkpoint: bytes | None = None  # safetensors bytes (--save-models)
    #: per-rater predictions (clip ids, rater ids, probabilities) from predict_rater_proba
    rater: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    message: str = ""
    seconds: float = 0.0


@contextlib.contextmanager
def alarm_limit(seconds: float | None) -> Iterator[None]:
    """Raise :class:`CellTimeout` in this thread after ``seconds`` (POSIX main thread only).

    The fallback for cells on cuda once this process holds a CUDA context (a
    forked child cannot use it); everywhere else the runner kills a child process
    instead (:mod:`serbench.isolation`), which no submission can swallow.
    """
    usable = (seconds and hasattr(signal, "setitimer")
              and threading.current_thread() is threading.main_thread())
    if not usable:
        yield
        return

    def alarm(_signum: int, _frame: object) -> None:
        raise CellTimeout(f"the cell ran past its time limit of {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, float(seconds))  # type: ignore[arg-type]
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class CellTimeout(BaseException):
    """A cell ran past ``--cell-timeout``.

    A ``BaseException`` so that a submission's own ``except Exception`` cannot
    swallow it.
    """


class CellLock:
    """The lock file of one cell folder, held while the cell is computed and written.

    Two runs pointed at the same results folder then never compute or write the
    same cell at once, so a record and its predictions always come from one run.
    """

    def __init__(self, folder: Path) -> None:
        from filelock import FileLock

        folder.mkdir(parents=True, exist_ok=True)
        self._lock = FileLock(str(folder / LOCK_FILE))

    def acquire(self) -> bool:
        """Take the lock if it is free; False if another process holds it."""
        from filelock import Timeout

        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            return False
        return True

    def release(self) -> None:
        self._lock.release()


@contextlib.contextmanager
def cell_lock(folder: Path) -> Iterator[bool]:
    """``with cell_lock(folder) as held:``; ``held`` is False if another process has it."""
    lock = CellLock(folder)
    held = lock.acquire()
    try:
        yield held
    finally:
        if held:
            lock.release()


__all__ = ["BUSY", "ERROR_FILE", "LOCK_FILE", "CellLock", "CellOutput", "CellResult",
           "CellTimeout", "alarm_limit", "cell_lock"]
