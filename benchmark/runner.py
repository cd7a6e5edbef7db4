"""The grid runner: task x fold x training rule x seed, resumable, one record per cell.

Each cell seeds everything, builds a fresh submission, fits it on the cell's
training split (selecting on dev), predicts the fold's AR test clips (which
contain the MR and PR test sets) and writes the run record atomically.  A cell
whose record exists with the current task fingerprint is skipped, so a killed
run resumes where it stopped and loses at most the cell in flight.  A
submission that raises or returns bad probabilities fails its own cell, with
the reason saved beside it; the other cells go on.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import random
import subprocess
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__, atomic
from .errors import InputError, SerbenchError
from .features import FeatureSpec, build_store
from .records import RECORD, CellKey, write_cell
from .submission import Data, FitSpec, Submission
from .tasks.task import Task

PREDICT_BATCH = 64
SUM_TOLERANCE = 1e-4
ERROR_FILE = "error.txt"


@dataclass
class CellResult:
    key: CellKey
    status: str  # "done", "skipped" or "failed"
    message: str = ""
    seconds: float = 0.0


@dataclass
class RunResult:
    cells: list[CellResult] = field(default_factory=list)

    @property
    def failed(self) -> list[CellResult]:
        return [c for c in self.cells if c.status == "failed"]


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when a GPU is visible, else ``cpu``; refuse a missing GPU."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError("--device cuda asked for, but torch sees no GPU",
                         fix="use --device cpu or auto, or install a CUDA build of torch")
    if device not in ("cpu",) and not device.startswith("cuda"):
        raise InputError(f"unknown device {device!r}", fix="use auto, cpu or cuda[:N]")
    return device


def cell_seed(seed: int, fold: int, rule: str) -> int:
    return (seed * 1_000_003 + fold * 101 + {"MR": 1, "PR": 2, "AR": 3}.get(rule, 0)) % 2**31


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch, and ask torch for deterministic kernels."""
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "serbench": __version__}
    for pkg in ("numpy", "torch", "transformers", "scikit-learn"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[pkg] = metadata.version(pkg)
    return out


def _git_commit() -> str | None:
    try:
        res = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5, cwd=Path(__file__).resolve().parent)
        return res.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def feature_spec(sub: Submission) -> FeatureSpec | None:
    spec = getattr(sub, "feature_spec", None)
    return spec() if callable(spec) else sub.features


def check_probabilities(probs: Any, n: int, k: int) -> np.ndarray:
    """Validate a submission's output; raise ValueError saying what is wrong."""
    try:
        p = np.asarray(probs, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"predict_proba returned something that is not numeric: {exc}") from exc
    if p.shape != (n, k):
        raise ValueError(f"predict_proba returned shape {p.shape}, expected ({n}, {k})")
    if not np.isfinite(p).all():
        bad = int((~np.isfinite(p)).any(axis=1).sum())
        raise ValueError(f"predict_proba returned NaN or inf in {bad} rows")
    if (p < 0).any():
        raise ValueError("predict_proba returned negative probabilities")
    worst = float(np.abs(p.sum(axis=1) - 1.0).max()) if n else 0.0
    if worst > SUM_TOLERANCE:
        raise ValueError(f"predict_proba rows do not sum to 1 (worst off by {worst:.3g}); "
                         "return softmax probabilities")
    return p / p.sum(axis=1, keepdims=True)


class Runner:
    """Runs one submission on one task's grid."""

    def __init__(self, task: Task, submission: type[Submission],
                 config: dict[str, Any] | None = None, *, runs: str | Path,
                 device: str = "auto", allow_missing_audio: bool = False,
                 log: Callable[[str], None] | None = None, label: str | None = None) -> None:
        self.task = task
        self.cls = submission
        #: The name records and the leaderboard use: the plugin's name, or a variant
        #: label such as ``blstm-fc+kl+pen0.2`` when one plugin runs in several configurations.
        self.label = label or submission.name
        self.config = dict(config or {})
        self.runs = Path(runs)
        self.device = resolve_device(device)
        self.allow_missing_audio = allow_missing_audio
        self.log = log or (lambda _msg: None)
        meta = task.meta
        self.audio = {u: (p if isinstance(p, str) and p else None)
                      for u, p in zip(meta.index, meta["audio_path"], strict=True)}
        self.durations = dict(zip(meta.index, meta["duration"].astype(float), strict=True))
        self.store = None

    # ------------------------------------------------------------------ features

    def prepare_features(self, progress: Callable[[int, int], None] | None = None) -> None:
        spec = feature_spec(self.cls(**self.config))
        if spec is None:
            return
        ids = np.array([u for u, p in self.audio.items() if p is not None], dtype=object)
        if len(ids) == 0:
            raise InputError(f"task {self.task.spec.name} has no audio",
                             fix="prepare it from a source that includes the audio files")
        self.store = build_store(ids, np.array([self.audio[u] for u in ids], dtype=object),
                                 np.array([self.durations[u] for u in ids]), spec,
                                 device=self.device, progress=progress)

    # ------------------------------------------------------------------ data

    def _data(self, fold: int, split: str, rule: str, *,
              with_targets: bool) -> tuple[Data, list[str]]:
        s = self.task.split(fold, split, rule)
        has_audio = np.array([self.audio[u] is not None for u in s.ids], dtype=bool)
        missing = [str(u) for u in s.ids[~has_audio]]
        keep = has_audio if split != "test" else np.ones(len(s.ids), dtype=bool)
        ids = s.ids[keep]
        ratings = split_ratings = None  # test clips never see their ratings
        if split != "test":
            rated = self.task.ratings["utterance_id"]
            ratings = self.task.ratings[rated.isin(list(ids))]
            every = self.task.split(fold, split, "AR").ids
            split_ratings = self.task.ratings[rated.isin(list(every))]
        data = Data(ids=ids,
                    audio_paths=np.array([self.audio[u] for u in ids], dtype=object),
                    targets=s.targets[keep] if with_targets else np.zeros((0, self.task.spec.k)),
                    labels=s.labels[keep] if with_targets else np.zeros(0, dtype=int),
                    features=self.store, ratings=ratings, split_ratings=split_ratings)
        return data, missing

    # ------------------------------------------------------------------ cells

    def cells(self, folds: list[int] | None, rules: list[str] | None,
              seeds: list[int]) -> list[CellKey]:
        folds = folds or list(range(1, self.task.n_folds + 1))
        rules = rules or list(self.task.spec.rules)
        bad = [r for r in rules if r not in self.task.spec.rules]
        if bad or any(not 1 <= f <= self.task.n_folds for f in folds):
            raise InputError(f"folds {folds} / rules {rules} not in task {self.task.spec.name}",
                             fix=f"folds 1..{self.task.n_folds}, "
                                 f"rules {list(self.task.spec.rules)}")
        return [CellKey(self.task.spec.name, self.label, f, r, s)
                for s in seeds for r in rules for f in folds]

    def is_done(self, key: CellKey) -> bool:
        path = key.folder(self.runs) / RECORD
        if not path.exists():
            return False
        try:
            rec = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            return False
        if rec.get("task_fingerprint") != self.task.fingerprint["fingerprint"]:
            return False
        if not self._same_config(rec.get("config") or {}):
            theirs = json.dumps(rec.get("config"), sort_keys=True, default=str)
            raise InputError(
                f"{path} was run with another configuration of {self.cls.name} "
                f"({theirs}); resuming would mix two configurations under one name",
                file=path, fix="pass --name to record this configuration separately, "
                "or delete that run folder")
        return True

    def _same_config(self, recorded: dict[str, Any]) -> bool:
        """Same configuration, where an option the record predates counts as its default."""
        def norm(cfg: dict[str, Any]) -> dict[str, str]:
            return {k: json.dumps(v, sort_keys=True, default=str) for k, v in cfg.items()}

        mine, theirs = norm(self.cls(**self.config).config()), norm(recorded)
        defaults = norm(self.cls().config())
        return all(theirs.get(k, defaults.get(k)) == v for k, v in mine.items()) and \
            set(theirs) <= set(mine)

    def run_cell(self, key: CellKey, progress: Callable[..., None] | None = None) -> CellResult:
        folder = key.folder(self.runs)
        if self.is_done(key):
            return CellResult(key, "skipped", "already done")
        t0 = time.perf_counter()
        test, missing_test = self._data(key.fold, "test", "AR", with_targets=False)
        if missing_test and not self.allow_missing_audio:
            raise InputError(
                f"{len(missing_test)} test clip(s) of fold {key.fold} have no audio, e.g. "
                f"{missing_test[:5]}", fix="prepare the task with its audio, or pass "
                "--allow-missing-audio (they are then predicted uniform and the record lists them)")
        seed = cell_seed(key.seed, key.fold, key.train_rule)
        seed_everything(seed)
        amp = None
        if self.device.startswith("cuda"):
            import torch
            amp = "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
        spec = FitSpec(task=self.task.spec.name, classes=self.task.spec.classes, fold=key.fold,
                       train_rule=key.train_rule,
                       target_kind=self.cls.target_kinds.get(key.train_rule, "distribution"),
                       seed=seed, device=self.device, smoothing=self.task.spec.smoothing,
                       amp_dtype=amp, report=progress)
        try:
            sub = self.cls(**self.config)
            train, dropped_train = self._data(key.fold, "train", key.train_rule, with_targets=True)
            dev, dropped_dev = self._data(key.fold, "dev", key.train_rule, with_targets=True)
            t_fit = time.perf_counter()
            sub.fit(train, dev, spec)
            fit_s = time.perf_counter() - t_fit
            t_pred = time.perf_counter()
            k = self.task.spec.k
            probs = np.full((len(test), k), 1.0 / k)
            have = np.array([p is not None for p in test.audio_paths], dtype=bool)
            idx = np.flatnonzero(have)
            for start in range(0, len(idx), PREDICT_BATCH):
                part = idx[start:start + PREDICT_BATCH]
                probs[part] = check_probabilities(sub.predict_proba(test.take(part)), len(part), k)
            predict_s = time.perf_counter() - t_pred
        except SerbenchError:
            raise
        except Exception as exc:  # a submission's failure stays in its cell
            message = f"{type(exc).__name__}: {exc}"
            atomic.write_text(folder / ERROR_FILE, traceback.format_exc())
            return CellResult(key, "failed", message, time.perf_counter() - t0)
        record = {
            "task": key.task, "task_fingerprint": self.task.fingerprint["fingerprint"],
            "fold": key.fold, "train_rule": key.train_rule, "seed": key.seed,
            "submission": {"name": self.label, "plugin": self.cls.name,
                           "version": self.cls.version,
                           "class": f"{self.cls.__module__}.{self.cls.__qualname__}"},
            "config": sub.config(), "target_kind": spec.target_kind, "cell_seed": seed,
            "device": self.device, "amp_dtype": amp, "versions": _versions(),
            "git_commit": _git_commit(),
            "timings": {"fit_s": round(fit_s, 3), "predict_s": round(predict_s, 3)},
            "n": {"train": len(train), "dev": len(dev), "test": len(test)},
            "dropped_without_audio": {"train": len(dropped_train), "dev": len(dropped_dev)},
            "missing_audio_test": missing_test,
        }
        write_cell(folder, record, test.ids, probs, self.task.spec.classes)
        (folder / ERROR_FILE).unlink(missing_ok=True)
        return CellResult(key, "done", "", time.perf_counter() - t0)
