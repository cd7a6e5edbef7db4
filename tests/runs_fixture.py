"""Write run records for tests (what the runner will write), from simple predictors."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from serbench.records import CellKey, write_cell
from serbench.tasks.task import Task


def prior(task: Task, fold: int, train_rule: str, seed: int, ids: np.ndarray) -> np.ndarray:
    """The mean training target of the fold, for every clip (a chance-level reference)."""
    mean = task.split(fold, "train", train_rule).targets.mean(axis=0)
    return np.tile(mean / mean.sum(), (len(ids), 1))


def noisy_oracle(task: Task, fold: int, train_rule: str, seed: int, ids: np.ndarray) -> np.ndarray:
    """The AR test distribution mixed with seeded Dirichlet noise (a strong fake system)."""
    y = task.split(fold, "test", "AR").targets
    rng = np.random.default_rng([seed, fold, len(train_rule)])
    noise = rng.dirichlet(np.ones(task.spec.k), size=len(y))
    return 0.6 * y + 0.4 * noise


def make_runs(task: Task, runs: Path, submission: str, predictor, *, rules=("MR", "PR", "AR"),
              folds=None, seeds=(0,), config=None, plugin=None) -> list[Path]:
    out = []
    for seed in seeds:
        for rule in rules:
            for fold in folds or range(1, task.n_folds + 1):
                ids = task.split(fold, "test", "AR").ids
                probs = predictor(task, fold, rule, seed, ids)
                key = CellKey(task.spec.name, submission, fold, rule, seed)
                record = {"task": task.spec.name,
                          "task_fingerprint": task.fingerprint["fingerprint"],
                          "fold": fold, "train_rule": rule, "seed": seed,
                          "submission": {"name": submission, "version": "0.1",
                                         **({"plugin": plugin} if plugin else {})},
                          "config": dict(config or {}),
                          "timings": {"fit_s": 0.0, "predict_s": 0.0}}
                out.append(write_cell(key.folder(runs), record, ids, probs, task.spec.classes))
    return out
