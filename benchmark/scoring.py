"""Score run cells on every test rule, aggregate over folds and seeds, compare submissions.

One prediction pass over a fold's AR test set serves all three test rules
(Test(MR) is a subset of Test(PR), itself a subset of Test(AR)).  Single-label
metrics need a consensus class, so they are scored only on test sets where
every clip has one (MR and PR; AR too when no clip is tied, e.g. EmoDB);
multi-label, ranking and distribution metrics on all three.  Targets are the
task's unsmoothed targets (smoothing does not move the 1/K threshold).

Bootstrap resamples are seeded by (bootstrap seed, fold, test rule), so every
prediction scored on the same test set (submissions, training seeds) sees the
same clip resamples: intervals are comparable and differences are paired.
Single-label test sets are resampled within each consensus class.  Training
seeds are resampled on top (:func:`serbench.bootstrap.seed_resampled_mean`),
so intervals and differences of several seeds include seed variance.
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
from .tasks.task import Split, Task

RULE_SEED = {"MR": 1, "PR": 2, "AR": 3}
#: Above this many test clips, the AUPRC bootstrap uses quantile-binned scores (see
#: :func:`_binned_rank_stats`); at or below it, every resample is exact.
AP_EXACT_MAX = 5_000
AP_BINS = 8
#: The MR / PR "KL" is against the one-hot consensus: printed with the numbers.
KL_CONVENTION = ("on MR and PR test sets the distribution metrics (nll, brier, kl, js, cosine, "
                 "ECEs) compare with the one-hot consensus target, not with the vote distribution")


def applicable(metric: str, test_rule: str) -> bool:
    """Whether ``metric`` is defined on ``test_rule`` for a task whose AR clips can tie."""
    return not (M.METRICS[metric].kind == "single" and test_rule == "AR")


def defined_on(metric: str, split: Split) -> bool:
    """Whether ``metric`` is defined on this test set: single-label needs a label on every clip."""
    if M.METRICS[metric].kind != "single":
        return len(split) > 0
    return len(split) > 0 and bool((np.asarray(split.labels) >= 0).all())


def uar_convention(task: Task) -> str:
    """The task's UAR class convention: ``present`` (default) or ``all``."""
    return str(getattr(task.spec, "uar_classes", "present"))


def conventions(task: Task) -> dict[str, str]:
    """The conventions printed beside the numbers (leaderboards, ``run``)."""
    uc = uar_convention(task)
    return {"uar_classes": uc,
            "uar": ("UAR averages recall over the classes present in each test set"
                    if uc == "present" else
                    "UAR averages recall over all task classes (absent classes count as 0)"),
            "kl": KL_CONVENTION,
            "paper_metric": f"{M.PAPER_METRIC} (macro-F1 with the 1/K rule) is the paper's metric"}


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


def independent_outputs(record: Record) -> bool:
    """Whether the record declares independent per-class probabilities (multi-label outputs)."""
    return record.data.get("outputs") == "independent"


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
    if independent_outputs(record):
        return ids, read_predictions(record.predictions_path, task.spec.classes, ids,
                                     independent=True)
    return ids, read_predictions(record.predictions_path, task.spec.classes, ids)


# ----------------------------------------------------------------------------- one test set


def _binned_rank_stats(targets: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """[N, 2 * sum(G_k)]: per class, one-hot of the score's quantile bin and the same times the bit.

    Bins are cut at score quantiles (tie groups never split), highest scores
    first, so average precision over bins treats a bin as one threshold.
    """
    k = probs.shape[1]
    bits = targets > 1.0 / k
    cols, sizes = [], []
    for c in range(k):
        s = probs[:, c]
        edges = np.unique(np.quantile(s, np.linspace(0, 1, AP_BINS + 1)[1:-1]))
        b = len(edges) - np.searchsorted(edges, s, side="right")  # 0 = highest scores
        g = len(edges) + 1
        onehot = np.zeros((len(s), g), dtype=np.float32)
        onehot[np.arange(len(s)), b] = 1.0
        cols += [onehot * bits[:, c:c + 1], onehot]
        sizes.append(g)
    return np.hstack(cols), sizes


def _binned_ap(sums: np.ndarray, sizes: list[int]) -> np.ndarray:
    per_class, present, start = [], [], 0
    for g in sizes:
        pos, tot = sums[:, start:start + g], sums[:, start + g:start + 2 * g]
        per_class.append(M._ap_from_groups(pos, tot))
        present.append(pos.sum(axis=1) > 0)
        start += 2 * g
    ap, pr = np.stack(per_class, -1), np.stack(present, -1)
    return M._div((ap * pr).sum(-1), pr.sum(-1))


def score_test_sets(names: list[str], targets: np.ndarray, probs_list: list[np.ndarray],
                    labels: np.ndarray | None, *, n_resamples: int, seed: int | tuple[int, ...],
                    double_softmax: bool = False, independent: list[bool] | None = None,
                    uar_classes: str = "present", stratify: bool = True
                    ) -> list[tuple[dict[str, float | None], dict[str, np.ndarray]]]:
    """Point scores and bootstrap samples of ``names`` for several predictions of one test set.

    Every prediction (submissions, training seeds) sees the same clip
    resamples, drawn once: the statistics of every metric family and every
    prediction are stacked and summed in one pass over the weight chunks.
    Resamples are stratified by consensus class when every clip has one
    (``stratify``).  AUPRC is not additive: its resamples are exact up to
    ``AP_EXACT_MAX`` clips, and above that use quantile-binned scores; its
    bootstrap distribution is re-centred on the point estimate (AP is biased
    upward on resamples that repeat clips).
    """
    n = len(targets)
    k = probs_list[0].shape[1] if probs_list else 0
    independent = independent or [False] * len(probs_list)
    kinds = sorted({M.METRICS[m].kind for m in names} - {"rank"})
    rank = "auprc" in names
    bits_ece = "ece_bits" in names
    blocks, layout, plans, binned_sizes = [], [], [], []
    for i, probs in enumerate(probs_list):
        for kind in kinds:
            blk = M.statistics(kind, targets, probs, labels, double_softmax=double_softmax,
                               independent=independent[i], bits_ece=bits_ece)
            blocks.append(blk)
            layout.append((i, kind, blk.shape[1]))
        if rank:
            plans.append(M.rank_plan(targets, probs))
            if n > AP_EXACT_MAX and n_resamples:
                blk, sizes = _binned_rank_stats(targets, probs)
                blocks.append(blk)
                layout.append((i, "binned", blk.shape[1]))
                binned_sizes.append(sizes)
    results: list[tuple[dict[str, float | None], dict[str, np.ndarray]]] = []
    point_sums: dict[tuple[int, str], np.ndarray] = {}
    boot_sums: dict[tuple[int, str], np.ndarray] = {}
    exact_ap: list[list[np.ndarray]] = [[] for _ in probs_list]
    if (blocks or rank) and n:
        # one wide float32 matrix: OpenBLAS runs narrow products (tens of columns) very slowly
        stacked = np.empty((n, sum(b.shape[1] for b in blocks)), dtype=np.float32)
        start = 0
        for blk in blocks:
            stacked[:, start:start + blk.shape[1]] = blk
            start += blk.shape[1]
        parts = []
        if n_resamples:
            strata = labels if (stratify and labels is not None
                                and (np.asarray(labels) >= 0).all()) else None
            for w in bs.resample_weights(n, n_resamples, seed, strata):
                if blocks:
                    parts.append(bs.chunk_sums(w, stacked))
                if rank and n <= AP_EXACT_MAX:
                    for i, plan in enumerate(plans):
                        exact_ap[i].append(M.average_precision(plan, w))
        boot = np.vstack(parts) if parts else None
        start = 0
        for blk, (i, kind, width) in zip(blocks, layout, strict=True):
            point_sums[(i, kind)] = blk.sum(axis=0)
            if boot is not None:
                boot_sums[(i, kind)] = boot[:, start:start + width]
            start += width
    for i in range(len(probs_list)):
        point: dict[str, float | None] = {}
        samples: dict[str, np.ndarray] = {}
        for m in names:
            kind = M.METRICS[m].kind
            if kind == "rank":
                p_ap = float(M.average_precision(plans[i])[0]) if n else None
                point[m] = p_ap
                if exact_ap[i] and p_ap is not None:
                    # resamples repeat clips, and a repeated positive raises its own precision:
                    # AP's bootstrap is biased upward (~0.02 on 72 clips), so it is re-centred
                    # on the point estimate (bootstrap bias correction, Efron & Tibshirani 1993)
                    b = np.concatenate(exact_ap[i])
                    samples[m] = b - (float(np.mean(b)) - p_ap)
                elif (i, "binned") in boot_sums and p_ap is not None:
                    sizes = binned_sizes[i]
                    b = _binned_ap(boot_sums[(i, "binned")], sizes)
                    samples[m] = b - (float(np.mean(b)) - p_ap)  # re-centred, as above
                continue
            if (i, kind) not in point_sums:
                point[m] = None
                continue
            point[m] = float(M.finalize(m, point_sums[(i, kind)], k, uar_classes=uar_classes))
            if (i, kind) in boot_sums:
                samples[m] = M.finalize(m, boot_sums[(i, kind)], k, uar_classes=uar_classes)
        results.append((point, samples))
    return results


def score_test_set(names: list[str], targets: np.ndarray, probs: np.ndarray,
                   labels: np.ndarray | None, *, n_resamples: int, seed: int | tuple[int, ...],
                   double_softmax: bool = False, independent: bool = False,
                   uar_classes: str = "present"
                   ) -> tuple[dict[str, float | None], dict[str, np.ndarray]]:
    """Point scores and bootstrap samples of ``names`` on one test set (one prediction)."""
    return score_test_sets(names, targets, [probs], labels, n_resamples=n_resamples, seed=seed,
                           double_softmax=double_softmax, independent=[independent],
                           uar_classes=uar_classes)[0]


Loaded = tuple[CellKey, np.ndarray, np.ndarray]


def score_fold(task: Task, cells: list[Loaded], *, metrics: tuple[str, ...] | None = None,
               n_resamples: int = bs.DEFAULT_RESAMPLES, seed: int = 0,
               double_softmax: bool = False, independent: list[bool] | None = None
               ) -> list[CellScores]:
    """Score several cells of the same fold (any submissions, rules, seeds) on shared resamples."""
    metrics = metrics or task.spec.metrics
    k = task.spec.k
    if not cells:
        return []
    fold = cells[0][0].fold
    if any(c[0].fold != fold for c in cells):
        raise ValueError("score_fold takes cells of one fold")
    independent = independent or [False] * len(cells)
    uc = uar_convention(task)
    n: list[dict[str, int]] = [{} for _ in cells]
    point: list[dict[str, dict[str, float | None]]] = [{} for _ in cells]
    samples: list[dict[str, dict[str, np.ndarray]]] = [{} for _ in cells]
    f1s: list[dict[str, list[float]]] = [{} for _ in cells]
    conf: list[dict[str, list[list[int]]]] = [{} for _ in cells]
    for rule in task.spec.rules:
        split = task.split(fold, "test", rule)
        probs = []
        for _, ids, p in cells:
            pos = {u: i for i, u in enumerate(ids)}
            probs.append(p[[pos[u] for u in split.ids]])
        names = [m for m in metrics if defined_on(m, split)]
        scored = score_test_sets(names, split.targets, probs, split.labels,
                                 n_resamples=n_resamples, seed=(seed, fold, RULE_SEED[rule]),
                                 double_softmax=double_softmax, independent=independent,
                                 uar_classes=uc)
        for j, (pt, smp) in enumerate(scored):
            n[j][rule] = len(split)
            point[j][rule] = {m: pt.get(m) for m in metrics}  # None where not defined
            samples[j][rule] = smp
            f1s[j][rule] = (M.per_class_f1(split.targets, probs[j]).tolist() if len(split)
                            else [0.0] * k)
            if rule != "AR" and len(split):
                conf[j][rule] = M.confusion(split.labels, probs[j]).tolist()
    return [CellScores(c[0], n[j], point[j], samples[j], f1s[j], conf[j])
            for j, c in enumerate(cells)]


def score_probs(task: Task, key: CellKey, ids: np.ndarray, probs: np.ndarray, *,
                metrics: tuple[str, ...] | None = None, n_resamples: int = bs.DEFAULT_RESAMPLES,
                seed: int = 0, double_softmax: bool = False,
                independent: bool = False) -> CellScores:
    return score_fold(task, [(key, ids, probs)], metrics=metrics, n_resamples=n_resamples,
                      seed=seed, double_softmax=double_softmax, independent=[independent])[0]


def score_record(task: Task, record: Record, **kwargs: Any) -> CellScores:
    ids, probs = load_probs(task, record)
    return score_probs(task, record.key, ids, probs, independent=independent_outputs(record),
                       **kwargs)


def score_records(task: Task, records: list[Record], **kwargs: Any) -> list[CellScores]:
    """Score records of one task fold by fold, each fold's cells on one set of resamples."""
    by_fold: dict[int, list[Record]] = defaultdict(list)
    for r in records:
        by_fold[r.key.fold].append(r)
    out = []
    for fold in sorted(by_fold):
        loaded = [(r.key, *load_probs(task, r)) for r in by_fold[fold]]
        out += score_fold(task, loaded, independent=[independent_outputs(r)
                                                     for r in by_fold[fold]], **kwargs)
    return out


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
    std: dict[tuple[str, str, str], float]   # sd over folds of the seed-averaged scores
    ci: dict[tuple[str, str, str], tuple[float, float]]
    per_class_f1: dict[tuple[str, str], list[float]]
    confusion: dict[tuple[str, str], list[list[int]]]
    #: mean over folds of the sd across training seeds (0 with one seed)
    seed_std: dict[tuple[str, str, str], float] = field(default_factory=dict)


def _seed_rng(seed: int, fold: int, rule: str, salt: int = 0) -> tuple[int, ...]:
    return (seed, fold, RULE_SEED[rule], 7919 + salt)


def aggregate(task: Task, cells: list[CellScores], *, seed: int = 0) -> Aggregate:
    """Average cells over folds and seeds; a training rule missing any fold is incomplete.

    The interval is a hierarchical bootstrap: per fold, resample index b
    draws the training seeds with replacement and averages their scores on
    clip resample b; the folds' results are averaged (stratified by fold).
    """
    if not cells:
        raise ValueError("no cells to aggregate")
    sub = cells[0].key.submission
    seeds = sorted({c.key.seed for c in cells})
    by_rule: dict[str, list[CellScores]] = defaultdict(list)
    for c in cells:
        by_rule[c.key.train_rule].append(c)
    complete, done = {}, {}
    mean, std, sstd, ci, f1, conf = {}, {}, {}, {}, {}, {}
    folds = range(1, task.n_folds + 1)
    for train in task.spec.rules:
        group = sorted(by_rule.get(train, []), key=lambda c: (c.key.seed, c.key.fold))
        have = {(c.key.seed, c.key.fold) for c in group}
        need = {(s, f) for s in seeds for f in folds}
        complete[train] = need <= have
        done[train] = len({f for _, f in have})
        if not complete[train]:
            continue
        by_fold = {f: [c for c in group if c.key.fold == f] for f in folds}
        for test in task.spec.rules:
            for m in task.spec.metrics:
                raw = [[c.point[test][m] for c in by_fold[f]] for f in folds]
                if any(v is None for fv in raw for v in fv):
                    continue
                vals = [[float(v) for v in fv if v is not None] for fv in raw]
                fold_means = [float(np.mean(fv)) for fv in vals]
                key = (train, test, m)
                mean[key] = float(np.mean(fold_means))
                std[key] = float(np.std(fold_means, ddof=1)) if len(fold_means) > 1 else 0.0
                sstd[key] = float(np.mean([np.std(fv, ddof=1) if len(fv) > 1 else 0.0
                                           for fv in vals]))
                boots = [[c.samples[test].get(m) for c in by_fold[f]] for f in folds]
                if all(b is not None for fb in boots for b in fb):
                    per_fold = [bs.seed_resampled_mean(np.stack([b for b in fb if b is not None]),
                                                       _seed_rng(seed, f, test))
                                for f, fb in zip(folds, boots, strict=True)]
                    ci[key] = bs.percentile_interval(np.mean(per_fold, axis=0))
            f1[(train, test)] = np.mean([c.per_class_f1[test] for c in group], axis=0).tolist()
            if test != "AR" and all(test in c.confusion for c in group):
                conf[(train, test)] = np.sum([c.confusion[test] for c in group], axis=0).tolist()
    return Aggregate(task.spec.name, sub, task.n_folds, seeds, complete, done, mean, std, ci,
                     f1, conf, sstd)


def hierarchical_interval(cells: list[CellScores], test_rule: str, metric: str, *,
                          seed: int = 0, level: float = 0.95
                          ) -> tuple[float, tuple[float, float]]:
    """Mean over folds and seeds of ``metric`` and its seed-then-clip bootstrap interval.

    For summaries outside the leaderboard (e.g. the ablation report): the cells of one
    submission and training rule, any folds and seeds (each fold's seeds are resampled).
    """
    by_fold: dict[int, list[CellScores]] = defaultdict(list)
    for c in cells:
        by_fold[c.key.fold].append(c)
    means, boots = [], []
    for fold in sorted(by_fold):
        group = sorted(by_fold[fold], key=lambda c: c.key.seed)
        vals = [c.point[test_rule][metric] for c in group]
        means.append(float(np.mean([v for v in vals if v is not None])))
        samples = [c.samples.get(test_rule, {}).get(metric) for c in group]
        if all(x is not None for x in samples):
            boots.append(bs.seed_resampled_mean(np.stack([x for x in samples if x is not None]),
                                                _seed_rng(seed, fold, test_rule)))
    ci = (bs.percentile_interval(np.mean(boots, axis=0), level)
          if boots and len(boots) == len(means) else (float("nan"), float("nan")))
    return float(np.mean(means)), ci


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
    #: training seeds shared by both runs, and the difference of fold means per seed
    seeds: list[int] = field(default_factory=list)
    seed_diffs: list[float] = field(default_factory=list)
    #: "k/S seeds agree in sign with the mean difference"
    seed_agreement: str = ""
    #: why the subset t-test was not run ("" when it was)
    t_test_refused: str = ""


def compare(task: Task, a: list[Loaded], b: list[Loaded], *, metric: str, train_rule: str,
            test_rule: str, n_resamples: int = bs.DEFAULT_RESAMPLES, seed: int = 0,
            n_subsets: int = 40) -> Comparison:
    """Paired comparison of two submissions on the cells they share.

    ``a`` and ``b`` hold (key, AR test ids, probabilities) per cell.  Gives
    the paired hierarchical bootstrap of the difference of fold- and
    seed-averaged scores (same clip resamples for both; the training seeds of
    each side redrawn per resample), the difference per training seed and how
    many seeds agree in sign, and the 40-subset paired t-test used in the
    literature (each fold's test set split into ``n_subsets`` seeded subsets,
    seed-averaged scores paired per subset, two-tailed ``scipy.stats.ttest_rel``).
    The t-test is refused (NaN, with the reason) when a test set has fewer
    clips than subsets, since empty subsets would be scored 0 against 0.
    """
    if not applicable(metric, test_rule):
        splits = [task.split(f, "test", test_rule) for f in range(1, task.n_folds + 1)]
        if not all(defined_on(metric, s) for s in splits if len(s)):
            raise InputError(f"{metric} needs a consensus label; it is not defined on the "
                             f"{test_rule} test set (tied clips)")
    k = task.spec.k
    uc = uar_convention(task)
    index_b = {(key.fold, key.train_rule, key.seed): (ids, p) for key, ids, p in b}
    shared = [(key, ids, pa) for key, ids, pa in a
              if key.train_rule == train_rule and (key.fold, key.train_rule, key.seed) in index_b]
    if not shared:
        raise InputError(f"the two runs share no cell with training rule {train_rule}",
                         fix="score runs of the same task, folds, rule and seeds")
    folds = sorted({key.fold for key, _, _ in shared})
    seeds = sorted({key.seed for key, _, _ in shared})
    diff_boot: list[np.ndarray] = []
    pts_a: dict[tuple[int, int], float] = {}
    pts_b: dict[tuple[int, int], float] = {}
    sub_a: list[float] = []
    sub_b: list[float] = []
    refused = ""
    for fold in folds:
        fold_cells = sorted((c for c in shared if c[0].fold == fold), key=lambda c: c[0].seed)
        split = task.split(fold, "test", test_rule)
        probs_a, probs_b = [], []
        for key, ids, pa in fold_cells:
            pos = {u: i for i, u in enumerate(ids)}
            rows = [pos[u] for u in split.ids]
            probs_a.append(pa[rows])
            probs_b.append(index_b[(key.fold, key.train_rule, key.seed)][1][rows])
        scored = score_test_sets([metric], split.targets, probs_a + probs_b, split.labels,
                                 n_resamples=n_resamples, seed=(seed, fold, RULE_SEED[test_rule]),
                                 uar_classes=uc)
        s = len(fold_cells)
        for j, (key, _, _) in enumerate(fold_cells):
            va, vb = scored[j][0][metric], scored[s + j][0][metric]
            if va is not None and vb is not None:
                pts_a[(fold, key.seed)], pts_b[(fold, key.seed)] = va, vb
        if n_resamples:
            sa = np.stack([scored[j][1][metric] for j in range(s)])
            sb = np.stack([scored[s + j][1][metric] for j in range(s)])
            diff_boot.append(bs.seed_resampled_mean(sa, _seed_rng(seed, fold, test_rule, 1))
                             - bs.seed_resampled_mean(sb, _seed_rng(seed, fold, test_rule, 2)))
        if len(split) < n_subsets:
            refused = refused or (f"the {test_rule} test set of fold {fold} has {len(split)} "
                                  f"clips, fewer than {n_subsets} subsets (some would be empty)")
        else:
            w = bs.subset_weights(len(split), n_subsets, seed)
            kind = M.METRICS[metric].kind
            for side, probs in ((sub_a, probs_a), (sub_b, probs_b)):
                if kind == "rank":
                    per_seed = [M.average_precision(M.rank_plan(split.targets, p), w)
                                for p in probs]
                else:
                    per_seed = [M.finalize(metric, w @ M.statistics(kind, split.targets, p,
                                                                    split.labels), k,
                                           uar_classes=uc) for p in probs]
                side.extend(np.mean(per_seed, axis=0))
    mean_a = float(np.mean(list(pts_a.values())))
    mean_b = float(np.mean(list(pts_b.values())))
    diff = mean_a - mean_b
    seed_diffs = [float(np.mean([pts_a[(f, sd)] - pts_b[(f, sd)] for f in folds
                                 if (f, sd) in pts_a])) for sd in seeds]
    agree = sum(np.sign(d) == np.sign(diff) and d != 0 for d in seed_diffs)
    boot = np.mean(diff_boot, axis=0) if diff_boot else np.zeros(0)
    if refused:
        t_stat, p_t, n_sub = float("nan"), float("nan"), 0
    else:
        t = sps.ttest_rel(sub_a, sub_b)
        t_stat, p_t, n_sub = float(t.statistic), float(t.pvalue), len(sub_a)
    return Comparison(metric, train_rule, test_rule, len(shared), mean_a, mean_b, diff,
                      bs.percentile_interval(boot), bs.paired_p_value(boot), t_stat, p_t, n_sub,
                      seeds, seed_diffs, f"{agree}/{len(seeds)}", refused)
