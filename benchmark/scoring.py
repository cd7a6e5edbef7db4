"""Score run cells on every test rule, aggregate over folds and seeds, compare submissions.

One prediction pass over a fold's AR test set serves every test rule of the task
(Test(MR) is a subset of Test(PR), itself a subset of Test(AR); the model rules DS
and DS1 keep exactly the clips of Test(AR), with posterior targets).  Single-label
metrics need a consensus class, so they are scored only on test sets where
every clip has one (MR, PR, DS, DS1; AR too when no clip is tied, e.g. EmoDB);
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
import pandas as pd

from . import bootstrap as bs
from . import metrics as M
from . import rater_eval as RE
from .errors import InputError
from .records import CellKey, Record, read_predictions, read_rater_predictions
from .tasks.task import Split, Task

RULE_SEED = {"MR": 1, "PR": 2, "AR": 3, "DS": 4, "DS1": 5}
#: Above this many test clips, the AUPRC bootstrap uses quantile-binned scores (see
#: :func:`_binned_rank_stats`); at or below it, every resample is exact.
AP_EXACT_MAX = 5_000
AP_BINS = 8
#: The MR / PR "KL" is against the one-hot consensus: printed with the numbers.
KL_CONVENTION = ("on MR and PR test sets the distribution metrics (nll, brier, kl, js, cosine, "
                 "ECEs) compare with the one-hot consensus target, not with the vote distribution")


def scored_metrics(task: Task) -> tuple[str, ...]:
    """Every metric a task's cells are scored on: its own list, then the rater-level metrics
    (``None`` with the reason on a task without rater ids; docs/methods.md#rater-eval)."""
    return tuple(task.spec.metrics) + RE.RATER_METRICS


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
    #: test rule -> metric -> why its value is None (the rater-level metrics' n/a reasons)
    notes: dict[str, dict[str, str]] = field(default_factory=dict)
    #: test rule -> what the rater-level metrics covered (votes, raters, exclusions)
    rater_coverage: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: whether the rater-level metrics used the submission's per-rater predictions
    rater_specific: bool = False

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
                "ci95": {m: [None if not np.isfinite(x) else round(x, 6)  # strict JSON
                             for x in self.interval(rule, m)]
                         for m, v in values.items() if v is not None},
                "per_class_f1": [round(x, 6) for x in self.per_class_f1[rule]],
            }
            if self.notes.get(rule):
                out["test"][rule]["not_defined"] = dict(self.notes[rule])
            if rule in self.rater_coverage:
                out["test"][rule]["rater_coverage"] = self.rater_coverage[rule]
        out["rater_specific"] = self.rater_specific
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
            f"task (version {task.spec.version}) is {fp[:12]}: its clips or targets differ",
            file=record.path,
            fix="rerun this cell on the current task (a new task version, such as demo v2, "
                "refuses older records), or prepare the task from the source the record was "
                "made on")
    if not 1 <= d["fold"] <= task.n_folds or d["train_rule"] not in task.spec.rules:
        raise InputError(f"fold {d['fold']} / rule {d['train_rule']!r} not in task "
                         f"{task.spec.name}", file=record.path)
    ids = task.split(d["fold"], "test", "AR").ids
    if independent_outputs(record):
        return ids, read_predictions(record.predictions_path, task.spec.classes, ids,
                                     independent=True)
    return ids, read_predictions(record.predictions_path, task.spec.classes, ids)


def load_rater_probs(task: Task, record: Record) -> RE.RaterProbs | None:
    """The record's per-rater predictions (``predict_rater_proba``), validated; None if none."""
    path = record.rater_predictions_path
    if path is None:
        return None
    ids, raters = RE.rater_pairs(task, record.data["fold"])
    return RE.RaterProbs(ids, raters, read_rater_predictions(path, task.spec.classes, ids,
                                                             raters))


# ----------------------------------------------------------------------------- one test set


def _binned_rank_stats(targets: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """[N, 2 * sum(G_k)]: per class, one-hot of the score's quantile bin and the same times the bit.

    Bins are cut at score quantiles (tie groups never split), highest scores
    first, so average precision over bins treats a bin as one threshold.
    """
    k = probs.shape[1]
    n = len(probs)
    bits = targets > 1.0 / k
    bins, sizes = [], []
    for c in range(k):
        s = probs[:, c]
        edges = np.unique(np.quantile(s, np.linspace(0, 1, AP_BINS + 1)[1:-1]))
        bins.append(len(edges) - np.searchsorted(edges, s, side="right"))  # 0 = highest
        sizes.append(len(edges) + 1)
    out = np.zeros((n, 2 * sum(sizes)), dtype=np.float32, order="F")
    rows, start = np.arange(n), 0
    for c, (b, g) in enumerate(zip(bins, sizes, strict=True)):
        out[rows, start + b] = bits[:, c]      # the bin's positives
        out[rows, start + g + b] = 1.0         # the bin's clips
        start += 2 * g
    return out, sizes


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
        # one wide float32 matrix: OpenBLAS runs narrow products (tens of columns) very slowly;
        # column-major, so that each block's columns are written contiguously
        stacked = np.empty((n, sum(b.shape[1] for b in blocks)), dtype=np.float32, order="F")
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
                        exact_ap[i].append(M.average_precision(plan, w, counts=True))
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
            p_m = float(M.finalize(m, point_sums[(i, kind)], k, uar_classes=uar_classes))
            point[m] = p_m
            if (i, kind) in boot_sums:
                b = M.finalize(m, boot_sums[(i, kind)], k, uar_classes=uar_classes)
                if m in M.RECENTRED:  # biased resamples (see M.RECENTRED), as AP above
                    b = b - (float(np.nanmean(b)) - p_m)
                samples[m] = b
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
               double_softmax: bool = False, independent: list[bool] | None = None,
               rater_probs: list[RE.RaterProbs | None] | None = None) -> list[CellScores]:
    """Score several cells of the same fold (any submissions, rules, seeds) on shared resamples.

    ``metrics`` defaults to :func:`scored_metrics` (the task's metrics and the
    rater-level ones); ``rater_probs`` holds each cell's per-rater predictions
    (None: its clip distribution stands for every rater).
    """
    metrics = metrics or scored_metrics(task)
    rater_names = [m for m in metrics if m in RE.RATER_METRICS]
    metrics = tuple(m for m in metrics if m not in RE.RATER_METRICS)
    rater_probs = rater_probs or [None] * len(cells)
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
    notes: list[dict[str, dict[str, str]]] = [{} for _ in cells]
    coverage: dict[str, dict[str, Any]] = {}
    votes = RE.fold_votes(task, fold) if rater_names else None
    indexes = [pd.Index(ids) for _, ids, _ in cells]  # hashed once, looked up per rule
    for rule in task.spec.rules:
        split = task.split(fold, "test", rule)
        probs = []
        for index, (_, _, p) in zip(indexes, cells, strict=True):
            rows = index.get_indexer(split.ids)  # the test rule's clips, in its order
            if (rows < 0).any():
                raise KeyError(f"no prediction for clip {split.ids[int(np.argmax(rows < 0))]!r}")
            probs.append(p[rows])
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
        if votes is not None:
            fv = votes.restrict(split.ids)
            coverage[rule] = fv.coverage(RE.min_votes(task))
            rated = RE.score_votes(fv, probs, rater_probs, independent=independent,
                                   labels=split.labels, n_resamples=n_resamples,
                                   seed=(seed, fold, RULE_SEED[rule]),
                                   min_votes=RE.min_votes(task))
            for j, (pt, smp, why) in enumerate(rated):
                point[j][rule].update({m: pt[m] for m in rater_names})
                samples[j][rule].update({m: v for m, v in smp.items() if m in rater_names})
                notes[j][rule] = {m: w for m, w in why.items() if m in rater_names}
    return [CellScores(c[0], n[j], point[j], samples[j], f1s[j], conf[j], notes[j],
                       dict(coverage), rater_probs[j] is not None)
            for j, c in enumerate(cells)]


def score_probs(task: Task, key: CellKey, ids: np.ndarray, probs: np.ndarray, *,
                metrics: tuple[str, ...] | None = None, n_resamples: int = bs.DEFAULT_RESAMPLES,
                seed: int = 0, double_softmax: bool = False,
                independent: bool = False, rater_probs: RE.RaterProbs | None = None
                ) -> CellScores:
    return score_fold(task, [(key, ids, probs)], metrics=metrics, n_resamples=n_resamples,
                      seed=seed, double_softmax=double_softmax, independent=[independent],
                      rater_probs=[rater_probs])[0]


def score_record(task: Task, record: Record, **kwargs: Any) -> CellScores:
    ids, probs = load_probs(task, record)
    return score_probs(task, record.key, ids, probs, independent=independent_outputs(record),
                       rater_probs=load_rater_probs(task, record), **kwargs)


def score_records(task: Task, records: list[Record], **kwargs: Any) -> list[CellScores]:
    """Score records of one task fold by fold, each fold's cells on one set of resamples."""
    by_fold: dict[int, list[Record]] = defaultdict(list)
    for r in records:
        by_fold[r.key.fold].append(r)
    out = []
    for fold in sorted(by_fold):
        loaded = [(r.key, *load_probs(task, r)) for r in by_fold[fold]]
        out += score_fold(task, loaded, independent=[independent_outputs(r)
                                                     for r in by_fold[fold]],
                          rater_probs=[load_rater_probs(task, r) for r in by_fold[fold]],
                          **kwargs)
    return out


# ----------------------------------------------------------------------------- aggregation
