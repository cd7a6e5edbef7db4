"""Faults: a run killed mid-cell loses only that cell, and resuming finishes the grid."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from serbench.records import RECORD, find_records


def test_killed_run_resumes_losing_only_the_cell_in_flight(home: Path, tmp_path: Path):
    runs = tmp_path / "runs"
    args = [sys.executable, "-m", "serbench.cli", "run", "--folds", "1,2,3", "--rules", "AR",
            "--config", "max_epochs=4", "--config", "hidden=16", "--runs", str(runs),
            "--out", str(tmp_path / "lb"), "--device", "cpu", "--resamples", "20"]
    env = {**os.environ, "SERBENCH_HOME": str(home)}
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    first = runs / "demo" / "blstm-fc" / "fold1-AR-seed0" / RECORD
    deadline = time.time() + 240
    while not first.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert first.exists(), "the first cell never finished"
    os.killpg(proc.pid, signal.SIGKILL)  # mid-way through the second cell
    proc.wait()
    records, unreadable = find_records(runs)
    done_before = {r.key.fold for r in records}
    assert 1 in done_before and len(done_before) < 3
    assert unreadable == []  # the kill left no half-written record behind
    stamp = first.stat().st_mtime_ns
    res = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert f"{len(done_before)} already done" in res.stdout
    records, skipped = find_records(runs)
    assert sorted(r.key.fold for r in records) == [1, 2, 3] and skipped == []
    assert first.stat().st_mtime_ns == stamp  # the finished cell was not redone
