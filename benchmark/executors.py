"""Where grid cells run: in this process, or on a Ray cluster.

Both executors give the same records.  A cell is computed by
:meth:`Runner.compute_cell` (here, or on a Ray worker) and always written by
:meth:`Runner.commit` in this process, so resume semantics, atomic writes and
the cell locks are the local executor's; a cluster needs no shared results
folder.  What a Ray cluster does need: serbench (and the submission's imports)
installed on every node, and ``SERBENCH_HOME`` (prepared tasks, audio, feature
cache) at the same path on every node.  Submissions loaded from a file are sent
by value, so they need not be installed.

Feature extraction is sharded the same way: shards (length-bucketed batches of
clips) are extracted on workers, the cache is written here.

Ray is an optional extra (``pip install "serbench[ray]"``).
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from . import paths
from .cell import CellOutput, CellResult
from .devices import resolve_device
from .errors import InputError, SerbenchError
from .records import CellKey

if TYPE_CHECKING:  # the CLI imports this module; torch loads with the first cell
    from .runner import Runner

#: A per-cell training progress callback ``report(step, total, message)``.
Report = Callable[[int, int, str], None]

#: Shards in flight per worker slot when mapping feature extraction.
SHARDS_PER_SLOT = 2


class Hooks:
    """What an executor tells its caller while a grid runs (every method optional to override).

    The CLI's progress bars subclass it; the library's default does nothing.
    """

    def plan(self, runner: Runner, keys: Sequence[CellKey], already: int) -> None:
        """The grid about to run: its cells, of which ``already`` are recorded and kept."""

    def features(self, done: int, total: int) -> None:
        """Feature extraction progress."""

    def start(self, key: CellKey) -> None:
        """A cell was claimed and starts computing."""

    def training(self, key: CellKey) -> Report | None:
        """A callback for the cell's training progress (local cells only), or None."""
        return None

    def done(self, result: CellResult) -> None:
        """A cell finished: done, skipped or failed."""


class Executor(Protocol):
    """Where cells run.  The runner owns the cell protocol; an executor only places the work."""

    name: str
    #: True when cells run in this process (per-epoch progress is shown).
    in_process: bool

    def device(self, requested: str) -> str:
        """The concrete device cells will run on (``auto`` resolved where they run)."""

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any], *,
            device: str = "cpu") -> Iterator[Any]:
        """``fn`` over ``items`` in order (feature extraction shards)."""

    def run(self, runner: Runner, keys: Iterable[CellKey], hooks: Hooks) -> list[CellResult]:
        """Claim, compute and commit every cell through ``runner``."""

    def close(self) -> None:
        """Release what the executor started."""


class LocalExecutor:
    """Cells one after another in this process (the default), or ``jobs`` at a time.

    With ``jobs > 1`` CPU cells run in forked children, ``jobs`` at once (each
    with ``threads`` torch threads), and this process writes every record as a
    child finishes, so records, locks and resume are the same as one at a time;
    the children inherit the runner, the task and the submission class as they
    are (see :mod:`serbench.isolation`).  Cells on cuda always run one at a time.

    A cell on the CPU trains with ``threads`` torch threads (default 1), restored
    afterwards.  The shipped CPU baselines are small recurrent nets and sklearn
    models whose kernels are too short to gain from intra-op threads: on this
    project's 2-core machine, a demo ``blstm-fc`` cell took 27 s with one thread
    and 224 s with torch's default two while another process used the other core
    (the threads spin-wait for each other); a single thread also keeps CPU runs
    bit-identical to the committed records, which were made with one.
    """

    name = "local"
    in_process = True

    def __init__(self, threads: int = 1, jobs: int = 1) -> None:
        if threads < 1:
            raise InputError(f"--cpus-per-cell must be at least 1, got {threads}",
                             fix="e.g. --cpus-per-cell 2, or leave it out")
        if jobs < 1:
            raise InputError(f"--jobs must be at least 1, got {jobs}",
                             fix="e.g. --jobs 2, or leave it out for one cell per CPU core")
        self.threads = int(threads)
        self.jobs = int(jobs)

    def device(self, requested: str) -> str:
        return resolve_device(requested)

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any], *,
            device: str = "cpu") -> Iterator[Any]:
        del device
        return map(fn, items)

    def run(self, runner: Runner, keys: Iterable[CellKey], hooks: Hooks) -> list[CellResult]:
        import torch

        results: list[CellResult] = []
        before = torch.get_num_threads()
        cpu = str(runner.device).startswith("cpu")
        try:
            if cpu:
                torch.set_num_threads(self.threads)
            if cpu and self.jobs > 1:
                return self._parallel(runner, list(keys), hooks)
            for key in keys:
                hooks.start(key)
                res = runner.run_cell(key, hooks.training(key))
                hooks.done(res)
                results.append(res)
        finally:
            if cpu:
                torch.set_num_threads(before)
        return results

    def _parallel(self, runner: Runner, keys: list[CellKey], hooks: Hooks) -> list[CellResult]:
        """Claim here, compute in ``jobs`` forked children at a time, commit here."""
        from . import isolation
        from .determinism import preload

        preload()  # once here, not once per forked child

        results: list[CellResult] = []
        locks: dict[CellKey, Any] = {}

        def todo() -> Iterator[tuple[CellKey, Callable[[Callable[..., None]], CellOutput]]]:
            for key in keys:  # claimed as a slot frees, so other runs can share the grid
                lock = runner.claim(key)
                if isinstance(lock, CellResult):
                    hooks.done(lock)
                    results.append(lock)
                    continue
                locks[key] = lock
                yield key, (lambda k: lambda report: runner.compute_cell(k, report))(key)

        started: dict[CellKey, float] = {}

        def start(key: CellKey) -> None:
            started[key] = time.perf_counter()
            hooks.start(key)

        try:
            for key, outcome in isolation.map_with_deadline(
                    todo(), self.jobs, runner.cell_timeout, on_progress=hooks.training,
                    on_start=start):
                if isinstance(outcome, SerbenchError):  # the user's mistake: stop, as one at a time
                    raise outcome
                if isinstance(outcome, BaseException):
                    kind = ("CellTimeout" if isinstance(outcome, isolation.TimedOut) else
                            "CellDied" if isinstance(outcome, isolation.Died) else
                            type(outcome).__name__)
                    outcome = CellOutput(key, error=str(outcome), message=f"{kind}: {outcome}",
                                         seconds=time.perf_counter() - started[key])
                try:
                    res = runner.commit(outcome)
                finally:
                    locks.pop(key).release()
                hooks.done(res)
                results.append(res)
        finally:
            for lock in locks.values():
                lock.release()
        order = {k: i for i, k in enumerate(keys)}
        return sorted(results, key=lambda r: order.get(r.key, len(order)))  # the grid's order

    def close(self) -> None:
        pass


def _ray():
    try:
        import ray
    except ImportError:
        raise InputError("--executor ray needs Ray, which is not installed",
                         fix='pip install "serbench[ray]"') from None
    return ray


def _compute_remote(runner: Runner, key: CellKey, threads: int) -> CellOutput:
    """Body of a Ray task: one cell on this worker's CPUs (and GPU, if it was given one)."""
    import torch

    torch.set_num_threads(threads)
    return runner.compute_limited(key)


def _map_remote(fn: Callable[[Any], Any], item: Any, threads: int) -> Any:
    import torch

    torch.set_num_threads(threads)
    return fn(item)


class RayExecutor:
    """Cells as Ray tasks: ``cpus_per_cell`` CPUs (and one GPU when running on cuda) each.

    ``address=None`` starts a private local Ray instance bound to 127.0.0.1;
    otherwise it connects to an existing cluster (``"auto"``, ``"ray://host:10001"``,
    ``"host:6379"``).  A cell that raises, times out, or whose worker dies fails
    alone; the driver writes its ``error.txt``.
    """

    name = "ray"
    in_process = False

    def __init__(self, address: str | None = None, *, cpus_per_cell: int = 1,
                 gpus_per_cell: float | None = None, num_cpus: int | None = None) -> None:
        if cpus_per_cell < 1:
            raise InputError(f"--cpus-per-cell must be at least 1, got {cpus_per_cell}",
                             fix="e.g. --cpus-per-cell 2, or leave it out")
        self.address = address
        self.cpus_per_cell = int(cpus_per_cell)
        self.gpus_per_cell = gpus_per_cell
        self.num_cpus = num_cpus
        self._started_here = False

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        ray = _ray()
        if ray.is_initialized():
            return
        env = {"env_vars": {"SERBENCH_HOME": str(paths.home().resolve())}}
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                  "runtime_env": env, "configure_logging": False}
        if self.address is None:
            kwargs.update(_node_ip_address="127.0.0.1",
                          num_cpus=self.num_cpus or os.cpu_count() or 1)
        else:
            kwargs["address"] = self.address
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        try:
            ray.init(**kwargs)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise InputError(f"could not start or reach Ray at {self.address or 'local'}: {exc}",
                             fix="check --address (ray status on the head node shows it)") from exc
        self._started_here = True

    def close(self) -> None:
        if self._started_here:
            _ray().shutdown()
            self._started_here = False

    def __enter__(self) -> RayExecutor:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def cluster_gpus(self) -> float:
        self.start()
        return float(_ray().cluster_resources().get("GPU", 0.0))

    def device(self, requested: str) -> str:
        """``auto`` -> ``cuda`` when the cluster has GPUs; refuse cuda on a CPU-only cluster."""
        gpus = self.cluster_gpus()
        if requested == "auto":
            return "cuda" if gpus else "cpu"
        if requested.startswith("cuda") and not gpus:
            raise InputError("--device cuda asked for, but the Ray cluster has no GPU",
                             fix="use --device cpu or auto, or add GPU nodes")
        return "cuda" if requested.startswith("cuda") else requested

    def _gpus(self, device: str) -> float:
        if self.gpus_per_cell is not None:
            return self.gpus_per_cell
        return 1.0 if device.startswith("cuda") else 0.0

    # ------------------------------------------------------------------ work

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any], *,
            device: str = "cpu") -> Iterator[Any]:
        """``fn`` on every item as Ray tasks, yielded in order, a bounded window in flight."""
        ray = _ray()
        self.start()
        remote = ray.remote(_map_remote).options(num_cpus=self.cpus_per_cell,
                                                 num_gpus=self._gpus(device))
        slots = max(1, int(ray.cluster_resources().get("CPU", 1) // self.cpus_per_cell))
        gpus = self._gpus(device)
        if gpus and device.startswith("cuda"):
            # one shard per GPU at a time: the window counts GPUs,
            # so at most SHARDS_PER_SLOT shards' features per GPU wait in memory
            slots = max(1, int(ray.cluster_resources().get("GPU", 1) // gpus))
        fn_ref = ray.put(fn)
        pending: deque = deque()
        it = iter(items)
        for item in it:
            pending.append(remote.remote(fn_ref, item, self.cpus_per_cell))
            if len(pending) >= slots * SHARDS_PER_SLOT:
                break
        while pending:
            yield ray.get(pending.popleft())
            nxt = next(it, None)
            if nxt is not None:
                pending.append(remote.remote(fn_ref, nxt, self.cpus_per_cell))

    def run(self, runner: Runner, keys: Iterable[CellKey], hooks: Hooks) -> list[CellResult]:
        """Every cell claimed here, computed as a Ray task, written here as it finishes."""
        ray = _ray()
        self.start()
        _send_plugin_by_value(runner.cls)
        device = runner.device
        remote = ray.remote(_compute_remote).options(
            num_cpus=self.cpus_per_cell, num_gpus=self._gpus(device), max_retries=0)
        results: list[CellResult] = []
        runner_ref = None
        refs: dict[Any, tuple[CellKey, Any, float]] = {}

        def finish(res: CellResult) -> None:
            results.append(res)
            hooks.done(res)

        try:
            for key in keys:
                lock = runner.claim(key)
                if isinstance(lock, CellResult):
                    finish(lock)
                    continue
                if runner_ref is None:
                    runner_ref = ray.put(runner)
                hooks.start(key)
                ref = remote.remote(runner_ref, key, self.cpus_per_cell)
                refs[ref] = (key, lock, time.perf_counter())
            while refs:
                ready, _ = ray.wait(list(refs), num_returns=1)
                key, lock, t0 = refs.pop(ready[0])
                try:
                    out = ray.get(ready[0])
                except ray.exceptions.RayTaskError as exc:
                    cause = exc.cause if isinstance(exc.cause, BaseException) else exc
                    if isinstance(cause, InputError):
                        raise cause from None
                    out = CellOutput(key, error=str(exc), seconds=time.perf_counter() - t0,
                                     message=f"{type(cause).__name__}: {cause}")
                except ray.exceptions.RayError as exc:  # worker died, out of memory, ...
                    out = CellOutput(key, error=str(exc), seconds=time.perf_counter() - t0,
                                     message=f"{type(exc).__name__}: the Ray worker was lost")
                try:
                    res = runner.commit(out)
                finally:
                    lock.release()
                finish(res)
        finally:
            for ref, (_key, lock, _t0) in refs.items():
                ray.cancel(ref, force=True)
                lock.release()
        return results


def _send_plugin_by_value(cls: type) -> None:
    """A submission loaded from a file is not importable on workers: ship its module's code."""
    import sys

    module = sys.modules.get(cls.__module__)
    if module is not None and cls.__module__.startswith("serbench_user_"):
        from ray import cloudpickle

        cloudpickle.register_pickle_by_value(module)


EXECUTORS = ("local", "ray")


def default_jobs(cpus_per_cell: int = 1) -> int:
    """CPU cells computed at once by default: the usable cores over ``cpus_per_cell``."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cores or 1) // max(1, cpus_per_cell))


def make(name: str, *, address: str | None = None, cpus_per_cell: int = 1,
         gpus_per_cell: float | None = None, jobs: int | None = None) -> Executor:
    """The executor called ``name`` (one of :data:`EXECUTORS`).  ``jobs``: CPU cells the local
    executor computes at once (None: :func:`default_jobs`)."""
    if name == "local":
        if address is not None:
            raise InputError("--address is for --executor ray")
        return LocalExecutor(cpus_per_cell,
                             default_jobs(cpus_per_cell) if jobs is None else jobs)
    if name == "ray":
        return RayExecutor(address, cpus_per_cell=cpus_per_cell, gpus_per_cell=gpus_per_cell)
    raise InputError(f"unknown executor {name!r}", fix=f"use one of {', '.join(EXECUTORS)}")
