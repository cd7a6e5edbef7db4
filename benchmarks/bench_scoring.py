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

from serbench import metrics as M
from serbench.scoring import applicable, score_test_set


def data(n: int, k: int, rng: np.random.Generator):
    targets = rng.dirichlet(np.ones(k) * 0.6, size=n)
    probs = rng.dirichlet(np.ones(k), size=n)
    top = targets.max(axis=1)
    sets = {"AR": np.arange(n), "PR": np.flatnonzero(top > np.quantile(top, 0.2)),
            "MR": np.flatnonzero(top > np.quantile(top, 0.45))}
    return targets, probs, sets


def harness(targets, probs, sets, resamples: int) -> dict:
    """The scorer's own path: every applicable metric, one resample set per test rule."""
    out = {}
    for rule, idx in sets.items():
        names = [m for m in M.ALL if applicable(m, rule)]
        t = targets[idx]
        out[rule] = score_test_set(names, t, probs[idx], t.argmax(axis=1),
                                   n_resamples=resamples, seed=(0, 1, len(rule)))
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
