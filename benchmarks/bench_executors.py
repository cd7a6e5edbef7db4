"""Ray executor overhead: the demo grid on the local executor and on a local Ray instance.

In one run, on the demo task with the blstm-fc baseline (default settings):

1. local: every cell in this process, one after another, torch on ``--threads``
   threads;
2. ray, serial: the same cells as Ray tasks on a local Ray instance with exactly
   ``--threads`` CPUs, so one cell runs at a time on the same resources: the
   difference in wall time is Ray's overhead (scheduling, shipping the task and
   runner to the worker, returning predictions, writing records here);
3. ray, parallel: the same with every CPU of the machine, ``--threads`` per
   cell (the throughput gain, for reference);
4. local again: the spread between the two local runs is the machine's noise.

Prints the per-cell overhead (serial Ray wall time against the mean of the two
local runs) as a fraction of the mean local cell time (target < 10% for cells
of a few seconds or more), the part of it spent outside the cell body
(scheduling, the worker's imports, transfers, writing records), Ray's one-off
start-up time, and whether all runs wrote identical predictions.

    python benchmarks/bench_executors.py [--folds 1,2,3,4,5] [--rules AR] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch


def predictions(runs: Path) -> dict:
    from serbench.records import find_records

    return {r.key: pd.read_parquet(r.predictions_path) for r in find_records(runs)[0]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--folds", default="1,2,3,4,5")
    ap.add_argument("--rules", default="AR")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (= Ray CPUs) per cell")
    ap.add_argument("--config", action="append", default=[],
                    help="blstm-fc option key=value (JSON value), repeatable")
    args = ap.parse_args()
    import json

    import ray

    from serbench.executors import LocalExecutor, RayExecutor
    from serbench.plugins import resolve
    from serbench.runner import Runner
    from serbench.tasks import load_task

    if "SERBENCH_HOME" not in os.environ:
        os.environ["SERBENCH_HOME"] = tempfile.mkdtemp(prefix="serbench-bench-")
    task = load_task("demo")
    cls = resolve("blstm-fc")
    config = {k: json.loads(v) for k, v in (c.split("=", 1) for c in args.config)}
    out = Path(tempfile.mkdtemp(prefix="bench-executors-"))
    folds = [int(f) for f in args.folds.split(",")]
    rules = args.rules.split(",")

    def runner(name: str) -> Runner:
        r = Runner(task, cls, config, runs=out / name, device="cpu")
        r.prepare_features()
        return r

    torch.set_num_threads(args.threads)
    local = runner("local")
    keys = local.cells(folds, rules, [0])
    t0 = time.perf_counter()
    res = LocalExecutor().run(local, keys)
    local_s = time.perf_counter() - t0
    cell_s = float(np.mean([r.seconds for r in res]))
    assert all(r.status == "done" for r in res), [r.message for r in res]

    walls, starts, inside = {}, {}, {}
    for mode, cpus in (("serial", args.threads), ("parallel", os.cpu_count() or 1)):
        ex = RayExecutor(cpus_per_cell=args.threads, num_cpus=cpus)
        t0 = time.perf_counter()
        ex.start()
        starts[mode] = time.perf_counter() - t0
        r = runner(f"ray-{mode}")
        t0 = time.perf_counter()
        res = ex.run(r, keys)
        walls[mode] = time.perf_counter() - t0
        inside[mode] = float(np.mean([x.seconds for x in res]))
        ex.shutdown()
        assert all(x.status == "done" for x in res), [x.message for x in res]
        assert not ray.is_initialized()

    torch.set_num_threads(args.threads)
    again = runner("local-again")
    t0 = time.perf_counter()
    LocalExecutor().run(again, keys)
    local2_s = time.perf_counter() - t0

    base = predictions(out / "local")
    same = all(all(base[k].equals(v) for k, v in predictions(out / folder).items())
               for folder in ("ray-serial", "ray-parallel", "local-again"))
    n = len(keys)
    local_mean = (local_s + local2_s) / 2
    overhead = (walls["serial"] - local_mean) / n
    print(f"demo grid, blstm-fc {config or '(defaults)'}, {n} cells, {args.threads} thread(s) "
          f"per cell, {os.cpu_count()} CPUs")
    print(f"local executor          {local_s:8.1f} s   mean cell {cell_s:.2f} s")
    print(f"local executor, again   {local2_s:8.1f} s   (the spread is this machine's noise)")
    print(f"ray, {args.threads} CPU (serial)     {walls['serial']:8.1f} s   "
          f"(+ {starts['serial']:.1f} s to start Ray; mean cell inside the worker "
          f"{inside['serial']:.2f} s)")
    print(f"ray, {os.cpu_count()} CPUs (parallel)  {walls['parallel']:8.1f} s   "
          f"(+ {starts['parallel']:.1f} s to start Ray)")
    print(f"ray overhead per cell   {overhead:+.3f} s = {overhead / cell_s:+.1%} of a cell "
          "against the mean of the two local runs (target < 10%)")
    plumbing = walls["serial"] / n - inside["serial"]
    print(f"  of which outside the cell (scheduling, worker start, transfer, writing): "
          f"{plumbing:.3f} s = {plumbing / cell_s:.1%}")
    print(f"parallel speed-up       {local_s / walls['parallel']:.2f}x")
    print(f"identical predictions   {same}")


if __name__ == "__main__":
    main()
