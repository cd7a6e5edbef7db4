"""The feature cache: one memory-mapped Arrow file per (corpus, feature spec).

Features are extracted once, in length-sorted batches (little padding), and
written to ``$SERBENCH_HOME/features/<corpus key>/<spec key>/features.arrow``
through a temporary file renamed into place, so an interrupted extraction
leaves no half cache.  The corpus key hashes the folders holding the audio, so
every task built on the same audio (and every cell, fold, rule and seed)
shares one extraction; a task that needs clips the cache lacks extends it (cached
clips are copied, only the new ones are computed).  Reading maps the file and
returns zero-copy numpy views, so every cell of a run shares one copy in the
page cache.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from .. import atomic, audio, paths
from ..errors import InputError
from .specs import FeatureSpec, Pending

FILE = "features.arrow"
_SCHEMA = pa.schema([("utterance_id", pa.string()), ("audio_path", pa.string()),
                     ("duration", pa.float64()), ("fingerprint", pa.string()),
                     ("frames", pa.int32()), ("shape", pa.list_(pa.int32())),
                     ("dtype", pa.string()), ("data", pa.large_binary())])
#: Batches decoded ahead of the forward pass, and started batches waiting for the writer.
DEPTH = 2
#: Threads hashing audio files for their fingerprints.
HASH_THREADS = 4
#: Bytes written between two flushes to disk by the writer thread, so that the final
#: fsync of the atomic write (no half cache after a crash) has little left to do.
SYNC_BYTES = 256 << 20


class FeatureStore:
    """Read-only mapping utterance id -> feature array, backed by a memory map."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            source = pa.memory_map(str(self.path / FILE), "r")
            self._table = pa.ipc.open_file(source).read_all()
            if self._table.schema.names != _SCHEMA.names:
                raise pa.ArrowInvalid(f"columns {self._table.schema.names}, expected "
                                      f"{_SCHEMA.names}")
        except (OSError, pa.ArrowException) as exc:
            raise InputError(f"unreadable feature cache: {exc}", file=self.path / FILE,
                             fix="delete the folder; it is rebuilt on the next run") from exc
        ids = self._table.column("utterance_id").to_pylist()
        self._index = {u: i for i, u in enumerate(ids)}
        col = self._table.column
        self.audio_paths = dict(zip(ids, col("audio_path").to_pylist(), strict=True))
        self.durations = dict(zip(ids, col("duration").to_pylist(), strict=True))
        self.fingerprints = dict(zip(ids, col("fingerprint").to_pylist(), strict=True))
        self._frames = col("frames").to_pylist()
        #: Cached clips whose audio had changed and that this build recomputed.
        self.recomputed: list[str] = []
        self._shape = self._table.column("shape").to_pylist()
        self._dtype = self._table.column("dtype").to_pylist()
        self._data = self._table.column("data")
        self.meta = json.loads((self.path / "meta.json").read_text())

    def __reduce__(self) -> tuple[type, tuple[Path]]:
        # Sent to another process (a Ray worker) as its folder and reopened there:
        # the memory map itself cannot travel, and the folder is read-only once built.
        return (FeatureStore, (self.path,))

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, utt: object) -> bool:
        return utt in self._index

    def __getitem__(self, utt: str) -> np.ndarray:
        i = self._index[utt]
        buf = self._data[i].as_buffer()
        return np.frombuffer(buf, dtype=self._dtype[i]).reshape(self._shape[i])

    def length(self, utt: str) -> int:
        """Number of time frames the clip's features were computed from (for frame features,
        the second-to-last axis; pooled features keep the count of the frames they pooled)."""
        return int(self._frames[self._index[utt]])


def length_buckets(durations: np.ndarray, budget_seconds: float) -> list[np.ndarray]:
    """Indices grouped into batches of similar length whose padded size fits the budget."""
    from ..batching import pack

    return pack(np.argsort(durations, kind="stable"), np.asarray(durations, dtype=float),
                cap=budget_seconds)


def fingerprint(path: str | Path) -> str:
    """A cheap content fingerprint of an audio file: its size and a BLAKE2b hash of its bytes.

    A file that is missing or unreadable gets ``"missing"`` (decoding then says why).
    """
    import hashlib

    h = hashlib.blake2b(digest_size=16)
    try:
        with open(path, "rb") as f:
            size = 0
            while chunk := f.read(1 << 20):
                h.update(chunk)
                size += len(chunk)
    except OSError:
        return "missing"
    return f"{size}:{h.hexdigest()}"


def fingerprints(audio_paths: np.ndarray) -> list[str]:
    """Fingerprints of many files, hashed on a few threads (hashlib releases the GIL)."""
    with _Fingerprints(audio_paths) as hashing:
        return [hashing[i] for i in range(len(audio_paths))]


def corpus_key(audio_paths: np.ndarray) -> str:
    """A key for the audio a set of clips comes from: a hash of their folders."""
    import hashlib

    parents: dict[str, str] = {}  # each folder resolved once, not once per clip

    def folder(p: str) -> str:
        if os.path.islink(p):  # a linked file counts in its target's folder
            return str(Path(p).resolve().parent)
        head = os.path.dirname(p)
        if head not in parents:
            parents[head] = str(Path(head or ".").resolve())
        return parents[head]

    folders = sorted({folder(str(p)) for p in audio_paths})
    return hashlib.sha256("\n".join(folders).encode()).hexdigest()[:16]


def store_dir(audio_paths: np.ndarray, spec: FeatureSpec) -> Path:
    return paths.home() / "features" / corpus_key(audio_paths) / spec.key()


def build_store(
    ids: np.ndarray,
    audio_paths: np.ndarray,
    durations: np.ndarray,
    spec: FeatureSpec,
    *,
    device: str = "cpu",
    max_seconds: float | None = audio.DEFAULT_MAX_SECONDS,
    progress: Callable[[int, int], None] | None = None,
    mapper: Callable[..., Iterator[tuple[list[np.ndarray], list[int]]]] | None = None,
    log: Callable[[str], None] | None = None,
) -> FeatureStore:
    """Features of ``ids``: the cached ones, extracting (and keeping) whatever is missing.

    Every clip's audio is fingerprinted (:func:`fingerprint`); a cached clip
    whose file changed since it was cached is recomputed, and ``log`` (and the
    returned store's ``recomputed``) names it.  ``spec.check()`` runs before
    anything is extracted.

    ``mapper(fn, shards)`` computes ``fn`` on every shard (a batch of clip
    indices) and yields the results in order: by default the batches run here,
    decoded one thread ahead and written by a background thread while the next
    batch computes; an executor's map runs them on other workers (one batch
    per GPU at a time).  The cache file is written here either way, so its
    content does not depend on the mapper, and no step holds more than a few
    batches' features in memory.
    """
    folder = store_dir(audio_paths, spec)
    ids = np.asarray(ids, dtype=object)
    audio_paths = np.asarray(audio_paths, dtype=object)
    durations = np.array([d if d is not None and d == d else 0.0 for d in durations], dtype=float)
    old = None
    if (folder / "meta.json").exists() and (folder / FILE).exists():
        try:
            old = FeatureStore(folder)
        except (InputError, KeyError, ValueError):  # unreadable or an older layout: rebuilt
            old = None
    if old is None:  # nothing to compare them with: hashed while the features compute
        with _Fingerprints(audio_paths) as hashing:
            return _build(folder, ids, audio_paths, durations, spec, hashing, None, set(), [],
                          device, max_seconds, progress, mapper)
    prints = fingerprints(audio_paths)
    cached: set[str] = set()
    changed: list[str] = []
    for u, p, fp in zip(map(str, ids), audio_paths, prints, strict=True):
        if u in old and old.audio_paths[u] == str(p):
            (cached.add(u) if old.fingerprints[u] == fp else changed.append(u))
    if changed and log is not None:
        log(f"{len(changed)} clip(s) changed on disk since their features were cached and are "
            f"recomputed: {', '.join(changed[:10])}{' ...' if len(changed) > 10 else ''}")
    if len(cached) == len(ids):
        return old
    return _build(folder, ids, audio_paths, durations, spec, prints, old, cached, changed,
                  device, max_seconds, progress, mapper)


class _Fingerprints:
    """:func:`fingerprints` computed on a thread pool in the background; ``[i]`` waits for
    the i-th.  A fresh cache needs them only when it writes each clip."""

    def __init__(self, audio_paths: np.ndarray) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self._pool = ThreadPoolExecutor(HASH_THREADS, thread_name_prefix="serbench-hash")
        self._futures = [self._pool.submit(fingerprint, str(p)) for p in audio_paths]

    def __getitem__(self, i: int) -> str:
        return self._futures[i].result()

    def __enter__(self) -> _Fingerprints:
        return self

    def __exit__(self, *exc: object) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def _build(folder: Path, ids: np.ndarray, audio_paths: np.ndarray, durations: np.ndarray,
           spec: FeatureSpec, prints: Any, old: FeatureStore | None, cached: set[str],
           changed: list[str], device: str, max_seconds: float | None,
           progress: Callable[[int, int], None] | None,
           mapper: Callable[..., Iterator[tuple[list[np.ndarray], list[int]]]] | None
           ) -> FeatureStore:
    """Extract the clips of ``ids`` not in ``cached`` and write the cache file (atomically)
    with the cached ones copied from ``old``; see :func:`build_store`."""
    spec.check()
    todo = np.array([i for i, u in enumerate(ids) if str(u) not in cached], dtype=int)
    wanted = set(map(str, ids))
    keep = [] if old is None else [u for u in old.audio_paths if u not in wanted or u in cached]
    cap = max_seconds if max_seconds is not None else np.inf
    batches = [todo[b] for b in length_buckets(np.minimum(durations[todo], cap),
                                               spec.batch_seconds)]
    folder.mkdir(parents=True, exist_ok=True)
    total = len(keep) + len(todo)
    shard_paths = {int(i): str(audio_paths[i]) for i in todo}

    def load(batch: np.ndarray) -> list[np.ndarray]:
        return [audio.load(shard_paths[int(i)], spec.sample_rate, max_seconds) for i in batch]

    def extract(batch: np.ndarray) -> tuple[list[np.ndarray], list[int]]:
        return spec.start(load(batch), device).result()

    def started() -> Iterator[Pending]:
        if mapper is not None:
            for res in mapper(extract, batches):
                yield Pending(*res)
        else:
            yield from _started(batches, lambda b: spec.prepare(load(b), device), spec, device)

    def write(tmp: Path) -> None:
        with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, _SCHEMA) as writer:
            done = 0
            synced = 0
            fd = os.open(tmp, os.O_RDONLY)  # fsync through any descriptor flushes the file
            for start in range(0, len(keep), 256):  # clips already cached: copied, not recomputed
                part = keep[start:start + 256]
                assert old is not None
                writer.write_batch(_batch(part, [old.audio_paths[u] for u in part],
                                          [old.durations[u] for u in part],
                                          [old.fingerprints[u] for u in part],
                                          [old.length(u) for u in part], [old[u] for u in part]))
                done += len(part)

            def consume(batch: np.ndarray, pending: Pending) -> None:
                nonlocal done
                feats, frames = pending.result()
                writer.write_batch(_batch([str(ids[i]) for i in batch],
                                          [str(audio_paths[i]) for i in batch],
                                          [float(durations[i]) for i in batch],
                                          [prints[i] for i in batch], frames, feats))
                done += len(batch)
                nonlocal synced
                if sink.tell() - synced > SYNC_BYTES:  # on this thread, while the GPU works
                    sink.flush()
                    os.fdatasync(fd) if hasattr(os, "fdatasync") else os.fsync(fd)
                    synced = sink.tell()
                if progress is not None:
                    progress(done, total)

            try:
                _write_behind(zip(batches, started(), strict=True), consume)
            finally:
                os.close(fd)

    atomic.write_with(folder / FILE, write)
    atomic.write_json(folder / "meta.json", {"spec": type(spec).__name__,
                                             "params": spec.params(), "n": total})
    store = FeatureStore(folder)
    store.recomputed = changed
    return store


def _started(batches: list[np.ndarray], load: Callable[[np.ndarray], Any],
             spec: FeatureSpec, device: str) -> Iterator[Pending]:
    """Each batch started on ``device``; its audio decoded and prepared (:meth:`FeatureSpec.
    prepare`: normalised, padded, pinned) on a thread ``DEPTH`` batches ahead."""
    from ..prefetch import ahead

    for prepared in ahead(batches, load, DEPTH, "decode"):
        yield spec.start_prepared(prepared, device)


_DONE = object()


def _write_behind(items: Iterable[tuple[np.ndarray, Pending]],
                  consume: Callable[[np.ndarray, Pending], None]) -> None:
    """``consume`` every item on a background thread, at most ``DEPTH`` items behind.

    The producer (decoding and launching batches) and the consumer (waiting for a
    batch's device copy and writing it) overlap; an error on either side stops
    both and is raised here.
    """
    import queue
    import threading

    q: queue.Queue[Any] = queue.Queue(maxsize=DEPTH)
    failed: list[BaseException] = []

    def run() -> None:
        while (item := q.get()) is not _DONE:
            if failed:
                continue  # drain after an error, so the producer never blocks
            try:
                consume(*item)
            except BaseException as exc:  # re-raised in the producer's thread
                failed.append(exc)

    thread = threading.Thread(target=run, name="serbench-writer", daemon=True)
    thread.start()
    try:
        for item in items:
            if failed:
                break
            q.put(item)
    finally:
        q.put(_DONE)
        thread.join()
    if failed:
        raise failed[0]


def _batch(ids: list[str], paths: list[str], durations: list[float], prints: list[str],
           frames: list[int], feats: list[np.ndarray]) -> pa.RecordBatch:
    # One copy of the feature bytes into one buffer, handed to Arrow as is.
    offsets = np.zeros(len(feats) + 1, dtype=np.int64)
    np.cumsum([f.nbytes for f in feats], out=offsets[1:])
    blob = (np.concatenate([np.ascontiguousarray(f).reshape(-1).view(np.uint8) for f in feats])
            if feats else np.zeros(0, dtype=np.uint8))
    data = pa.LargeBinaryArray.from_buffers(pa.large_binary(), len(feats),
                                            [None, pa.py_buffer(offsets), pa.py_buffer(blob)])
    return pa.record_batch([
        pa.array(ids, pa.string()),
        pa.array(paths, pa.string()),
        pa.array(durations, pa.float64()),
        pa.array(prints, pa.string()),
        pa.array(frames, pa.int32()),
        pa.array([list(f.shape) for f in feats], pa.list_(pa.int32())),
        pa.array([str(f.dtype) for f in feats], pa.string()),
        data,
    ], schema=_SCHEMA)
