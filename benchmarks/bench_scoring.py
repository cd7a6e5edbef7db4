"""Scoring throughput: 3 training seeds x 100,000 test clips x 3 test rules x 1,000 resamples.

Builds a synthetic one-fold task from vote counts (100,000 test and 100,000
training clips, 4-12 votes each, K = 6), scores three predictions of the test
clips (three "training seeds") with every metric a task lists by default on
the MR, PR and AR test sets through the scorer's own path
(:func:`serbench.scoring.score_fold`: one set of clip resamples per test rule
shared by the seeds, class-stratified on MR / PR), aggregates them with the
hierarchical seed bootstrap (:func:`serbench.summaries.aggregate`), and computes
the reference rows (prior, best constant, held-out human;
:func:`serbench.reference.reference`).  Optionally times a per-resample
scikit-learn loop on a few resamples, extrapolated to 1,000.

    python benchmarks/bench_scoring.py [--n 100000] [--seeds 3] [--resamples 1000] [--loop 0]
"""

from __future__ import annotations

import argparse
import os
import time
from types import SimpleNamespace

import numpy as np

from serbench import metrics as M
from serbench.records import CellKey
from serbench.reference import reference
from serbench.rules import apply_rule
from serbench.scoring import score_fold
from serbench.summaries import aggregate
from serbench.tasks.task import Split


class SyntheticTask:
    """Duck-typed :class:`serbench.tasks.task.Task` with one fold, built from vote counts."""

    def __init__(self, n: int, k: int, rng: np.random.Generator) -> None:
        shares = rng.dirichlet(np.ones(k) * 0.6, size=2 * n)
        votes = rng.integers(4, 13, size=2 * n)
        counts = np.stack([rng.multinomial(v, s) for v, s in zip(votes, shares, strict=True)])
        ids = np.array([f"u{i:07d}" for i in range(2 * n)])
        self.counts = SimpleNamespace(ids=ids, counts=counts, other=np.zeros(2 * n, dtype=int))
        self.part = np.r_[np.full(n, "test"), np.full(n, "train")]
        self.truth = None  # no known truth: no oracle row (a simulation would have one)
        classes = tuple(f"c{j}" for j in range(k))
        self.spec = SimpleNamespace(name="bench", k=k, classes=classes, rules=("MR", "PR", "AR"),
                                    metrics=M.DEFAULT, primary_metric="auprc",
                                    uar_classes="present", smoothing=0.05,
                                    mr_denominator="all_votes")
        self.n_folds = 1
        self.fingerprint = {"fingerprint": f"bench-{n}-{k}-{int(counts.sum())}"}
        self._rules = {r: apply_rule(r, counts, self.counts.other) for r in self.spec.rules}

    def split(self, fold: int, split: str, rule: str) -> Split:
        res = self._rules[rule]
        sel = (self.part == split)[res.keep]
        return Split(fold, split, rule, self.counts.ids[res.keep][sel], res.targets[sel],
                     res.labels[sel])


def predictions(task: SyntheticTask, seeds: int, rng: np.random.Generator) -> list:
    ar = task.split(1, "test", "AR")
    out = []
    for s in range(seeds):
        noise = rng.dirichlet(np.ones(task.spec.k), size=len(ar))
        out.append((CellKey("bench", "model", 1, "AR", s), ar.ids, 0.6 * ar.targets + 0.4 * noise))
    return out


def sklearn_loop(task: SyntheticTask, probs: np.ndarray, resamples: int) -> None:
    from sklearn.metrics import average_precision_score, balanced_accuracy_score, f1_score

    k = task.spec.k
    rng = np.random.default_rng(1)
    ar = task.split(1, "test", "AR")
    pos = {u: i for i, u in enumerate(ar.ids)}
    for rule in task.spec.rules:
        sp = task.split(1, "test", rule)
        t_all, p_all = sp.targets, probs[[pos[u] for u in sp.ids]]
        for _ in range(resamples):
            r = rng.integers(0, len(t_all), size=len(t_all))
            t, p = t_all[r], p_all[r]
            if rule != "AR":
                balanced_accuracy_score(t.argmax(1), p.argmax(1))
                f1_score(t.argmax(1), p.argmax(1), average="macro", zero_division=0)
            b, bh = (t > 1 / k).astype(int), (p > 1 / k).astype(int)
            f1_score(b, bh, average="macro", zero_division=0)
            average_precision_score(b, p, average="macro")
            M.compute(M.DISTRIBUTION, t, p)  # numpy; scikit-learn has no KL/JS/ECE


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--k", type=int, default=6)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--resamples", type=int, default=1000)
    ap.add_argument("--loop", type=int, default=0, help="resamples timed for the sklearn loop")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    task = SyntheticTask(args.n, args.k, rng)
    cells = predictions(task, args.seeds, rng)
    load0 = os.getloadavg()[0]
    cpu0 = os.times()
    t0 = time.perf_counter()
    scores = score_fold(task, cells, n_resamples=args.resamples)  # type: ignore[arg-type]
    t1 = time.perf_counter()
    agg = aggregate(task, scores)  # type: ignore[arg-type]
    t2 = time.perf_counter()
    ref = reference(task)  # type: ignore[arg-type]
    t3 = time.perf_counter()
    n = {r: len(task.split(1, "test", r)) for r in task.spec.rules}
    print(f"{args.seeds} seeds x {n} test clips x {args.resamples} resamples, K={args.k}, "
          f"{len(M.DEFAULT)} metrics; load average at start {load0:.2f} "
          f"({os.cpu_count()} CPUs)")
    print(f"score (all seeds, rules, metrics) : {t1 - t0:7.2f} s")
    print(f"aggregate (seed bootstrap)        : {t2 - t1:7.2f} s")
    print(f"reference rows                    : {t3 - t2:7.2f} s")
    total = t3 - t0
    cpu1 = os.times()
    cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    print(f"total                             : {total:7.2f} s;  target < 10 s: "
          f"{'met' if total < 10 else 'MISSED'}")
    print(f"CPU time of this process (user + system, all threads): {cpu:.2f} s; on a quiet "
          f"2-core machine the wall time is at least {cpu / 2:.2f} s; load average now "
          f"{os.getloadavg()[0]:.2f}")
    key = ("AR", "AR", "auprc")
    ap = ref["auprc"]["AR"]
    print(f"check: auprc AR {agg.mean[key]:.4f} {agg.ci[key]}, best constant "
          f"{ap['best_constant'].text()}, human {ap['human'].text()}")
    if args.loop:
        t0 = time.perf_counter()
        sklearn_loop(task, cells[0][2], args.loop)
        t_l = (time.perf_counter() - t0) / args.loop * args.resamples * args.seeds
        print(f"per-resample scikit-learn loop    : {t_l:7.2f} s (timed on {args.loop} "
              f"resamples of one seed, extrapolated)")


if __name__ == "__main__":
    main()
