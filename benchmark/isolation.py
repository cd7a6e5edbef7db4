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
from collections.abc import Callable, Iterable, Iterator
from typing import Any

#: Tags of the messages a child sends: progress, a result, or an exception to re-raise.
PROGRESS, RESULT, RAISE = "progress", "result", "raise"


class Killed(Exception):
    """The child ran past its deadline (and was killed) or died without a result."""


class TimedOut(Killed):
    """The child ran past its deadline and was killed."""


class Died(Killed):
    """The child died without a result (``os._exit``, a crash, the OOM killer)."""


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
    :class:`Killed` says which.  One child of :func:`map_with_deadline`.
    """
    ((_, outcome),) = map_with_deadline([(None, fn)], 1, seconds,
                                        on_progress=lambda _: on_progress)
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


def map_with_deadline(items: Iterable[tuple[Any, Callable[[Callable[..., None]], Any]]], jobs: int,
                      seconds: float | None = None,
                      on_progress: Callable[[Any], Callable[..., None] | None] | None = None,
                      on_start: Callable[[Any], None] | None = None
                      ) -> Iterator[tuple[Any, Any]]:
    """Yield ``(tag, value or exception)`` for each ``(tag, fn)``, ``jobs`` children at a time.

    Each ``fn(progress)`` runs in its own forked child, as in
    :func:`call_with_deadline` (killed after ``seconds`` when given); this
    process stays single-threaded and waits on all the children's pipes at
    once, so results arrive in the order they finish.  ``items`` is consumed
    lazily, one item as a slot frees (a caller can claim a cell just before it
    starts).  A child's exception is yielded, not raised.  ``on_start(tag)`` is
    called as a child starts and ``on_progress(tag)`` gives the callback for its
    progress messages.
    """
    from multiprocessing.connection import wait

    ctx = mp.get_context("fork")
    todo = iter(items)
    more = True
    running: dict[Any, tuple[Any, Any, float, Callable[..., None] | None]] = {}
    try:
        while more or running:
            while more and len(running) < max(1, jobs):
                nxt = next(todo, None)
                if nxt is None:
                    more = False
                    break
                tag, fn = nxt
                if on_start is not None:
                    on_start(tag)
                recv, send = ctx.Pipe(duplex=False)
                proc = ctx.Process(target=_child, args=(fn, send), daemon=True)
                proc.start()
                send.close()
                deadline = time.monotonic() + seconds if seconds is not None else float("inf")
                running[recv] = (tag, proc, deadline,
                                 on_progress(tag) if on_progress is not None else None)
            if not running:
                break
            now = time.monotonic()
            soonest = min(d for _, _, d, _ in running.values())
            ready = wait(list(running), timeout=None if soonest == float("inf")
                         else max(0.0, soonest - now))
            now = time.monotonic()
            for recv in list(running):
                tag, proc, deadline, progress = running[recv]
                outcome: Any = None
                if recv in ready:
                    try:
                        kind, payload = recv.recv()
                    except EOFError:
                        proc.join(5)
                        outcome = Died(f"the cell's process died without a result (exit "
                                       f"code {proc.exitcode})")
                    else:
                        if kind == PROGRESS:
                            if progress is not None:
                                progress(*payload)
                            continue
                        outcome = payload
                elif now >= deadline:
                    outcome = TimedOut(f"the cell ran past its time limit of {seconds:g} s "
                                       "and its process was killed")
                else:
                    continue
                del running[recv]
                if proc.is_alive():
                    proc.kill()
                proc.join()
                recv.close()
                yield tag, outcome
    finally:
        for recv, (_tag, proc, _d, _p) in running.items():
            if proc.is_alive():
                proc.kill()
            proc.join()
            recv.close()


__all__ = ["Died", "Killed", "TimedOut", "call_with_deadline", "map_with_deadline"]
