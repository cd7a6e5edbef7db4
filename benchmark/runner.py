"""The grid runner: task x fold x training rule x seed, resumable, one record per cell.

Each cell seeds everything, builds a fresh submission, fits it on the cell's
training split (selecting on dev), predicts the fold's AR test clips (which
contain the MR and PR test sets) and writes the run record atomically.  A cell
whose record exists with the current task fingerprint is skipped, so a killed
run resumes where it stopped and loses at most the cell in flight.  A
submission that raises, returns bad probabilities or runs past the cell time
limit fails its own cell, with the reason saved beside it; the other cells go
on.  A cell is computed (:meth:`Runner.compute_cell`) apart from being written
(:meth:`Runner.commit`), so that an executor can compute cells on other
machines and write every record from the driver.
"""

from __future__ import annotations

import contextlib
import json
import time
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import atomic, checkpoints, isolation, params, paths, provenance
from .cell import (
    BUSY,
    ERROR_FILE,
    CellLock,
    CellOutput,
    CellResult,
    CellTimeout,
    alarm_limit,
)
from .determinism import cell_seed, default_determinism, seed_everything
from .devices import cuda_initialised, resolve_device
from .errors import InputError, SerbenchError, SerbenchWarning
from .features import FeatureSpec, build_store
from .metrics import normalise
from .outputs import check_probabilities, check_rater_probabilities
from .rater_eval import fold_votes, min_votes, rater_pairs
from .records import RECORD, CellKey, read_predictions, read_record, write_cell
from .submission import RULE_TARGET, Data, FitSpec, Submission
from .tasks.task import Task

PREDICT_BATCH = 64


@contextlib.contextmanager
def recorded_warnings(show: bool = True) -> Iterator[list[str]]:
    """Collect the :class:`SerbenchWarning` messages raised inside (each once), for the record.

    Every warning is still shown as usual once the block ends; with ``show=False`` the
    serbench ones are not (a cell computed in a forked child: :meth:`Runner.commit` warns
    with them in the parent, where they can be shown once for the whole grid).
    """
    notes: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SerbenchWarning)
        yield notes
    for w in caught:
        ours = issubclass(w.category, SerbenchWarning)
        if ours and str(w.message) not in notes:
            notes.append(str(w.message))
        if show or not ours:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)


def feature_spec(sub: Submission) -> FeatureSpec | None:
    """The feature spec of a configured submission (None: it reads raw audio paths)."""
    spec: FeatureSpec | None = sub.feature_spec()
    return spec


class Runner:
    """Runs one submission on one task's grid: it owns claiming, computing and writing a cell.

    Every executor goes through the same three steps per cell:
    :meth:`claim` (is it done? take its lock; is it done now?), :meth:`compute_cell`
    (here or on a worker; writes nothing) and :meth:`commit` (writes the record,
    here).  ``device`` is the concrete device the cells run on (``auto`` is resolved
    here); an executor that runs cells elsewhere passes the device its workers
    have, see :meth:`serbench.executors.Executor.device`.
    """

    def __init__(self, task: Task, submission: type[Submission],
                 config: dict[str, Any] | None = None, *, runs: str | Path,
                 device: str = "auto", allow_missing_audio: bool = False,
                 log: Callable[[str], None] | None = None, label: str | None = None,
                 cell_timeout: float | None = None, save_models: bool = False,
                 load_models: str | Path | None = None,
                 deterministic: bool | None = None) -> None:
        self.task = task
        self.cls = submission
        if submission.outputs not in ("distribution", "independent"):
            raise InputError(f"submission {submission.name!r} declares outputs = "
                             f"{submission.outputs!r}",
                             fix='use outputs = "distribution" or "independent"')
        #: The name records and the leaderboard use: the plugin's name, or a variant
        #: label such as ``blstm-fc+kl+pen0.2`` when one plugin runs in several configurations.
        self.label = label or submission.name
        #: The options given, checked against the submission's declaration.
        self.config = params.validate_config(submission, dict(config or {}))
        self.runs = Path(runs)
        self.device = resolve_device(device) if device == "auto" else device
        #: Bit-reproducible kernels (slower); None: deterministic on CPU, fast on GPU.
        self.deterministic = (default_determinism(self.device) if deterministic is None
                              else bool(deterministic))
        self.allow_missing_audio = allow_missing_audio
        if cell_timeout is not None and not cell_timeout > 0:
            raise InputError(f"--cell-timeout must be a positive number of seconds, not "
                             f"{cell_timeout}", fix="e.g. --cell-timeout 1800, or leave it out "
                                                    "for no limit")
        #: Seconds a cell may take before it is killed and recorded as failed (None: no limit).
        self.cell_timeout = cell_timeout
        #: Save each fitted model as ``model.safetensors`` in its cell folder.
        self.save_models = save_models
        #: A runs folder whose saved models are loaded instead of training.
        self.load_models = None if load_models is None else Path(load_models)
        if (save_models or load_models is not None) and not submission.checkpoints():
            raise InputError(f"submission {submission.name} cannot save or load models",
                             fix="implement checkpoint() and restore() (see serbench.submission)"
                                 ", or drop --save-models / --load-models")
        self.log = log or (lambda _msg: None)
        probe = self._construct()  # once per grid: the recorded config and the feature spec
        self.recorded_config = probe.config()
        self.feature_spec = feature_spec(probe)
        meta = task.meta
        self.audio = {u: (p if isinstance(p, str) and p else None)
                      for u, p in zip(meta.index, meta["audio_path"], strict=True)}
        self.durations = dict(zip(meta.index, meta["duration"].astype(float), strict=True))
        self.store: Any = None
        #: Cells whose record exists but whose predictions are broken: key -> why.
        self.broken: dict[CellKey, str] = {}

    def _construct(self) -> Submission:
        """A fresh submission with this grid's configuration; a refused value is exit 2."""
        try:
            return self.cls(**self.config)
        except (TypeError, ValueError) as exc:
            raise InputError(f"{self.cls.name} refused its configuration "
                             f"{json.dumps(self.config, sort_keys=True, default=str)}: {exc}",
                             fix="check the --config values against the submission's "
                                 "docstring") from exc

    # ------------------------------------------------------------------ features

    def prepare_features(self, progress: Callable[[int, int], None] | None = None,
                         mapper: Callable[..., Iterator[Any]] | None = None) -> None:
        """Build (or reuse) the feature cache; ``mapper`` spreads extraction (e.g. over Ray)."""
        spec = self.feature_spec
        if spec is None:
            return
        ids = np.array([u for u, p in self.audio.items() if p is not None], dtype=object)
        if len(ids) == 0:
            raise InputError(f"task {self.task.spec.name} has no audio",
                             fix="prepare it from a source that includes the audio files")
        self.store = build_store(ids, np.array([self.audio[u] for u in ids], dtype=object),
                                 np.array([self.durations[u] for u in ids]), spec,
                                 device=self.device, progress=progress, mapper=mapper,
                                 log=self.log)  # names changed clips

    # ------------------------------------------------------------------ data

    def data(self, fold: int, split: str, rule: str, *,
             with_targets: bool = True) -> tuple[Data, list[str]]:
        """The :class:`Data` a cell's submission sees for one split, and the clips left out.

        Train and dev clips without audio are left out (and listed); test clips
        are all kept (a clip without audio is predicted uniform under
        ``--allow-missing-audio``) and never carry their ratings.
        """
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
                    features=self.store, ratings=ratings, split_ratings=split_ratings,
                    groups=self.task.meta[["speaker_id", "session"]])
        return data, missing

    # ------------------------------------------------------------------ cells

    def cells(self, folds: list[int] | None, rules: list[str] | None,
              seeds: list[int]) -> list[CellKey]:
        name = self.task.spec.name
        folds = list(dict.fromkeys(folds or range(1, self.task.n_folds + 1)))  # no duplicates
        rules = list(dict.fromkeys(rules or self.task.spec.rules))
        seeds = list(dict.fromkeys(seeds))
        bad_folds = [f for f in folds if not 1 <= f <= self.task.n_folds]
        if bad_folds:
            raise InputError(f"--folds {bad_folds}: task {name} has folds 1..{self.task.n_folds}",
                             fix=f"e.g. --folds 1,2 (or leave it out for all {self.task.n_folds})")
        bad_rules = [r for r in rules if r not in self.task.spec.rules]
        if bad_rules:
            raise InputError(f"--rules {bad_rules}: task {name} trains on "
                             f"{', '.join(self.task.spec.rules)} (upper case)",
                             fix=f"e.g. --rules {','.join(self.task.spec.rules)}")
        if not seeds or any(s < 0 for s in seeds):
            raise InputError(f"seeds {seeds}: give one or more non-negative integers",
                             fix="e.g. --seeds 0,1,2")
        return [CellKey(name, self.label, f, r, s) for s in seeds for r in rules for f in folds]

    def is_done(self, key: CellKey) -> bool:
        """True when the cell has a record of this task and configuration with sound predictions.

        A record whose prediction file is missing or broken is not done: the
        cell is computed again, and :attr:`broken` says why.
        """
        path = key.folder(self.runs) / RECORD
        if not path.exists():
            return False
        try:
            rec = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            self.broken[key] = f"its record was unreadable ({type(exc).__name__}: {exc})"
            return False
        if not isinstance(rec, dict):
            self.broken[key] = f"its record was unreadable (a JSON {type(rec).__name__}, " \
                               "not an object)"
            return False
        if rec.get("task_fingerprint") != self.task.fingerprint["fingerprint"]:
            return False
        if not isinstance(rec.get("config") or {}, dict):
            self.broken[key] = "its record's config was not a mapping"
            return False
        diff = self._config_diff(rec.get("config") or {})
        if diff:
            raise InputError(
                f"this cell was run with another configuration of {self.cls.name} "
                f"({'; '.join(diff)}); resuming would mix two configurations under one name",
                file=path, fix="pass --name to record this configuration separately, "
                "or delete that run folder")
        try:
            record = read_record(path)
        except InputError as exc:
            self.broken[key] = f"its record was unreadable ({exc.problem})"
            return False
        try:
            read_predictions(record.predictions_path, self.task.spec.classes,
                             self.task.split(key.fold, "test", "AR").ids)
        except InputError as exc:
            self.broken[key] = f"its predictions were broken ({exc.problem})"
            return False
        self.broken.pop(key, None)
        return True

    def _same_config(self, recorded: dict[str, Any]) -> bool:
        """Same configuration, where an option the record predates counts as its default."""
        return not self._config_diff(recorded)

    def _config_diff(self, recorded: dict[str, Any]) -> list[str]:
        """``option: recorded X, now Y`` for every option where ``recorded`` differs from this
        grid's configuration (an option the record predates counts as its default)."""
        def norm(cfg: dict[str, Any]) -> dict[str, str]:
            return {k: json.dumps(v, sort_keys=True, default=str) for k, v in cfg.items()}

        mine, theirs = norm(self.recorded_config), norm(recorded)
        defaults = norm(params.defaults(self.cls))
        declared = params.declared(self.cls)

        def same(key: str, value: str) -> bool:
            if key in theirs:
                return theirs[key] == value
            if declared is not None and key not in declared:
                return True  # derived from the declared options (e.g. ``transductive``)
            return defaults.get(key) == value

        diff = [f"{k}: recorded {theirs.get(k, defaults.get(k, '(absent)'))}, now {v}"
                for k, v in sorted(mine.items()) if not same(k, v)]
        return diff + [f"{k}: recorded {theirs[k]}, not an option now"
                       for k in sorted(set(theirs) - set(mine))]

    def claim(self, key: CellKey) -> CellLock | CellResult:
        """The cell's lock when it is to be computed, else why not (a skipped result).

        Checks again after taking the lock: another run may have finished the
        cell between the first check and the lock.  Every executor claims
        through here.
        """
        if self.is_done(key):
            return CellResult(key, "skipped", "already done")
        lock = CellLock(key.folder(self.runs))
        if not lock.acquire():
            return CellResult(key, "skipped", BUSY)
        if self.is_done(key):
            lock.release()
            return CellResult(key, "skipped", "already done")
        return lock

    def run_cell(self, key: CellKey, progress: Callable[..., None] | None = None) -> CellResult:
        """Claim, compute and write one cell, unless it is done or another run holds it."""
        claimed = self.claim(key)
        if isinstance(claimed, CellResult):
            return claimed
        try:
            return self.commit(self.compute_limited(key, progress))
        finally:
            claimed.release()

    def compute_limited(self, key: CellKey,
                        progress: Callable[..., None] | None = None) -> CellOutput:
        """:meth:`compute_cell` under the cell time limit: in a child process that is killed."""
        if self.cell_timeout is None:
            return self.compute_cell(key, progress)
        if self.device.startswith("cuda") and cuda_initialised():
            with alarm_limit(self.cell_timeout):
                return self.compute_cell(key, progress)
        t0 = time.perf_counter()
        try:
            out: CellOutput = isolation.call_with_deadline(
                lambda report: self.compute_cell(key, report if progress else None),
                self.cell_timeout, on_progress=progress)
            return out
        except isolation.Killed as exc:
            kind = "CellTimeout" if isinstance(exc, isolation.TimedOut) else "CellDied"
            return CellOutput(key, error=str(exc), message=f"{kind}: {exc}",
                              seconds=time.perf_counter() - t0)

    def compute_cell(self, key: CellKey,
                     progress: Callable[..., None] | None = None) -> CellOutput:
        """Fit and predict one cell; write nothing (executors on other machines call this)."""
        t0 = time.perf_counter()
        test, missing_test = self.data(key.fold, "test", "AR", with_targets=False)
        if missing_test and not self.allow_missing_audio:
            raise InputError(
                f"{len(missing_test)} test clip(s) of fold {key.fold} have no audio, e.g. "
                f"{missing_test[:5]}", fix="prepare the task with its audio, or pass "
                "--allow-missing-audio (they are then predicted uniform and the record lists them)")
        seed = cell_seed(key.seed, key.fold, key.train_rule)
        seed_everything(seed, self.deterministic)
        amp = None
        if self.device.startswith("cuda"):
            import torch
            amp = "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
        spec = FitSpec(task=self.task.spec.name, classes=self.task.spec.classes, fold=key.fold,
                       train_rule=key.train_rule,
                       target_kind=self.cls.target_kinds.get(
                           key.train_rule, RULE_TARGET.get(key.train_rule, "distribution")),
                       seed=seed, device=self.device, smoothing=self.task.spec.smoothing,
                       amp_dtype=amp, report=progress)
        try:
            sub = self._construct()
            train, dropped_train = self.data(key.fold, "train", key.train_rule)
            dev, dropped_dev = self.data(key.fold, "dev", key.train_rule)
            t_fit = time.perf_counter()
            loaded = None
            notes: list[str] = []
            if self.load_models is not None:
                tensors, loaded = self._saved_model(key)
                sub.restore(tensors, spec, self.store)
            else:
                with recorded_warnings(show=False) as notes:
                    sub.fit(train, dev, spec)
            fit_s = time.perf_counter() - t_fit
            t_pred = time.perf_counter()
            k = self.task.spec.k
            probs = np.full((len(test), k), 1.0 / k)
            have = np.array([p is not None for p in test.audio_paths], dtype=bool)
            idx = np.flatnonzero(have)
            for start in range(0, len(idx), PREDICT_BATCH):
                part = idx[start:start + PREDICT_BATCH]
                probs[part] = check_probabilities(
                    sub.predict_proba(test.take(part)), len(part), k,
                    independent=self.cls.outputs == "independent")
            rater = (self._rater_predictions(sub, key.fold, test, probs, idx)
                     if self.cls.predicts_raters() else None)
            predict_s = time.perf_counter() - t_pred
            coverage = {"test": fold_votes(self.task, key.fold).coverage(min_votes(self.task)),
                        "rater_predictions": rater is not None,
                        "model": sub.rater_coverage()}
            ckpt = None
            if self.save_models:
                ckpt = checkpoints.to_bytes(sub.checkpoint(), {
                    "task": key.task, "fold": key.fold, "train_rule": key.train_rule,
                    "seed": key.seed, "submission": self.label, "config": sub.config(),
                    "task_fingerprint": self.task.fingerprint["fingerprint"]})
        except SerbenchError:
            raise
        except (Exception, CellTimeout) as exc:  # a submission's failure stays in its cell
            return CellOutput(key, error=traceback.format_exc(),
                              message=f"{type(exc).__name__}: {exc}",
                              seconds=time.perf_counter() - t0)
        record = {
            "task": key.task, "task_fingerprint": self.task.fingerprint["fingerprint"],
            "fold": key.fold, "train_rule": key.train_rule, "seed": key.seed,
            "submission": {"name": self.label, "plugin": self.cls.name,
                           "version": self.cls.version,
                           "class": f"{self.cls.__module__}.{self.cls.__qualname__}"},
            "config": sub.config(), "target_kind": spec.target_kind, "cell_seed": seed,
            "outputs": self.cls.outputs,  # "distribution" or "independent"
            "device": self.device, "amp_dtype": amp, "versions": provenance.versions(),
            "deterministic": self.deterministic,
            "threads": provenance.threads(),
            "git_commit": provenance.git_commit(),
            "timings": {"fit_s": round(fit_s, 3), "predict_s": round(predict_s, 3)},
            "n": {"train": len(train), "dev": len(dev), "test": len(test)},
            "dropped_without_audio": {"train": len(dropped_train), "dev": len(dropped_dev)},
            "missing_audio_test": missing_test,
            # what the rater-level metrics cover on the AR test clips (docs/methods.md#rater-eval)
            "rater_coverage": coverage,
        }
        if loaded is not None:
            record["loaded_from"] = loaded
        if notes:
            record["warnings"] = notes
        return CellOutput(key, record=record, ids=test.ids, probs=probs, checkpoint=ckpt,
                          rater=rater, seconds=time.perf_counter() - t0)

    def _rater_predictions(self, sub: Submission, fold: int, test: Data, probs: np.ndarray,
                           idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``predict_rater_proba`` for every (test clip, rater) pair of the fold's votes.

        Asked batch by batch, for the raters who voted on a clip of the batch; each
        output is checked (shape, finite, rows summing to 1) and a defect fails the
        cell.  Pairs on clips without audio get the clip's (uniform) row.
        """
        k = self.task.spec.k
        pair_ids, pair_raters = rater_pairs(self.task, fold)
        pos = {u: i for i, u in enumerate(test.ids)}
        clip_of = np.array([pos[u] for u in pair_ids], dtype=np.int64)
        out = normalise(probs)[clip_of] if len(clip_of) else np.zeros((0, k))
        for start in range(0, len(idx), PREDICT_BATCH):
            part = idx[start:start + PREDICT_BATCH]
            row_of = {int(c): i for i, c in enumerate(part)}
            here = np.flatnonzero(np.isin(clip_of, part))
            if not len(here):
                continue
            raters = sorted({str(r) for r in pair_raters[here]})
            col_of = {r: j for j, r in enumerate(raters)}
            got = check_rater_probabilities(sub.predict_rater_proba(test.take(part), raters),
                                            len(part), len(raters), k)
            out[here] = got[[row_of[int(c)] for c in clip_of[here]],
                            [col_of[str(r)] for r in pair_raters[here]]]
        return pair_ids, pair_raters, out

    def saved_model(self, key: CellKey) -> tuple[Path, str, str]:
        """Where the model saved for ``key`` under ``load_models`` is: (file, sha256, record).

        Checks the record only (the tensors are read by :meth:`_saved_model`), so that
        every cell of a grid can be checked before the first one runs
        (:meth:`check_saved_models`).  Each way a cell can lack a usable model is one
        message naming the cell and the way to get one saved.
        """
        assert self.load_models is not None
        folder = key.folder(self.load_models)
        rec_path = folder / RECORD
        cell = (f"fold {key.fold} {key.train_rule} seed {key.seed} of {key.task}/"
                f"{key.submission}")
        how = (f"train it with --save-models into a new folder (serbench run --task {key.task} "
               f"--submission ... --save-models --runs NEW_DIR, the same --config), then pass "
               "--load-models NEW_DIR")
        if not rec_path.exists():
            raise InputError(f"--load-models {self.load_models}: no run record for {cell}",
                             file=rec_path, fix=f"point --load-models at the --runs folder of "
                                                f"a run made with --save-models, or {how}")
        try:
            rec = json.loads(rec_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(f"unreadable run record of {cell} ({type(exc).__name__}: {exc})",
                             file=rec_path, fix=how) from None
        saved = rec.get("checkpoint") if isinstance(rec, dict) else None
        if saved is None:
            raise InputError(f"{cell} has no saved model: its run was made without "
                             "--save-models", file=rec_path,
                             fix=f"{how} (a rerun into the same folder keeps its recorded "
                                 "cells, so it saves nothing)")
        if not isinstance(saved, dict) or not isinstance(saved.get("file"), str) or \
                not isinstance(saved.get("sha256"), str):
            raise InputError(f"the run record of {cell} has a broken 'checkpoint' entry "
                             f"({json.dumps(saved, default=str)[:80]}), not "
                             "{file, sha256}", file=rec_path, fix=how)
        if rec.get("task_fingerprint") != self.task.fingerprint["fingerprint"]:
            raise InputError(f"the saved model of {cell} was trained on another version of "
                             "the task", file=rec_path,
                             fix="retrain with --save-models on this task")
        diff = self._config_diff(rec.get("config") or {}) \
            if isinstance(rec.get("config") or {}, dict) else ["the recorded config is broken"]
        if diff:
            raise InputError(f"the saved model of {cell} was trained with another "
                             f"configuration ({'; '.join(diff)})",
                             file=rec_path, fix="pass the same --config options as the saved "
                                                "run")
        path = paths.confined(folder, saved["file"], what="checkpoint file", file=rec_path)
        if not path.is_file():
            raise InputError(f"the saved model of {cell} is missing ({saved['file']} is not in "
                             "its folder)", file=rec_path, fix=how)
        return path, saved["sha256"], str(rec_path)

    def check_saved_models(self, keys: Sequence[CellKey]) -> None:
        """Under ``load_models``, refuse (exit 2) before any cell runs when a cell to run has no
        usable saved model: the grid stops at once instead of after the cells before it."""
        if self.load_models is None:
            return
        if not self.load_models.is_dir():
            given = f"--load-models {self.load_models}"
            raise InputError(f"{given} is a file, not a folder" if self.load_models.exists()
                             else f"{given}: no such folder",
                             fix="pass the --runs folder of an earlier run made with "
                                 "--save-models")
        for key in keys:
            if not self.is_done(key):
                self.saved_model(key)

    def _saved_model(self, key: CellKey) -> tuple[dict[str, Any], dict[str, str]]:
        """The checkpoint saved for this cell under ``load_models``, checked against its record."""
        path, sha, _record = self.saved_model(key)
        tensors, _meta = checkpoints.read(path, sha256=sha)
        return tensors, {"path": str(path), "sha256": sha}

    def commit(self, out: CellOutput) -> CellResult:
        """Write a computed cell: its record and predictions, or its traceback."""
        folder = out.key.folder(self.runs)
        if out.record is None:
            try:
                atomic.write_text(folder / ERROR_FILE, out.error or out.message)
            except OSError as exc:
                raise InputError(f"could not write the failed cell's {ERROR_FILE}: {exc}",
                                 file=folder, fix="make the results folder writable (or pass "
                                 "--runs DIR), then rerun") from exc
            return CellResult(out.key, "failed", out.message, out.seconds)
        record = out.record
        assert out.ids is not None and out.probs is not None
        if out.checkpoint is not None:
            sha = checkpoints.write(folder / checkpoints.FILE, out.checkpoint)
            record = {**record, "checkpoint": {"file": checkpoints.FILE, "sha256": sha}}
        write_cell(folder, record, out.ids, out.probs, self.task.spec.classes, out.rater)
        (folder / ERROR_FILE).unlink(missing_ok=True)
        for note in record.get("warnings", []):  # recorded in the cell, shown here
            warnings.warn(SerbenchWarning(note), stacklevel=2)
        why = self.broken.pop(out.key, None)
        return CellResult(out.key, "done", f"recomputed: {why}" if why else "", out.seconds)
