"""The feature cache: one memory-mapped Arrow file per (task, feature spec).

Features are extracted once, in length-sorted batches (little padding), and
written to ``$SERBENCH_HOME/features/<task>-<fingerprint>/<spec key>/features.arrow``
through a temporary file renamed into place, so an interrupted extraction
leaves no half cache.  Reading maps the file and returns zero-copy numpy views,
so every cell, fold, rule and seed of a run shares one copy in the page cache.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa

from .. import atomic, audio, paths
from ..errors import InputError
from .specs import FeatureSpec

FILE = "features.arrow"
_SCHEMA = pa.schema([("utterance_id", pa.string()), ("shape", pa.list_(pa.int32())),
                     ("dtype", pa.string()), ("data", pa.large_binary())])


class FeatureStore:
    """Read-only mapping utterance id -> feature array, backed by a memory map."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            source = pa.memory_map(str(self.path / FILE), "r")
            self._table = pa.ipc.open_file(source).read_all()
        except (OSError, pa.ArrowException) as exc:
            raise InputError(f"unreadable feature cache: {exc}", file=self.path / FILE,
                             fix="delete the folder; it is rebuilt on the next run") from exc
        ids = self._table.column("utterance_id").to_pylist()
        self._index = {u: i for i, u in enumerate(ids)}
        self._shape = self._table.column("shape").to_pylist()
        self._dtype = self._table.column("dtype").to_pylist()
        self._data = self._table.column("data")
        self.meta = json.loads((self.path / "meta.json").read_text())

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


def store_dir(task_name: str, fingerprint: str, spec: FeatureSpec) -> Path:
    return paths.home() / "features" / f"{task_name}-{fingerprint[:12]}" / spec.key()


def build_store(
    task_name: str,
    fingerprint: str,
    ids: np.ndarray,
    audio_paths: np.ndarray,
    durations: np.ndarray,
    spec: FeatureSpec,
    *,
    device: str = "cpu",
    max_seconds: float | None = audio.DEFAULT_MAX_SECONDS,
    progress: Callable[[int, int], None] | None = None,
) -> FeatureStore:
    """Extract features of ``ids`` (with audio) unless the cache already holds them."""
    folder = store_dir(task_name, fingerprint, spec)
    if (folder / "meta.json").exists() and (folder / FILE).exists():
        store = FeatureStore(folder)
        if all(u in store for u in ids):
            return store
    durations = np.array([d if d == d and d is not None else 0.0 for d in durations], dtype=float)
    cap = max_seconds if max_seconds is not None else np.inf
    batches = length_buckets(np.minimum(durations, cap), spec.batch_seconds)
    folder.mkdir(parents=True, exist_ok=True)
    done = 0

    def write(tmp: Path) -> None:
        nonlocal done
        with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, _SCHEMA) as writer:
            for batch in batches:
                waves = [audio.load(audio_paths[i], spec.sample_rate, max_seconds) for i in batch]
                feats = spec.extract(waves, device)
                writer.write_batch(pa.record_batch([
                    pa.array([str(ids[i]) for i in batch], pa.string()),
                    pa.array([list(f.shape) for f in feats], pa.list_(pa.int32())),
                    pa.array([str(f.dtype) for f in feats], pa.string()),
                    pa.array([np.ascontiguousarray(f).tobytes() for f in feats],
                             pa.large_binary()),
                ], schema=_SCHEMA))
                done += len(batch)
                if progress is not None:
                    progress(done, len(ids))

    atomic.write_with(folder / FILE, write)
    atomic.write_json(folder / "meta.json", {"task": task_name, "fingerprint": fingerprint,
                                             "spec": type(spec).__name__,
                                             "params": spec.params(), "n": len(ids)})
    return FeatureStore(folder)
