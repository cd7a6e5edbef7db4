"""Faults: a killed run, a full disk, a permission error, two runs in one folder, a bad record.

Each leaves the results folder in a state the next run resumes from: at most
the cell in flight is lost, and no record is ever half-written or paired with
another run's predictions.
"""

import errno
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from serbench import atomic
from serbench.errors import InputError
from serbench.records import RECORD, find_records, read_predictions, read_record, write_cell
from serbench.tasks import load_task


def test_killed_run_resumes_losing_only_the_cell_in_flight(home: Path, tmp_path: Path):
    runs = tmp_path / "runs"
    args = [sys.executable, "-m", "serbench.cli", "run",
            "--seeds", "0", "--folds", "1,2,3", "--rules", "AR",
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


# ---------------------------------------------------------------- full disk, permissions


def _cell(folder: Path, value: float) -> tuple[dict, np.ndarray, np.ndarray]:
    ids = np.array(["a", "b"], dtype=object)
    probs = np.array([[value, 1 - value], [0.5, 0.5]])
    record = {"task": "t", "task_fingerprint": "f", "fold": 1, "train_rule": "AR", "seed": 0,
              "submission": {"name": "s"}, "note": value}
    return record, ids, probs


def _state(folder: Path) -> tuple[dict, np.ndarray]:
    rec = read_record(folder / RECORD)
    return rec.data, read_predictions(rec.predictions_path, ["x", "y"], np.array(["a", "b"]))


@pytest.mark.parametrize("failing", ["predictions", "record"])
@pytest.mark.parametrize("error", [errno.ENOSPC, errno.EACCES])
def test_full_disk_or_permission_error_keeps_the_previous_record(tmp_path: Path, monkeypatch,
                                                                 failing: str, error: int):
    folder = tmp_path / "cell"
    write_cell(folder, *_cell(folder, 0.9), ["x", "y"])
    before = _state(folder)
    files_before = sorted(p.name for p in folder.iterdir())

    def broken(*_args, **_kwargs):
        raise OSError(error, os.strerror(error))

    if failing == "predictions":
        monkeypatch.setattr(pq, "write_table", broken)
    else:  # the predictions land, then writing the record fails
        monkeypatch.setattr(atomic, "write_json", broken)
    with pytest.raises(InputError) as info:
        write_cell(folder, *_cell(folder, 0.2), ["x", "y"])
    assert str(folder) in str(info.value) and os.strerror(error) in str(info.value)
    assert "previous record" in info.value.fix
    after = _state(folder)
    assert after[0] == before[0]
    np.testing.assert_array_equal(after[1], before[1])  # the old record still reads its own file
    assert not list(folder.glob("*.tmp"))
    monkeypatch.undo()
    # The next successful write switches files and removes the one the old record used.
    write_cell(folder, *_cell(folder, 0.2), ["x", "y"])
    data, probs = _state(folder)
    assert data["note"] == 0.2 and probs[0, 0] == 0.2
    assert data["predictions"] == "predictions-next.parquet"
    assert sorted(p.name for p in folder.iterdir()) == ["predictions-next.parquet", RECORD]
    write_cell(folder, *_cell(folder, 0.3), ["x", "y"])
    assert sorted(p.name for p in folder.iterdir()) == files_before


def test_runner_reports_an_unwritable_results_folder(home: Path, tmp_path: Path, monkeypatch):
    from serbench import plugins
    from serbench.runner import Runner
    from serbench.tasks import load_task

    runner = Runner(load_task("demo"), plugins.resolve("blstm-fc"),
                    {"max_epochs": 1, "hidden": 8}, runs=tmp_path / "runs", device="cpu")
    runner.prepare_features()
    key = runner.cells([1], ["AR"], [0])[0]

    def full(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pq, "write_table", full)
    with pytest.raises(InputError, match="No space left on device"):
        runner.run_cell(key)
    assert find_records(tmp_path / "runs") == ([], [])
    monkeypatch.undo()
    assert runner.run_cell(key).status == "done"  # nothing stale blocks the retry


# ---------------------------------------------------------------- concurrent runs


STEADY = """
import time
import numpy as np
from serbench.submission import Submission

class Steady(Submission):
    name = "steady"
    def fit(self, train, dev, spec):
        time.sleep(1.0)  # long enough for the two runs to meet on every cell
        self.p = np.linspace(1, 2, 6) * spec.fold
    def predict_proba(self, batch):
        return np.tile(self.p / self.p.sum(), (len(batch), 1))
"""


def test_two_runs_into_one_folder_share_the_grid(home: Path, tmp_path: Path):
    """Two processes on the same grid and folder: every cell computed once, every record whole."""
    plugin = tmp_path / "steady.py"
    plugin.write_text(STEADY)
    runs = tmp_path / "runs"
    base = [sys.executable, "-m", "serbench.cli", "run", "--seeds", "0",
            "--submission", str(plugin),
            "--runs", str(runs), "--no-leaderboard", "--device", "cpu"]
    args = [*base, "--folds", "1,2,3,4,5", "--rules", "MR,AR"]
    env = {**os.environ, "SERBENCH_HOME": str(home)}
    subprocess.run([*base, "--folds", "1", "--rules", "PR"], env=env, check=True,
                   capture_output=True, timeout=300)  # prepares the task once, before the race
    procs = [subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    ran = [int(re.search(r"cells: (\d+) run", o).group(1)) for o, _ in outs]
    assert sum(ran) == 10  # no cell computed twice
    assert all(r < 10 for r in ran), ran  # and both runs really shared the grid
    records, unreadable = find_records(runs)
    assert unreadable == [] and len(records) == 11
    task = load_task("demo")
    for rec in records:
        probs = read_predictions(rec.predictions_path, task.spec.classes,
                                 task.split(rec.key.fold, "test", "AR").ids)
        want = np.linspace(1, 2, 6) / np.linspace(1, 2, 6).sum()
        np.testing.assert_allclose(probs, np.tile(want, (len(probs), 1)))


# ---------------------------------------------------------------- the leaderboard


def test_leaderboard_skips_and_reports_unreadable_records(home: Path, tmp_path: Path):
    from serbench import leaderboard as lb
    from serbench import plugins
    from serbench.runner import Runner

    runs = tmp_path / "runs"
    runner = Runner(load_task("demo"), plugins.resolve("blstm-fc"),
                    {"max_epochs": 1, "hidden": 8}, runs=runs, device="cpu")
    runner.prepare_features()
    for key in runner.cells([1, 2], ["AR"], [0]):
        assert runner.run_cell(key).status == "done"
    broken = runs / "demo" / "blstm-fc" / "fold2-AR-seed0" / RECORD
    broken.write_text('{"schema": 1, "task": "demo", "fo')  # a truncated record
    board = lb.build(runs, n_resamples=10)
    assert [p for p, _ in board.skipped] == [str(broken)]
    assert "unreadable run record" in board.skipped[0][1]
    written = lb.write(board, tmp_path / "lb")
    md = next(p for p in written if p.suffix == ".md").read_text()
    assert str(broken) in md
