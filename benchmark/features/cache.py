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
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa

from .. import atomic, audio, paths
from ..errors import InputError
from .specs import FeatureSpec

FILE = "features.arrow"
_SCHEMA = pa.schema([("utterance_id", pa.string()), ("audio_path", pa.string()),
                     ("duration", pa.float64()), ("shape", pa.list_(pa.int32())),
                     ("dtype", pa.string()), ("data", pa.large_binary())])


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
        """Number of frames (the time axis is the second-to-last one)."""
        return int(self._shape[self._index[utt]][-2])


def length_buckets(durations: np.ndarray, budget_seconds: float) -> list[np.ndarray]:
    """Indices grouped into batches of similar length whose padded size fits the budget."""
    order = np.argsort(durations, kind="stable")
    batches, current, longest = [], [], 0.0
    for i in order:
        d = float(durations[i])
        if current and max(longest, d) * (len(current) + 1) > budget_seconds:
            batches.append(np.array(current))
            current, longest = [], 0.0
        current.append(int(i))
        longest = max(longest, d)
    if current:
        batches.append(np.array(current))
    return batches


def corpus_key(audio_paths: np.ndarray) -> str:
    """A key for the audio a set of clips comes from: a hash of their folders."""
    import hashlib

    folders = sorted({str(Path(p).resolve().parent) for p in audio_paths})
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
    mapper: Callable[..., Iterator[list[np.ndarray]]] | None = None,
) -> FeatureStore:
    """Features of ``ids``: the cached ones, extracting (and keeping) whatever is missing.

    ``mapper(fn, shards)`` computes ``fn`` on every shard (a batch of clip
    indices) and yields the results in order: the built-in ``map`` by default,
    or an executor's map that runs shards on other workers.  The cache file is
    written here either way, so its content does not depend on the mapper.
    """
    folder = store_dir(audio_paths, spec)
    ids = np.asarray(ids, dtype=object)
    audio_paths = np.asarray(audio_paths, dtype=object)
    durations = np.array([d if d is not None and d == d else 0.0 for d in durations], dtype=float)
    old = None
    if (folder / "meta.json").exists() and (folder / FILE).exists():
        try:
            old = FeatureStore(folder)
        except InputError:  # unreadable or from an older layout: rebuilt below
            old = None
    cached = {str(u) for u, p in zip(ids, audio_paths, strict=True)
              if old is not None and u in old and old.audio_paths[u] == str(p)}
    if old is not None and len(cached) == len(ids):
        return old
    todo = np.array([i for i, u in enumerate(ids) if str(u) not in cached], dtype=int)
    keep = [] if old is None else [u for u in old.audio_paths if u not in set(map(str, ids))
                                   or u in cached]
    cap = max_seconds if max_seconds is not None else np.inf
    batches = [todo[b] for b in length_buckets(np.minimum(durations[todo], cap),
                                               spec.batch_seconds)]
    folder.mkdir(parents=True, exist_ok=True)
    total = len(keep) + len(todo)
    done = 0

    shard_paths = {int(i): str(audio_paths[i]) for i in todo}

    def extract(batch: np.ndarray) -> list[np.ndarray]:
        waves = [audio.load(shard_paths[int(i)], spec.sample_rate, max_seconds) for i in batch]
        return spec.extract(waves, device)

    def write(tmp: Path) -> None:
        nonlocal done
        with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, _SCHEMA) as writer:
            for start in range(0, len(keep), 256):  # clips already cached: copied, not recomputed
                part = keep[start:start + 256]
                writer.write_batch(_batch(part, [old.audio_paths[u] for u in part],
                                          [old.durations[u] for u in part],
                                          [old[u] for u in part]))
                done += len(part)
            for batch, feats in zip(batches, (mapper or map)(extract, batches), strict=True):
                writer.write_batch(_batch([str(ids[i]) for i in batch],
                                          [str(audio_paths[i]) for i in batch],
                                          [float(durations[i]) for i in batch], feats))
                done += len(batch)
                if progress is not None:
                    progress(done, total)

    atomic.write_with(folder / FILE, write)
    atomic.write_json(folder / "meta.json", {"spec": type(spec).__name__,
                                             "params": spec.params(), "n": total})
    return FeatureStore(folder)


def _batch(ids: list[str], paths: list[str], durations: list[float],
           feats: list[np.ndarray]) -> pa.RecordBatch:
    return pa.record_batch([
        pa.array(ids, pa.string()),
        pa.array(paths, pa.string()),
        pa.array(durations, pa.float64()),
        pa.array([list(f.shape) for f in feats], pa.list_(pa.int32())),
        pa.array([str(f.dtype) for f in feats], pa.string()),
        pa.array([np.ascontiguousarray(f).tobytes() for f in feats], pa.large_binary()),
    ], schema=_SCHEMA)
