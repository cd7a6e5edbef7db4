"""Scoring throughput: serbench's vectorised bootstrap vs a per-resample scikit-learn loop.

Scores 100,000 utterances x 3 test rules (MR ~ 55%, PR ~ 80%, AR = all of them)
x 1,000 bootstrap resamples with every metric, then times a straightforward
loop that draws each resample and calls scikit-learn / numpy on it, on a few
resamples, and extrapolates it to 1,000.  Prints both and their ratio.

    python benchmarks/bench_scoring.py [--n 100000] [--resamples 1000] [--loop 10]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.metrics import balanced_accuracy_score, f1_score, hamming_loss

from serbench import bootstrap as bs
from serbench import metrics as M


def data(n: int, k: int, rng: np.random.Generator):
    targets = rng.dirichlet(np.ones(k) * 0.6, size=n)
    probs = rng.dirichlet(np.ones(k), size=n)
    top = targets.max(axis=1)
    sets = {"AR": np.arange(n), "PR": np.flatnonzero(top > np.quantile(top, 0.2)),
            "MR": np.flatnonzero(top > np.quantile(top, 0.45))}
    return targets, probs, sets


def harness(targets, probs, sets, resamples: int) -> dict:
    k = probs.shape[1]
    out = {}
    for rule, idx in sets.items():
        t, p = targets[idx], probs[idx]
        labels = t.argmax(axis=1)
        kinds = ("multi", "dist") if rule == "AR" else ("single", "multi", "dist")
        blocks = [M.statistics(kind, t, p, labels) for kind in kinds]
        sums = bs.resampled_sums(np.hstack(blocks), resamples, (0, 1, len(rule)))
        start = 0
        for kind, block in zip(kinds, blocks, strict=True):
            part = sums[:, start:start + block.shape[1]]
            start += block.shape[1]
            for name, m in M.METRICS.items():
                if m.kind == kind:
                    out[(rule, name)] = M.finalize(name, part, k)
    return out


def sklearn_loop(targets, probs, sets, resamples: int) -> None:
    k = probs.shape[1]
    rng = np.random.default_rng(1)
    for rule, idx in sets.items():
        t_all, p_all = targets[idx], probs[idx]
        for _ in range(resamples):
            r = rng.integers(0, len(idx), size=len(idx))
            t, p = t_all[r], p_all[r]
            if rule != "AR":
                y, yh = t.argmax(1), p.argmax(1)
                balanced_accuracy_score(y, yh)
                np.mean(y == yh)
                f1_score(y, yh, average="macro", zero_division=0)
                f1_score(y, yh, average="micro", zero_division=0)
            b, bh = (t > 1 / k).astype(int), (p > 1 / k).astype(int)
            f1_score(b, bh, average="macro", zero_division=0)
            f1_score(b, bh, average="micro", zero_division=0)
            hamming_loss(b, bh)
            M.compute(M.DISTRIBUTION, t, p)  # numpy; scikit-learn has no KL/JS/ECE


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--k", type=int, default=6)
    ap.add_argument("--resamples", type=int, default=1000)
    ap.add_argument("--loop", type=int, default=10, help="resamples timed for the loop")
    args = ap.parse_args()
    targets, probs, sets = data(args.n, args.k, np.random.default_rng(0))
    t0 = time.perf_counter()
    harness(targets, probs, sets, args.resamples)
    t_h = time.perf_counter() - t0
    t0 = time.perf_counter()
    sklearn_loop(targets, probs, sets, args.loop)
    t_l = (time.perf_counter() - t0) / args.loop * args.resamples
    print(f"clips {args.n} x 3 test rules x {args.resamples} resamples, K={args.k}, all metrics")
    print(f"serbench vectorised bootstrap : {t_h:8.2f} s")
    print(f"per-resample scikit-learn loop: {t_l:8.2f} s (timed on {args.loop} resamples, "
          f"extrapolated)")
    print(f"speed-up: {t_l / t_h:.1f}x;  target < 10 s: {'met' if t_h < 10 else 'MISSED'}")


if __name__ == "__main__":
    main()
