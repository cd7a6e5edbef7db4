"""Export time of a prepared task (issue target: CREMA-D, 7,442 clips, under 30 s on 2 cores).

Loads the prepared task (its fingerprint included, as ``serbench export``
does), then writes the DatasetDict ``--repeats`` times into fresh folders and
prints each time and the export's size.

    SERBENCH_HOME=... serbench prepare crema-d --source /path/to/CREMA-D
    SERBENCH_HOME=... python benchmarks/bench_export.py --task crema-d [--repeats 3] [--audio]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from serbench.export import export_task
from serbench.tasks import load_task


def size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="crema-d")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--audio", action="store_true", help="add the Audio column (embeds bytes)")
    args = ap.parse_args()
    t0 = time.perf_counter()
    task = load_task(args.task)
    _ = task.fingerprint
    load_s = time.perf_counter() - t0
    print(f"{args.task}: {len(task.counts.ids)} clips, {len(task.ratings)} ratings, "
          f"{task.n_folds} folds; load + fingerprint {load_s:.2f} s; cpus {os.cpu_count()}")
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            out = Path(tmp) / f"export{i}"
            t = time.perf_counter()
            export_task(task, out, audio=args.audio)
            seconds = time.perf_counter() - t
            print(f"export {i + 1}: {seconds:.2f} s, {size(out) / 1e6:.1f} MB")
            shutil.rmtree(out)
    # what `serbench export` costs end to end: load, fingerprint, build, save
    print(f"end to end (load + last export): {load_s + seconds:.2f} s")


if __name__ == "__main__":
    main()
