"""Over folds and seeds: aggregates with seed-aware intervals, and paired comparisons.

:mod:`serbench.scoring` scores one cell's test sets; this module summarises many
cells of a submission (mean over folds and seeds, the hierarchical bootstrap
that resamples training seeds, then clips) and compares two submissions on the
cells they share (paired bootstrap, per-seed consistency, the subset t-test
where the test sets are large enough).  See docs/methods.md#stats.
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
from .scoring import (
    RULE_SEED,
    CellScores,
    Loaded,
    applicable,
    defined_on,
    score_test_sets,
    scored_metrics,
    uar_convention,
)
from .tasks.task import Task


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
    #: (train rule, test rule, metric) -> why it has no value (the rater-level n/a reasons)
    notes: dict[tuple[str, str, str], str] = field(default_factory=dict)
    #: test rule -> what the rater-level metrics covered, summed over the folds
    rater_coverage: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: whether every cell scored the raters with the submission's own per-rater predictions
    rater_specific: bool = False
    #: per training rule: the (seed, fold) cells not recorded, of the seeds x folds a complete
    #: rule needs (why a partial row shows no value; empty for a complete rule)
    missing: dict[str, list[tuple[int, int]]] = field(default_factory=dict)


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
    missing: dict[str, list[tuple[int, int]]] = {}
    mean, std, sstd, ci, f1, conf = {}, {}, {}, {}, {}, {}
    notes: dict[tuple[str, str, str], str] = {}
    folds = range(1, task.n_folds + 1)
    for train in task.spec.rules:
        group = sorted(by_rule.get(train, []), key=lambda c: (c.key.seed, c.key.fold))
        have = {(c.key.seed, c.key.fold) for c in group}
        need = {(s, f) for s in seeds for f in folds}
        complete[train] = need <= have
        missing[train] = sorted(need - have)
        done[train] = len({f for _, f in have})
        if not complete[train]:
            continue
        by_fold = {f: [c for c in group if c.key.fold == f] for f in folds}
        for test in task.spec.rules:
            for m in scored_metrics(task):
                raw = [[c.point[test].get(m) for c in by_fold[f]] for f in folds]
                if any(v is None for fv in raw for v in fv):
                    why = next((c.notes.get(test, {}).get(m) for c in group
                                if c.notes.get(test, {}).get(m)), None)
                    if why:
                        notes[(train, test, m)] = why
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
                     f1, conf, sstd, notes, _coverage(task, cells),
                     bool(cells) and all(c.rater_specific for c in cells), missing)


def _coverage(task: Task, cells: list[CellScores]) -> dict[str, dict[str, Any]]:
    """Per test rule: counted votes summed over the folds (each fold once), raters per fold."""
    out: dict[str, dict[str, Any]] = {}
    for test in task.spec.rules:
        per_fold: dict[int, dict[str, Any]] = {}
        for c in cells:
            if test in c.rater_coverage:
                per_fold.setdefault(c.key.fold, c.rater_coverage[test])
        if not per_fold:
            continue
        covs = [per_fold[f] for f in sorted(per_fold)]
        out[test] = {"folds": len(covs), "votes": int(sum(v.get("votes", 0) for v in covs)),
                     "raters_per_fold": [int(v.get("raters", 0)) for v in covs],
                     "raters_uar_per_fold": [int(v.get("raters_uar", 0)) for v in covs]}
        whys = sorted({str(v["why"]) for v in covs if v.get("why")})
        if whys:
            out[test]["why"] = "; ".join(whys)
    return out


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
    clips than subsets, since empty subsets would be scored 0 against 0, and is
    undefined (NaN, with the reason) when the two agree on every subset.
    """
    if metric not in M.METRICS:
        from .rater_eval import RATER_METRICS

        why = (" (the rater-level metrics have no paired comparison yet: read their intervals "
               "on the leaderboard or in `serbench score --json`)" if metric in RATER_METRICS
               else "")
        raise InputError(f"--metric {metric!r} cannot be compared{why}",
                         fix=f"one of {', '.join(task.spec.metrics)}")
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
        if not np.isfinite(t_stat):  # every paired difference is 0: t is 0/0
            refused = "no difference between the two on any subset"
    return Comparison(metric, train_rule, test_rule, len(shared), mean_a, mean_b, diff,
                      bs.percentile_interval(boot), bs.paired_p_value(boot), t_stat, p_t, n_sub,
                      seeds, seed_diffs, f"{agree}/{len(seeds)}", refused)
