"""Run one function in a child process that the harness kills at a deadline.

``--cell-timeout`` used to raise an exception from a signal handler in the
cell's own thread.  A submission that catches ``BaseException`` (or uses a
bare ``except:``) swallowed it and the run hung.  A time limit that cannot be
swallowed has to live outside the process it limits: the cell runs in a
forked child, the parent waits on a pipe until the deadline and then kills the
child with SIGKILL.  Messages the child sends before its result (training
progress) are passed to a callback, so progress bars keep working.

Fork, not spawn: the child inherits the runner, the task and the loaded
submission class as they are (a submission loaded from a file is not
importable by name), at no start-up cost.  A CUDA context cannot cross a fork:
once this process has used CUDA (feature extraction on the GPU does), the
runner falls back to an in-process alarm for cells on cuda, which a submission
that catches ``BaseException`` can still swallow (the README says so).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
import traceback
from collections.abc import Callable
from typing import Any

#: Tags of the messages a child sends: progress, a result, or an exception to re-raise.
PROGRESS, RESULT, RAISE = "progress", "result", "raise"


class Killed(Exception):
    """The child ran past its deadline (and was killed) or died without a result."""


def _child(fn: Callable[[Callable[..., None]], Any], conn: Any) -> None:
    def progress(*args: Any) -> None:
        conn.send((PROGRESS, args))

    try:
        conn.send((RESULT, fn(progress)))
    except BaseException as exc:
        try:
            conn.send((RAISE, exc))
        except Exception:  # an exception that cannot be pickled: send its text
            conn.send((RAISE, RuntimeError(traceback.format_exc())))
    finally:
        conn.close()
        os._exit(0)  # skip atexit handlers and buffers inherited from the parent


def call_with_deadline(fn: Callable[[Callable[..., None]], Any], seconds: float,
                       on_progress: Callable[..., None] | None = None) -> Any:
    """``fn(progress)`` in a forked child, killed after ``seconds``; its return value here.

    An exception ``fn`` raises is raised here.  Past the deadline, or when the
    child dies without answering (killed by the OOM killer, ``os._exit``), a
    :class:`Killed` says which.
    """
    ctx = mp.get_context("fork")
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(fn, send), daemon=True)
    proc.start()
    send.close()
    deadline = time.monotonic() + seconds
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not recv.poll(left):
                raise Killed(f"the cell ran past its time limit of {seconds:g} s and its "
                             "process was killed")
            try:
                tag, payload = recv.recv()
            except EOFError:
                proc.join(5)
                raise Killed(f"the cell's process died without a result (exit code "
                             f"{proc.exitcode})") from None
            if tag == PROGRESS:
                if on_progress is not None:
                    on_progress(*payload)
                continue
            if tag == RAISE:
                raise payload
            return payload
    finally:
        if proc.is_alive():
            proc.kill()
        proc.join()
        recv.close()


__all__ = ["Killed", "call_with_deadline"]
