"""Score run cells on every test rule, aggregate over folds and seeds, compare submissions.

One prediction pass over a fold's AR test set serves all three test rules
(Test(MR) is a subset of Test(PR), itself a subset of Test(AR)).  Single-label
metrics need a consensus class, so they are scored on the MR and PR test sets
only; multi-label and distribution metrics on all three.  Targets are the
task's unsmoothed targets (smoothing does not move the 1/K threshold).

Bootstrap resamples are seeded by (seed, fold, test rule), so every submission
scored on the same cell sees the same resamples: intervals are comparable and
differences are paired.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats as sps

from . import bootstrap as bs
from . import metrics as M
from .errors import InputError
from .records import CellKey, Record, read_predictions
from .tasks.task import Task

RULE_SEED = {"MR": 1, "PR": 2, "AR": 3}


def applicable(metric: str, test_rule: str) -> bool:
    return not (M.METRICS[metric].kind == "single" and test_rule == "AR")


@dataclass
class CellScores:
    """Scores of one run cell on each test rule."""

    key: CellKey
    n: dict[str, int]
    point: dict[str, dict[str, float | None]]
    samples: dict[str, dict[str, np.ndarray]] = field(repr=False)
    per_class_f1: dict[str, list[float]]
    confusion: dict[str, list[list[int]]]

    def interval(self, test_rule: str, metric: str, level: float = 0.95) -> tuple[float, float]:
        s = self.samples.get(test_rule, {}).get(metric)
        return bs.percentile_interval(s, level) if s is not None else (float("nan"),) * 2

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"task": self.key.task, "submission": self.key.submission,
                               "fold": self.key.fold, "train_rule": self.key.train_rule,
                               "seed": self.key.seed, "test": {}}
        for rule, values in self.point.items():
            out["test"][rule] = {
                "n": self.n[rule],
                "metrics": {m: (None if v is None else round(v, 6)) for m, v in values.items()},
                "ci95": {m: [round(x, 6) for x in self.interval(rule, m)]
                         for m, v in values.items() if v is not None},
                "per_class_f1": [round(x, 6) for x in self.per_class_f1[rule]],
            }
        return out


def load_probs(task: Task, record: Record) -> tuple[np.ndarray, np.ndarray]:
    """AR test ids of the record's fold and the validated probabilities aligned with them."""
    d = record.data
    fp = task.fingerprint["fingerprint"]
    if d["task"] != task.spec.name:
        raise InputError(f"record is for task {d['task']!r}, not {task.spec.name!r}",
                         file=record.path)
    if d["task_fingerprint"] != fp:
        raise InputError(
            f"record was made on task fingerprint {d['task_fingerprint'][:12]}, the prepared "
            f"task is {fp[:12]}: its clips or targets differ", file=record.path,
            fix="rerun this cell on the current task, or prepare the task from the source the "
                "record was made on")
    if not 1 <= d["fold"] <= task.n_folds or d["train_rule"] not in task.spec.rules:
        raise InputError(f"fold {d['fold']} / rule {d['train_rule']!r} not in task "
                         f"{task.spec.name}", file=record.path)
    ids = task.split(d["fold"], "test", "AR").ids
    return ids, read_predictions(record.predictions_path, task.spec.classes, ids)


def score_test_set(names: list[str], targets: np.ndarray, probs: np.ndarray,
                   labels: np.ndarray | None, *, n_resamples: int, seed: int | tuple[int, ...],
                   double_softmax: bool = False
                   ) -> tuple[dict[str, float | None], dict[str, np.ndarray]]:
    """Point scores and bootstrap samples of ``names`` on one test set.

    The statistics of every metric family are stacked so that one set of
    resamples serves all metrics: drawn once, summed once.
    """
    k = probs.shape[1]
    kinds = sorted({M.METRICS[m].kind for m in names})
    blocks = [M.statistics(kind, targets, probs, labels, double_softmax=double_softmax)
              for kind in kinds]
    boot = (bs.resampled_sums(np.hstack(blocks), n_resamples, seed)
            if n_resamples and blocks and len(targets) else None)
    summed_point, summed_boot, start = {}, {}, 0
    for kind, block in zip(kinds, blocks, strict=True):
        summed_point[kind] = block.sum(axis=0)
        if boot is not None:
            summed_boot[kind] = boot[:, start:start + block.shape[1]]
        start += block.shape[1]
    point: dict[str, float | None] = {}
    samples: dict[str, np.ndarray] = {}
    for m in names:
        kind = M.METRICS[m].kind
        point[m] = float(M.finalize(m, summed_point[kind], k))
        if kind in summed_boot:
            samples[m] = M.finalize(m, summed_boot[kind], k)
    return point, samples


def score_probs(task: Task, key: CellKey, ids: np.ndarray, probs: np.ndarray, *,
                metrics: tuple[str, ...] | None = None, n_resamples: int = bs.DEFAULT_RESAMPLES,
                seed: int = 0, double_softmax: bool = False) -> CellScores:
    metrics = metrics or task.spec.metrics
    k = task.spec.k
    pos = {u: i for i, u in enumerate(ids)}
    n, point, samples, f1s, conf = {}, {}, {}, {}, {}
    for rule in task.spec.rules:
        split = task.split(key.fold, "test", rule)
        p = probs[[pos[u] for u in split.ids]]
        n[rule] = len(split)
        names = [m for m in metrics if applicable(m, rule)] if len(split) else []
        scored, samples[rule] = score_test_set(
            names, split.targets, p, split.labels, n_resamples=n_resamples,
            seed=(seed, key.fold, RULE_SEED[rule]), double_softmax=double_softmax)
        point[rule] = {m: scored.get(m) for m in metrics}  # None where not applicable
        f1s[rule] = M.per_class_f1(split.targets, p).tolist() if len(split) else [0.0] * k
        if rule != "AR":
            conf[rule] = M.confusion(split.labels, p).tolist()
    return CellScores(key, n, point, samples, f1s, conf)


def score_record(task: Task, record: Record, **kwargs: Any) -> CellScores:
    ids, probs = load_probs(task, record)
    return score_probs(task, record.key, ids, probs, **kwargs)


# ----------------------------------------------------------------------------- aggregation


@dataclass
class Aggregate:
    """Mean and spread over folds and seeds of one (task, submission)."""

    task: str
    submission: str
    n_folds: int
    seeds: list[int]
    complete: dict[str, bool]  # per training rule: every fold of every seed present
    folds_done: dict[str, int]
    mean: dict[tuple[str, str, str], float]  # (train rule, test rule, metric)
    std: dict[tuple[str, str, str], float]
    ci: dict[tuple[str, str, str], tuple[float, float]]
    per_class_f1: dict[tuple[str, str], list[float]]
    confusion: dict[tuple[str, str], list[list[int]]]


def aggregate(task: Task, cells: list[CellScores]) -> Aggregate:
    """Average cells over folds and seeds; a training rule missing any fold is incomplete.

    The interval of a mean over folds takes, per resample index, the mean of
    the folds' resampled scores (a bootstrap stratified by fold).
    """
    if not cells:
        raise ValueError("no cells to aggregate")
    sub = cells[0].key.submission
    seeds = sorted({c.key.seed for c in cells})
    by_rule: dict[str, list[CellScores]] = defaultdict(list)
    for c in cells:
        by_rule[c.key.train_rule].append(c)
    complete, done = {}, {}
    mean, std, ci, f1, conf = {}, {}, {}, {}, {}
    for train in task.spec.rules:
        group = sorted(by_rule.get(train, []), key=lambda c: (c.key.seed, c.key.fold))
        have = {(c.key.seed, c.key.fold) for c in group}
        need = {(s, f) for s in seeds for f in range(1, task.n_folds + 1)}
        complete[train] = need <= have
        done[train] = len({f for _, f in have})
        if not complete[train]:
            continue
        for test in task.spec.rules:
            for m in task.spec.metrics:
                vals = [c.point[test][m] for c in group]
                if any(v is None for v in vals):
                    continue
                mean[(train, test, m)] = float(np.mean(vals))
                std[(train, test, m)] = float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0
                boots = [c.samples[test].get(m) for c in group]
                if all(b is not None for b in boots):
                    ci[(train, test, m)] = bs.percentile_interval(np.mean(boots, axis=0))
            f1[(train, test)] = np.mean([c.per_class_f1[test] for c in group], axis=0).tolist()
            if test != "AR":
                conf[(train, test)] = np.sum([c.confusion[test] for c in group], axis=0).tolist()
    return Aggregate(task.spec.name, sub, task.n_folds, seeds, complete, done, mean, std, ci,
                     f1, conf)


# ----------------------------------------------------------------------------- comparison


@dataclass
class Comparison:
    metric: str
    train_rule: str
    test_rule: str
    cells: int
    mean_a: float
    mean_b: float
    diff: float
    diff_ci: tuple[float, float]
    p_bootstrap: float
    t_subsets: float
    p_subsets: float
    n_subsets: int


def compare(task: Task, a: list[tuple[CellKey, np.ndarray, np.ndarray]],
            b: list[tuple[CellKey, np.ndarray, np.ndarray]], *, metric: str, train_rule: str,
            test_rule: str, n_resamples: int = bs.DEFAULT_RESAMPLES, seed: int = 0,
            n_subsets: int = 40) -> Comparison:
    """Paired comparison of two submissions on the cells they share.

    ``a`` and ``b`` hold (key, AR test ids, probabilities) per cell.  Gives
    the paired bootstrap of the difference of fold-averaged scores (same
    resamples for both) and the 40-subset paired t-test used in the literature
    (each cell's test set split into ``n_subsets`` seeded subsets, scores
    paired per subset, two-tailed ``scipy.stats.ttest_rel``).
    """
    if not applicable(metric, test_rule):
        raise InputError(f"{metric} needs a consensus label; it is not defined on the AR test set")
    k = task.spec.k
    kind = M.METRICS[metric].kind
    index_b = {(key.fold, key.train_rule, key.seed): (ids, p) for key, ids, p in b}
    boots_a, boots_b, points_a, points_b, sub_a, sub_b = [], [], [], [], [], []
    for key, ids, pa in a:
        if key.train_rule != train_rule or (key.fold, key.train_rule, key.seed) not in index_b:
            continue
        _, pb = index_b[(key.fold, key.train_rule, key.seed)]
        split = task.split(key.fold, "test", test_rule)
        pos = {u: i for i, u in enumerate(ids)}
        rows = [pos[u] for u in split.ids]
        sa = M.statistics(kind, split.targets, pa[rows], split.labels)
        sb = M.statistics(kind, split.targets, pb[rows], split.labels)
        both = np.hstack([sa, sb])
        boot = bs.resampled_sums(both, n_resamples, (seed, key.fold, RULE_SEED[test_rule]))
        d = sa.shape[1]
        boots_a.append(M.finalize(metric, boot[:, :d], k))
        boots_b.append(M.finalize(metric, boot[:, d:], k))
        points_a.append(float(M.finalize(metric, sa.sum(0), k)))
        points_b.append(float(M.finalize(metric, sb.sum(0), k)))
        w = bs.subset_weights(len(split), n_subsets, seed)
        sub_a.extend(M.finalize(metric, w @ sa, k))
        sub_b.extend(M.finalize(metric, w @ sb, k))
    if not points_a:
        raise InputError(f"the two runs share no cell with training rule {train_rule}",
                         fix="score runs of the same task, folds, rule and seeds")
    diff = np.mean(boots_a, axis=0) - np.mean(boots_b, axis=0)
    t = sps.ttest_rel(sub_a, sub_b)
    return Comparison(metric, train_rule, test_rule, len(points_a), float(np.mean(points_a)),
                      float(np.mean(points_b)), float(np.mean(points_a) - np.mean(points_b)),
                      bs.percentile_interval(diff), bs.paired_p_value(diff),
                      float(t.statistic), float(t.pvalue), len(sub_a))
