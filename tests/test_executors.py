"""Executors: a local Ray instance gives the records the local executor gives; cells time out.

The Ray tests start a private Ray instance bound to 127.0.0.1 (two CPUs) once
per module.  They need the ``ray`` extra (``pip install -e ".[ray]"``; CI
installs it).
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from serbench import plugins
from serbench.executors import Hooks
from serbench.features import LogMel, build_store
from serbench.records import find_records
from serbench.runner import Runner
from serbench.tasks import load_task

SMALL = {"max_epochs": 2, "hidden": 16}
#: Provenance that differs between any two runs of the same cell.
VOLATILE = {"timings"}

FLAKY = textwrap.dedent('''
    import os
    import time
    import numpy as np
    from serbench.submission import Submission

    class Flaky(Submission):
        """Fold 1 fine, fold 2 raises, fold 3 kills its worker process, fold 4 hangs."""
        name = "flaky"
        def fit(self, train, dev, spec):
            if spec.fold == 2:
                raise RuntimeError("boom in fit")
            if spec.fold == 3:
                os._exit(3)
            if spec.fold == 4:
                end = time.time() + 60
                while time.time() < end:
                    try:
                        time.sleep(0.05)
                    except Exception:  # a submission that swallows errors cannot stop a timeout
                        pass
        def predict_proba(self, batch):
            return np.full((len(batch), 6), 1 / 6)
''')


@pytest.fixture(scope="module")
def ray_local():
    pytest.importorskip("ray", reason='the Ray tests need the ray extra: pip install -e ".[ray]"')
    from serbench.executors import RayExecutor

    ex = RayExecutor(num_cpus=2, cpus_per_cell=1)
    ex.start()
    yield ex
    ex.close()


@pytest.fixture
def demo(home):
    return load_task("demo")


def _cells(runs: Path) -> dict:
    out = {}
    for rec in find_records(runs)[0]:
        data = {k: v for k, v in rec.data.items() if k not in VOLATILE}
        preds = pd.read_parquet(rec.predictions_path)
        out[(rec.key.fold, rec.key.train_rule)] = (data, preds)
    return out


def test_ray_and_local_executors_write_identical_records(demo, tmp_path: Path, ray_local):
    from serbench.executors import LocalExecutor

    cls = plugins.resolve("blstm-fc")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a Ray cell gets one CPU and one torch thread
    try:
        local = Runner(demo, cls, SMALL, runs=tmp_path / "local", device="cpu")
        local.prepare_features()
        keys = local.cells([1, 2, 3], ["MR", "AR"], [0])
        assert [r.status for r in LocalExecutor().run(local, keys, Hooks())] == ["done"] * 6
    finally:
        torch.set_num_threads(threads)
    remote = Runner(demo, cls, SMALL, runs=tmp_path / "ray", device="cpu")
    remote.prepare_features()
    seen: list = []

    class Seen(Hooks):
        def done(self, result):
            seen.append(result)

    results = ray_local.run(remote, remote.cells([1, 2, 3], ["MR", "AR"], [0]), Seen())
    assert [r.status for r in results] == ["done"] * 6 and len(seen) == 6
    a, b = _cells(tmp_path / "local"), _cells(tmp_path / "ray")
    assert sorted(a) == sorted(b) == sorted((f, r) for f in (1, 2, 3) for r in ("MR", "AR"))
    for cell in a:
        assert a[cell][0] == b[cell][0], cell  # every provenance field, threads included
        pd.testing.assert_frame_equal(a[cell][1], b[cell][1], check_exact=True)
    assert a[(1, "AR")][0]["threads"] == 1
    # Resume: a second Ray run over the same folder computes nothing.
    again = ray_local.run(remote, remote.cells([1, 2, 3], ["MR", "AR"], [0]), Hooks())
    assert {r.status for r in again} == {"skipped"}


def test_ray_feature_shards_build_the_same_cache(demo, tmp_path: Path, monkeypatch, ray_local):
    meta = demo.meta
    ids = meta.index.to_numpy()[:40]
    paths = meta["audio_path"].to_numpy()[:40]
    durations = meta["duration"].to_numpy(dtype=float)[:40]
    spec = LogMel()
    monkeypatch.setenv("SERBENCH_HOME", str(tmp_path / "h1"))
    here = build_store(ids, paths, durations, spec)
    monkeypatch.setenv("SERBENCH_HOME", str(tmp_path / "h2"))
    shards: list[int] = []

    def mapper(fn, items):
        shards.append(len(items))
        return ray_local.map(fn, items)

    there = build_store(ids, paths, durations, spec, mapper=mapper)
    assert shards and shards[0] > 1  # extraction really was split into shards
    assert here.path != there.path and len(here) == len(there) == 40
    for u in ids:
        np.testing.assert_array_equal(here[u], there[u])


def test_ray_contains_a_failing_or_dying_cell(demo, tmp_path: Path, ray_local):
    path = tmp_path / "flaky.py"
    path.write_text(FLAKY)  # loaded from a file: Ray ships the class by value
    runner = Runner(demo, plugins.resolve(str(path)), runs=tmp_path / "runs", device="cpu",
                    cell_timeout=12)  # generous: a loaded CI machine is slow
    results = {r.key.fold: r for r in ray_local.run(runner, runner.cells([1, 2, 3, 4], ["AR"],
                                                                           [0]), Hooks())}
    assert results[1].status == "done"
    assert results[2].status == "failed" and "boom in fit" in results[2].message
    # os._exit in fit: the cell's own process (under a time limit) or the worker dies
    assert results[3].status == "failed" and ("worker" in results[3].message.lower()
                                              or "died" in results[3].message)
    assert results[4].status == "failed" and "time limit of 12 s" in results[4].message
    for fold in (2, 3, 4):
        assert (results[fold].key.folder(tmp_path / "runs") / "error.txt").exists()
    assert [r.key.fold for r in find_records(tmp_path / "runs")[0]] == [1]


def test_local_cell_timeout_fails_only_that_cell(demo, tmp_path: Path):
    path = tmp_path / "flaky.py"
    path.write_text(FLAKY)
    runner = Runner(demo, plugins.resolve(str(path)), runs=tmp_path / "runs", device="cpu",
                    cell_timeout=12)
    slow, fine = (runner.run_cell(k) for k in runner.cells([4, 1], ["AR"], [0]))
    assert slow.status == "failed" and slow.message.startswith("CellTimeout")
    assert 11.9 < slow.seconds < 40
    assert fine.status == "done"
    err = (slow.key.folder(tmp_path / "runs") / "error.txt").read_text()
    assert "time limit of 12 s" in err


def test_run_cli_with_ray_executor(home: Path, tmp_path: Path, ray_local):
    from typer.testing import CliRunner

    from serbench.cli import app

    runs = tmp_path / "runs"
    res = CliRunner().invoke(app, [
        "run", "--seeds", "0", "--folds", "1", "--rules", "AR", "--config", "max_epochs=1",
        "--config", "hidden=8", "--runs", str(runs), "--out", str(tmp_path / "lb"),
        "--device", "cpu", "--resamples", "10", "--executor", "ray"])
    assert res.exit_code == 0, res.output
    assert "executor ray" in res.output and "1 run, 0 already done, 0 failed" in res.output
    rec = json.loads((runs / "demo" / "blstm-fc" / "fold1-AR-seed0" / "record.json").read_text())
    assert rec["threads"] == 1 and rec["device"] == "cpu"


def test_ray_checks_the_claim_again_after_the_lock(home: Path, tmp_path: Path, ray_local):
    """The Ray executor claims through the runner too: a cell finished by another run between
    the first check and the lock is not computed again (the Ray copy used to skip the recheck)."""
    from test_loud_failures import done_after_the_lock, quick_runner

    runner = quick_runner(tmp_path)
    (key,) = runner.cells([1], ["AR"], [0])
    calls = done_after_the_lock(runner)
    (res,) = ray_local.run(runner, [key], Hooks())
    assert res.status == "skipped" and res.message == "already done" and len(calls) == 2
    assert not find_records(tmp_path / "runs")[0]


def test_local_jobs_write_the_records_of_one_at_a_time(demo, tmp_path: Path):
    """Two cells at a time in forked children: the same records, and a failure stays in its cell."""
    import numpy as np

    from serbench.executors import LocalExecutor
    from serbench.submission import Submission

    cls = plugins.resolve("blstm-fc")
    runs = {}
    for jobs in (1, 2):
        r = Runner(demo, cls, SMALL, runs=tmp_path / f"j{jobs}", device="cpu")
        r.prepare_features()
        res = LocalExecutor(1, jobs).run(r, r.cells([1, 2], ["MR", "AR"], [0]), Hooks())
        assert [x.status for x in res].count("done") == 4
        runs[jobs] = _cells(tmp_path / f"j{jobs}")
    assert runs[1].keys() == runs[2].keys()
    for key, (data, preds) in runs[1].items():
        assert data == runs[2][key][0] and preds.equals(runs[2][key][1]), key

    class Flaky(Submission):
        name = "flaky"
        version = "1"

        def fit(self, train, dev, spec):
            if spec.fold == 2:
                raise RuntimeError("boom on fold 2")
            self.p = train.targets.mean(axis=0)

        def predict_proba(self, batch):
            return np.tile(self.p / self.p.sum(), (len(batch), 1))

    r = Runner(demo, Flaky, {}, runs=tmp_path / "flaky", device="cpu")
    res = {x.key.fold: x for x in LocalExecutor(1, 2).run(r, r.cells([1, 2, 3], ["AR"], [0]),
                                                           Hooks())}
    assert res[1].status == res[3].status == "done"
    assert res[2].status == "failed" and "boom on fold 2" in res[2].message
