"""Failures are loud: exit codes through a real process, one-line errors, no stale results.

Each test here failed before the fix it names (issue 12): failed cells, a tampered
leaderboard and a flipped split exited 0; usage mistakes printed a traceback; a
record with broken predictions counted as done; truncated CSVs and a read-only
home gave raw tracebacks; a submission that catches ``BaseException`` outlived
``--cell-timeout``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import shared
from serbench import plugins
from serbench.errors import InputError
from serbench.records import find_records
from serbench.runner import Runner
from serbench.tasks import load_task


def serbench(*args: str, home: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "SERBENCH_HOME": str(home), "COLUMNS": "80"}
    return subprocess.run([sys.executable, "-m", "serbench.cli", *args], capture_output=True,
                          text=True, env=env, timeout=timeout)


def one_message(res: subprocess.CompletedProcess) -> str:
    """The error text, asserting it is one message without a traceback."""
    assert "Traceback" not in res.stderr and "Traceback" not in res.stdout, res.stderr
    assert res.stderr.count("error:") == 1, res.stderr
    return " ".join(res.stderr.split())


def one_block(res: subprocess.CompletedProcess) -> str:
    """:func:`one_message`, and the message is the whole of stderr: no blank line or progress
    bars before it (rich used to print both when bars were stopped by the error)."""
    msg = one_message(res)
    assert res.stderr.startswith("error:"), repr(res.stderr[:300])
    return msg


FAILING = textwrap.dedent('''
    import numpy as np
    from serbench.submission import Submission

    class Failing(Submission):
        name = "failing"
        def __init__(self, mode: str = "raise") -> None:
            super().__init__(mode=mode)
            self.mode = mode
        def fit(self, train, dev, spec):
            if self.mode == "raise":
                raise RuntimeError("boom")
        def predict_proba(self, batch):
            if self.mode == "nan":
                return np.full((len(batch), 6), np.nan)
            return np.full((len(batch), 6), 1 / 6)
''')


@pytest.mark.parametrize("mode", ["raise", "nan"])
def test_run_with_a_failed_cell_exits_1(home: Path, tmp_path: Path, mode: str):
    plugin = tmp_path / "failing.py"
    plugin.write_text(FAILING)
    res = serbench("run", "--submission", str(plugin), "--config", f"mode={mode}", "--folds", "1",
                   "--rules", "AR", "--seeds", "0", "--runs", str(tmp_path / "runs"),
                   "--no-leaderboard", "--device", "cpu", home=home)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "1 failed" in res.stdout and "failed" in res.stderr
    assert "Traceback" not in res.stderr  # the traceback is in error.txt, not on screen


def test_usage_mistakes_are_one_line_and_exit_2(home: Path, tmp_path: Path):
    from concurrent.futures import ThreadPoolExecutor

    empty_record = tmp_path / "runs" / "demo" / "x" / "fold1-AR-seed0" / "record.json"
    empty_record.parent.mkdir(parents=True)
    empty_record.write_text("")

    cases = [
        (("compare",), "Missing argument"),
        (("tasks", "show"), "Missing argument"),
        (("run", "--no-such-option"), "No such option"),
        (("no-such-command",), "No such command"),
        (("run", "--folds", "abc"), "--folds 'abc' is not a comma-separated list of integers"),
        (("run", "--config", "hidden"), "is not key=value"),
        (("run", "--config", "hiden=8"), "did you mean hidden?"),
        (("run", "--config", "hidden=abc"), "blstm-fc.hidden must be int"),
        (("run", "--config", "feature=mfcc"), "refused its configuration"),
        (("run", "--executor", "slurm"), "unknown executor 'slurm'"),
        (("run", "--seeds", ""), "--seeds '' is empty"),  # used to mean every seed
        (("run", "--rules", " "), "--rules ' ' is empty"),
        (("run", "--resamples", "-1"), "Invalid value for '--resamples'"),
        (("leaderboard", "--seed", "-1"), "Invalid value for '--seed'"),
        (("ablate", "--losses", ""), "--losses '' is empty"),
        # found by the loud2 campaign: a traceback, exit 0 or the wrong option named before
        (("ablate", "--losses", "foo"), "--losses: unknown loss(es) ['foo']"),
        (("run", "--task", "dmeo", "--submission", "blstm_fc"),
         "unknown task 'dmeo' (did you mean 'demo'?)"),
        (("ablate", "--epochs", "0"), "Invalid value for '--epochs'"),  # ran with -1 epochs
        (("ablate", "--alphas", "-1"), "--alphas '-1': penalty weights are finite numbers >= 0"),
        (("export", "demo", "--to", "/proc/serbench-x"), "--to /proc/serbench-x: cannot write"),
        (("prepare", "crema-d", "--source", "/no/such/release"),
         "--source /no/such/release: no such file or folder"),
        (("score", str(empty_record.parents[3])),
         f"1 unreadable, e.g. {empty_record}: unreadable run record"),
        (("score", "p.csv", "--task", "demo", "--name", "x", "--runs", str(empty_record)),
         f"--runs {empty_record} is a file, not a folder"),  # was a NotADirectoryError
    ]
    with ThreadPoolExecutor(2) as pool:  # independent processes: two at a time
        results = list(pool.map(lambda c: serbench(*c[0], home=home, timeout=120), cases))
    for (args, expect), res in zip(cases, results, strict=True):
        assert res.returncode == 2, (args, res.returncode, res.stderr)
        assert expect in one_block(res), (args, res.stderr)
    not_a_folder = tmp_path / "home-file"
    not_a_folder.write_text("")
    res = serbench("leaderboard", "--out", str(tmp_path / "b"), home=not_a_folder)
    assert res.returncode == 2 and "is a file, not a folder" in one_message(res)
    assert not (tmp_path / "b" / "leaderboard.json").exists()


def test_no_arguments_prints_help_and_exits_0(home: Path):
    res = serbench(home=home)
    assert res.returncode == 0 and "Usage" in res.stdout


def test_rich_markup_does_not_eat_brackets(home: Path):
    res = serbench("run", "--help", home=home)
    assert "serbench[ray]" in "".join(res.stdout.split())


def test_leaderboard_check_with_a_tampered_value_exits_1(home: Path, tmp_path: Path):
    from runs_fixture import make_runs, prior

    demo = load_task("demo")
    runs, out = tmp_path / "runs", tmp_path / "board"
    make_runs(demo, runs, "prior", prior, rules=("AR",))
    res = serbench("leaderboard", "--runs", str(runs), "--out", str(out), "--resamples", "20",
                   home=home)
    assert res.returncode == 0, res.stderr
    res = serbench("leaderboard", "--runs", str(runs), "--out", str(out), "--resamples", "20",
                   "--check", home=home)
    assert res.returncode == 0, res.stderr
    board = json.loads((out / "leaderboard.json").read_text())
    text = json.dumps(board)

    def tamper(node):
        if isinstance(node, dict):
            for k, v in node.items():
                if isinstance(v, float) and k in ("mean", "value"):
                    node[k] = v + 0.01
                    return True
                if tamper(v):
                    return True
        if isinstance(node, list):
            return any(tamper(v) for v in node)
        return False

    assert tamper(board), text[:500]
    (out / "leaderboard.json").write_text(json.dumps(board))
    res = serbench("leaderboard", "--runs", str(runs), "--out", str(out), "--resamples", "20",
                   "--check", home=home)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "difference" in res.stderr


def test_tasks_verify_with_a_flipped_split_exits_1(home: Path, tmp_path: Path):
    released = shared("chou-labels", "iemocap-9class")
    res = serbench("prepare", "iemocap-9class", "--source", str(released), home=home)
    assert res.returncode == 0, res.stderr
    flipped = shutil.copytree(released, tmp_path / "flipped")
    d1 = flipped / "D_1.csv"
    lines = d1.read_text().splitlines()
    col = lines[0].split(",").index("Split_Set")
    row = lines[1].split(",")
    row[col] = "Development" if row[col] == "Train" else "Train"
    lines[1] = ",".join(row)
    d1.write_text("\n".join(lines) + "\n")
    assert serbench("tasks", "verify", "iemocap-9class", "--against", str(released),
                    "--no-targets", home=home).returncode == 0
    res = serbench("tasks", "verify", "iemocap-9class", "--against", str(flipped),
                   "--no-targets", home=home)
    assert res.returncode == 1, res.stdout + res.stderr


def quick_runner(tmp_path: Path) -> Runner:
    """A runner of a submission that fits in no time, on demo, results in tmp_path/runs."""
    plugin = tmp_path / "failing.py"
    plugin.write_text(FAILING)
    return Runner(load_task("demo"), plugins.resolve(str(plugin)), {"mode": "ok"},
                  runs=tmp_path / "runs", device="cpu")


def done_after_the_lock(runner: Runner) -> list:
    """Make the cell look not done at the first check and done (by another run) at the second."""
    calls: list = []

    def is_done(k):
        calls.append(k)
        return len(calls) > 1

    runner.is_done = is_done  # type: ignore[method-assign]
    return calls


def test_a_record_with_broken_predictions_is_recomputed(home: Path, tmp_path: Path):
    runner = quick_runner(tmp_path)
    (key,) = runner.cells([1], ["AR"], [0])
    assert runner.run_cell(key).status == "done"
    assert runner.run_cell(key).status == "skipped"
    (rec,) = find_records(tmp_path / "runs")[0]
    rec.predictions_path.write_bytes(b"not parquet")
    again = runner.run_cell(key)
    assert again.status == "done" and again.message.startswith("recomputed")
    assert "predictions were broken" in again.message
    assert runner.run_cell(key).status == "skipped"  # and now it is sound again


def test_the_claim_is_checked_again_after_the_lock(home: Path, tmp_path: Path):
    """Another run finishes the cell between the first check and the lock: nothing is redone."""
    from serbench.executors import Hooks, LocalExecutor

    runner = quick_runner(tmp_path)
    (key,) = runner.cells([1], ["AR"], [0])
    calls = done_after_the_lock(runner)
    (res,) = LocalExecutor().run(runner, [key], Hooks())
    assert res.status == "skipped" and res.message == "already done" and len(calls) == 2
    assert not find_records(tmp_path / "runs")[0]


SWALLOWER = textwrap.dedent('''
    import time
    import numpy as np
    from serbench.submission import Submission

    class Swallower(Submission):
        name = "swallower"
        def fit(self, train, dev, spec):
            end = time.time() + 60
            while time.time() < end:
                try:
                    time.sleep(0.05)
                except BaseException:  # swallows everything, KeyboardInterrupt included
                    pass
        def predict_proba(self, batch):
            return np.full((len(batch), 6), 1 / 6)
''')


def test_cell_timeout_stops_a_submission_that_catches_base_exception(home: Path, tmp_path: Path):
    plugin = tmp_path / "swallower.py"
    plugin.write_text(SWALLOWER)
    res = serbench("run", "--submission", str(plugin), "--folds", "1", "--rules", "AR",
                   "--seeds", "0", "--runs", str(tmp_path / "runs"), "--no-leaderboard",
                   "--device", "cpu", "--cell-timeout", "3", home=home, timeout=60)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "time limit of 3 s" in res.stderr
    err = (tmp_path / "runs" / "demo" / "swallower" / "fold1-AR-seed0" / "error.txt").read_text()
    assert "killed" in err


@pytest.mark.parametrize("cut", ["quoted", "columns"])
def test_a_truncated_crema_d_table_is_one_message(home: Path, tmp_path: Path, cut: str):
    lines = shared("crema-d", "tabulatedVotes.csv").read_bytes().split(b"\n")
    line = lines[100]
    if cut == "quoted":
        tail = line[:line.index(b'"1') + 5]  # inside the quoted fileName
        expect = "ends inside a quoted field that starts at row 101: is it truncated?"
    else:
        tail = b",".join(line.split(b",")[:12])  # between fields, trailing columns lost
        expect = "the last row (101) has 12 of the header's 27 columns"
    src = tmp_path / "crema"
    src.mkdir()
    (src / "tabulatedVotes.csv").write_bytes(b"\n".join(lines[:100]) + b"\n" + tail)
    res = serbench("prepare", "crema-d", "--source", str(src), home=home)
    assert res.returncode == 2
    msg = one_message(res)
    assert expect in msg and "tabulatedVotes.csv, row 101" in msg and "task.yaml" not in msg


@pytest.fixture
def read_only_folder(tmp_path: Path):
    """An empty folder nobody can write into: a read-only mount as root, permission bits else."""
    folder = tmp_path / "ro"
    folder.mkdir()
    if os.geteuid() == 0:
        res = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)],
                             capture_output=True, text=True)
        if res.returncode != 0:
            pytest.skip(f"root cannot make a read-only folder here (mount: {res.stderr.strip()})")
        yield folder
        subprocess.run(["umount", str(folder)], check=False)
    else:
        os.chmod(folder, stat.S_IRUSR | stat.S_IXUSR)
        yield folder
        os.chmod(folder, stat.S_IRWXU)


def test_a_read_only_home_is_one_message_naming_the_folder(read_only_folder: Path):
    res = serbench("prepare", "demo", home=read_only_folder)
    assert res.returncode == 2
    msg = one_message(res)
    assert str(read_only_folder) in msg and "SERBENCH_HOME" in msg


def test_a_read_only_results_folder_is_one_message(home: Path, read_only_folder: Path,
                                                   tmp_path: Path):
    plugin = tmp_path / "failing.py"
    plugin.write_text(FAILING)
    res = serbench("run", "--submission", str(plugin), "--config", "mode=ok", "--folds", "1",
                   "--rules", "AR", "--seeds", "0", "--runs", str(read_only_folder / "runs"),
                   "--no-leaderboard", "--device", "cpu", home=home)
    assert res.returncode == 2
    assert str(read_only_folder) in one_message(res)


def test_one_bad_private_task_does_not_hide_the_others(home: Path, tasks_dir: Path):
    (tasks_dir / "broken").mkdir()
    (tasks_dir / "broken" / "task.yaml").write_text("name: broken\ncorpus: {reader: nope}\n")
    res = serbench("tasks", "list", home=home)
    assert res.returncode == 0, res.stderr
    assert "demo" in res.stdout and "broken" in res.stdout and "could not be read" in res.stderr
    rows = json.loads(serbench("tasks", "list", "--json", home=home).stdout)
    assert {r["task"] for r in rows} >= {"demo", "broken"}
    assert "error" in next(r for r in rows if r["task"] == "broken")


def test_tables_never_truncate_identifiers(home: Path):
    env = {**os.environ, "SERBENCH_HOME": str(home), "COLUMNS": "40"}
    res = subprocess.run([sys.executable, "-m", "serbench.cli", "tasks", "list"],
                         capture_output=True, text=True, env=env, timeout=60)
    assert "msp-improv-4class-raw" in res.stdout and "…" not in res.stdout
    assert "prepared" in res.stdout and "question" in res.stdout  # no column squeezed away


def test_a_misspelled_reader_in_a_task_file_is_refused_when_parsed(tasks_dir: Path, home: Path):
    (tasks_dir / "typo").mkdir()
    demo = (Path(__file__).parents[1] / "tasks" / "demo" / "task.yaml").read_text()
    (tasks_dir / "typo" / "task.yaml").write_text(demo.replace("reader: demo", "reader: dmeo")
                                                  .replace("name: demo", "name: typo"))
    res = serbench("tasks", "show", "typo", home=home)
    assert res.returncode == 2
    msg = one_message(res)
    assert "corpus.reader 'dmeo' is not a known reader" in msg and "task.yaml" in msg


def test_ctrl_c_says_what_is_kept_and_exits_130(home: Path, tmp_path: Path):
    import signal
    import time

    plugin = tmp_path / "swallower.py"
    plugin.write_text(SWALLOWER.replace("except BaseException:", "except Exception:"))
    runs = tmp_path / "runs"
    env = {**os.environ, "SERBENCH_HOME": str(home)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "serbench.cli", "run", "--submission", str(plugin), "--folds",
         "1", "--rules", "AR", "--seeds", "0", "--runs", str(runs), "--no-leaderboard",
         "--device", "cpu"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    while not (runs / "demo").exists() and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)  # inside fit
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted: every finished cell is kept" in err and "Traceback" not in err


def test_a_board_with_an_unprepared_task_is_never_rewritten_without_it(home: Path,
                                                                        tmp_path: Path):
    """Rows of a task that is not prepared here (its records cannot be scored) are not
    dropped: ``serbench leaderboard`` refuses (exit 2, nothing written), and ``serbench run``
    records its cells, prints its 3x3 and leaves the stored board as it was."""
    import shutil

    committed = Path(__file__).parents[1] / "leaderboard" / "runs" / "emodb"
    cell = next(committed.glob("*/fold1-MR-seed0"), None)
    if cell is None:
        pytest.skip("no committed EmoDB record in leaderboard/runs/emodb")
    runs, board = tmp_path / "runs", tmp_path / "board"
    shutil.copytree(cell, runs / "emodb" / "svm" / "fold1-MR-seed0")  # emodb: not prepared here
    board.mkdir()
    stored = '{"tasks": [{"task": "emodb", "submissions": []}]}\n'
    (board / "leaderboard.json").write_text(stored)
    res = serbench("leaderboard", "--runs", str(runs), "--out", str(board), "--resamples", "20",
                   home=home)
    assert res.returncode == 2, res.stdout + res.stderr
    assert "holds rows (emodb) that rewriting it would drop: emodb is not prepared here" \
        in one_message(res)
    assert (board / "leaderboard.json").read_text() == stored and not (board / "README.md").exists()
    plugin = tmp_path / "uniform.py"
    plugin.write_text(FAILING)
    res = serbench("run", "--submission", str(plugin), "--config", "mode=uniform", "--folds", "1",
                   "--rules", "AR", "--seeds", "0", "--runs", str(runs), "--out", str(board),
                   "--resamples", "20", "--device", "cpu", home=home)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "leaderboard not rewritten" in res.stderr and "train \\ test" in res.stdout
    assert (board / "leaderboard.json").read_text() == stored
    assert (runs / "demo" / "failing" / "fold1-AR-seed0" / "record.json").exists()
    fresh = tmp_path / "fresh"  # a folder without rows of emodb loses nothing: written
    res = serbench("leaderboard", "--runs", str(runs), "--out", str(fresh), "--resamples", "20",
                   home=home)
    assert res.returncode == 0 and (fresh / "README.md").exists(), res.stderr


def test_score_scores_the_good_records_and_exits_1_on_a_stale_one(home: Path, tmp_path: Path):
    """One record made on another task fingerprint does not hide the others: they are scored,
    the stale one is named (exit 1).  Alone, it is the one message of a user's mistake (2)."""
    import json as _json

    from runs_fixture import make_runs, prior

    from serbench.tasks import load_task

    runs = tmp_path / "runs"
    make_runs(load_task("demo"), runs, "prior", prior, rules=("AR",), folds=(1, 2))
    stale = runs / "demo" / "prior" / "fold2-AR-seed0" / "record.json"
    rec = _json.loads(stale.read_text())
    rec["task_fingerprint"] = "0" * 64
    stale.write_text(_json.dumps(rec))
    res = serbench("score", str(runs), "--resamples", "20", home=home)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "fold 1" in res.stdout and "skipped" in res.stderr
    assert "record was made on task fingerprint 000000000000" in " ".join(res.stderr.split())
    assert res.stderr.count(str(stale)) == 1  # the record's path is not repeated in its line
    assert "Traceback" not in res.stderr
    res = serbench("score", str(stale.parent), "--resamples", "20", home=home)
    assert res.returncode == 2 and "fingerprint 000000000000" in one_message(res)


def test_a_leaderboard_is_not_replaced_by_mistake(home: Path, tmp_path: Path):
    """A typo in --runs, a folder of other files as --out, or runs that lack some of the stored
    board's submissions: one message, exit 2, nothing written; --replace drops rows on purpose."""
    from runs_fixture import make_runs, prior

    from serbench.tasks import load_task

    demo = load_task("demo")
    runs, board = tmp_path / "runs", tmp_path / "board"
    make_runs(demo, runs / "a", "prior", prior, rules=("AR",), folds=(1,))
    make_runs(demo, runs / "b", "prior2", prior, rules=("AR",), folds=(1,))
    res = serbench("leaderboard", "--runs", str(runs), "--out", str(board), "--resamples", "20",
                   home=home)
    assert res.returncode == 0, res.stderr
    stored = (board / "leaderboard.json").read_text()
    for args, expect in [
        (("--runs", str(tmp_path / "rnus")), "no such folder"),
        (("--runs", str(runs / "a")), "holds rows (demo/prior2) that rewriting it would drop"),
    ]:
        res = serbench("leaderboard", *args, "--out", str(board), "--resamples", "20", home=home)
        assert res.returncode == 2 and expect in one_message(res), (args, res.stderr)
        assert (board / "leaderboard.json").read_text() == stored
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "README.md").write_text("my notes")
    res = serbench("leaderboard", "--runs", str(runs), "--out", str(mine), home=home)
    assert res.returncode == 2 and "not a serbench leaderboard" in one_message(res)
    assert (mine / "README.md").read_text() == "my notes"
    res = serbench("leaderboard", "--runs", str(runs / "a"), "--out", str(board), "--replace",
                   "--resamples", "20", home=home)
    assert res.returncode == 0 and "prior2" not in (board / "leaderboard.json").read_text()


# ------------------------------------------------ loud2: bad input found by earlier reviews


def test_compare_json_writes_null_for_an_undefined_value(home: Path, tmp_path: Path):
    """Two identical submissions: the subset t statistic is 0/0, undefined.  --json used to
    write a bare NaN (not JSON); it is null now, and the human text still says n/a."""
    from runs_fixture import make_runs, prior

    demo = load_task("demo")
    make_runs(demo, tmp_path / "a", "prior", prior, rules=("AR",), folds=(1, 2))
    make_runs(demo, tmp_path / "b", "prior2", prior, rules=("AR",), folds=(1, 2))
    a, b = tmp_path / "a" / "demo" / "prior", tmp_path / "b" / "demo" / "prior2"
    res = serbench("compare", str(a), str(b), "--json", "--resamples", "20", home=home)
    assert res.returncode == 0, res.stderr

    def refuse(name: str) -> None:
        raise ValueError(f"not JSON: {name}")

    got = json.loads(res.stdout, parse_constant=refuse)
    assert got["t_subsets"] is None and got["p_subsets"] is None
    assert got["t_test_refused"] == "no difference between the two on any subset"
    assert got["diff"] == 0.0 and got["mean_a"] == got["mean_b"] and got["cells"] == 2
    res = serbench("compare", str(a), str(b), "--resamples", "20", home=home)
    assert res.returncode == 0 and "n/a (no difference between the two on any subset)" in \
        res.stdout


CHECKPOINTED = textwrap.dedent('''
    import numpy as np
    import torch
    from serbench.submission import Submission

    class Ckpt(Submission):
        name = "ckpt"
        def fit(self, train, dev, spec):
            pass
        def predict_proba(self, batch):
            return np.full((len(batch), 6), 1 / 6)
        def checkpoint(self):
            return {"w": torch.zeros(1)}
        def restore(self, tensors, spec, features):
            pass
''')


def test_load_models_from_a_run_without_saved_models_names_the_cell(home: Path,
                                                                      tmp_path: Path):
    """A stored run made without --save-models used to stop with KeyError: 'checkpoint'."""
    from runs_fixture import make_runs, prior

    plugin = tmp_path / "ckpt.py"
    plugin.write_text(CHECKPOINTED)
    make_runs(load_task("demo"), tmp_path / "old", "ckpt", prior, rules=("AR",), folds=(1,))
    args = ("run", "--submission", str(plugin), "--folds", "1", "--rules", "AR", "--seeds", "0",
            "--runs", str(tmp_path / "new"), "--no-leaderboard", "--device", "cpu")
    res = serbench(*args, "--load-models", str(tmp_path / "old"), home=home)
    assert res.returncode == 2, res.stdout + res.stderr
    msg = one_block(res)
    assert "fold 1 AR seed 0 of demo/ckpt has no saved model" in msg
    assert "made without --save-models" in msg and "KeyError" not in msg
    assert str(tmp_path / "old" / "demo" / "ckpt" / "fold1-AR-seed0" / "record.json") in msg
    assert not list((tmp_path / "new").rglob("record.json"))  # refused before any cell ran
    res = serbench(*args, "--load-models", str(tmp_path / "nowhere"), home=home)
    assert res.returncode == 2 and "--load-models" in one_block(res) and \
        "no such folder" in res.stderr


def test_a_malformed_stored_leaderboard_is_exit_2_for_check(home: Path, tmp_path: Path):
    """A stored leaderboard.json that is a JSON list (or an object without a tasks list) is
    malformed input, not a difference: exit 2 naming the file, the file left as it was."""
    from runs_fixture import make_runs, prior

    from serbench import leaderboard as lb

    runs, board = tmp_path / "runs", tmp_path / "board"
    make_runs(load_task("demo"), runs, "prior", prior, rules=("AR",), folds=(1,))
    board.mkdir()
    (board / "leaderboard.json").write_text("[1, 2]\n")
    res = serbench("leaderboard", "--runs", str(runs), "--out", str(board), "--check",
                   "--resamples", "20", home=home)
    assert res.returncode == 2, res.stdout + res.stderr
    msg = one_block(res)
    assert f"{board / 'leaderboard.json'}: not a serbench leaderboard: the file is a list, not " \
           "an object with a 'tasks' list" in msg
    assert (board / "leaderboard.json").read_text() == "[1, 2]\n"
    for stored, expect in [('{"tasks": {}}', "its 'tasks' is an object, not a list"),
                           ('{"skipped": []}', "the file has no 'tasks' list"),
                           ('{"tasks": [3]}', "tasks[0] is not an object naming its task"),
                           ('{"tasks": [{"task": "demo", "submissions": 1}]}',
                            "tasks[0] (demo) has submissions that are not a list of objects")]:
        (board / "leaderboard.json").write_text(stored)
        with pytest.raises(InputError, match=re.escape(expect)):
            lb.load_stored(board)


def test_small_messages_name_what_was_given(home: Path, tmp_path: Path):
    """--train-rule '' names --train-rule (not --rules); an --out that is a file says so (not
    'File exists', and study used to print a traceback) and the file is kept; a stale
    record's path is printed once, and the leaderboard written without it exits 1."""
    from concurrent.futures import ThreadPoolExecutor

    from runs_fixture import make_runs, prior

    a_file = tmp_path / "a-file"
    a_file.write_text("mine")
    runs = tmp_path / "runs"
    make_runs(load_task("demo"), runs, "prior", prior, rules=("AR",), folds=(1,))
    cases = [
        (("ablate", "--train-rule", "", "--folds", "1", "--seeds", "0", "--out",
          str(tmp_path / "abl")), "--train-rule '': task demo trains on MR, PR, AR"),
        (("leaderboard", "--runs", str(runs), "--out", str(a_file)),
         f"--out {a_file} is a file, not a folder"),
        (("study", "--folds", "1", "--seeds", "0", "--out", str(a_file)),
         f"--out {a_file} is a file, not a folder"),
    ]
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda c: serbench(*c[0], home=home, timeout=120), cases))
    for (args, expect), res in zip(cases, results, strict=True):
        assert res.returncode == 2, (args, res.returncode, res.stderr)
        msg = one_block(res)
        assert expect in msg and "File exists" not in msg and "--rules" not in msg, (args, msg)
        assert msg.count(str(a_file)) <= 1, msg
    assert a_file.read_text() == "mine" and not (tmp_path / "abl" / "runs").exists()

    record = runs / "demo" / "prior" / "fold1-AR-seed0" / "record.json"
    rec = json.loads(record.read_text())
    rec["task_fingerprint"] = "0" * 64
    record.write_text(json.dumps(rec))
    res = serbench("leaderboard", "--runs", str(runs), "--out", str(tmp_path / "board"),
                   "--resamples", "20", home=home)
    assert res.returncode == 1, res.stdout + res.stderr  # a record could not be scored
    assert res.stderr.count(str(record)) == 1 and "fingerprint 000000000000" in res.stderr
    assert (tmp_path / "board" / "leaderboard.json").exists()  # written without it


def test_a_file_where_a_folder_goes_is_named(tmp_path: Path):
    """Below the CLI (run, ablate, study and leaderboard share grid.writable): a file as the
    folder, or as a folder above it, is named; export --to a file says it is a file."""
    from serbench.export import check_target
    from serbench.grid import writable

    a_file = tmp_path / "a-file"
    a_file.write_text("mine")
    with pytest.raises(InputError, match=re.escape(f"--runs {a_file} is a file, not a folder")):
        writable(a_file, "--runs")
    with pytest.raises(InputError, match=re.escape(f"--out {a_file / 'sub'} cannot be made "
                                                   f"({a_file} is a file, not a folder)")):
        writable(a_file / "sub", "--out")
    with pytest.raises(InputError, match="--to is an existing file, not a folder"):
        check_target(a_file, overwrite=True)
    assert a_file.read_text() == "mine"


def test_a_resumed_cell_with_another_configuration_names_the_option(home: Path, tmp_path: Path):
    runner = quick_runner(tmp_path)
    (key,) = runner.cells([1], ["AR"], [0])
    assert runner.run_cell(key).status == "done"
    other = Runner(load_task("demo"), runner.cls, {"mode": "uniform"}, runs=tmp_path / "runs",
                   device="cpu")
    with pytest.raises(InputError) as exc:
        other.is_done(key)
    text = str(exc.value)
    assert 'mode: recorded "ok", now "uniform"' in text and text.count("record.json") == 1


def test_ablation_plan_names_the_option_of_a_bad_value():
    """Unknown losses used to be a ValueError traceback; a crowd kind or a penalty option a
    variant would refuse used to surface after the variants before it had run."""
    from serbench.recipes import ablation

    for kwargs, expect in [({"losses": ["foo"]}, "--losses: unknown loss(es) ['foo']"),
                           ({"crowd_kinds": ["mw"]}, "--crowd-kinds: unknown crowd layer"),
                           ({"penalty": {"hidden": 8}}, "--penalty: hidden is not a penalty")]:
        with pytest.raises(InputError, match=re.escape(expect)):
            ablation.plan(**kwargs)
    variants = ablation.plan(losses=["ce"], alphas=[0.2], raters=False,
                             penalty={"penalty_form": "nope"})
    with pytest.raises(InputError, match=re.escape("variant blstm-fc+ce+pen0.2: blstm-fc "
                                                   "refused its configuration")):
        ablation.check(variants)


def test_ablate_refuses_rater_models_on_vote_counts_before_any_cell(home: Path):
    """EmoDB and CREMA-D give vote counts without rater ids: the rater variants used to fail
    with a message about a wav file after the loss variants had trained (exit 2 late)."""
    from serbench.recipes import ablation
    from serbench.tasks.task import Task

    demo = load_task("demo")
    counts_only = Task(demo.spec, demo.ratings.assign(rater_id=None))
    variants = ablation.plan(losses=["ce"], alphas=[0.0], raters=True, crowd_kinds=["MW"])
    with pytest.raises(InputError, match="vote counts without rater ids, so the rater models "
                                         r"\(rater-fusion, crowd-layer-MW") as exc:
        ablation.check(variants, counts_only)
    assert "--no-raters" in (exc.value.fix or "")
    ablation.check(variants, demo)  # the demo has rater ids
    ablation.check(ablation.plan(losses=["ce"], alphas=[0.0], raters=False), counts_only)


def test_blstm_fc_refuses_sizes_and_rates_out_of_range():
    """``--config hidden=-3`` used to fail every cell deep inside torch (exit 1); the
    constructor refuses it, which the runner turns into one message (exit 2)."""
    cls = plugins.resolve("blstm-fc")
    for option, value, expect in [("hidden", 0, "hidden must be at least 1, got 0"),
                                  ("max_epochs", -1, "max_epochs must be at least 1"),
                                  ("dropout", 1.5, "dropout must be in [0, 1), got 1.5"),
                                  ("lr", 0.0, "lr must be more than 0, got 0"),
                                  ("patience", -1, "patience must be at least 0, got -1")]:
        with pytest.raises(ValueError, match=re.escape(expect)):
            cls(**{option: value})
    cls(hidden=1, layers=1, fc=1, batch_size=1, max_epochs=1, patience=0, dropout=0.0)


@pytest.mark.parametrize("name, option, value, expect", [
    ("ssl-mlp", "hidden", 0, "hidden must be at least 1, got 0"),
    ("ssl-mlp", "dropout", -0.1, "dropout must be in [0, 1), got -0.1"),
    ("ssl-mlp", "penalty_alpha", -0.2, "penalty_alpha must be at least 0, got -0.2"),
    ("ssl-finetune", "keep_layers", 0, "keep_layers must be at least 1, got 0"),
    ("ssl-finetune", "batch_seconds", 0.0, "batch_seconds must be more than 0, got 0"),
    ("ssl-finetune", "pad_seconds", -1.0, "pad_seconds must be at least 0, got -1"),
    ("rater-fusion", "fusion_c", 0.0, "fusion_c must be more than 0, got 0"),
    ("rater-fusion", "max_raters", 0, "max_raters must be at least 1, got 0"),
    ("rater-fusion", "hidden", -3, "hidden must be at least 1, got -3"),  # from blstm-fc
    ("crowd-layer", "consensus_weight", -1.0, "consensus_weight must be at least 0, got -1"),
    ("crowd-layer", "min_ratings", 0, "min_ratings must be at least 1, got 0"),
])
def test_every_trained_baseline_refuses_options_out_of_range(name, option, value, expect):
    """The same ranges for every baseline that trains (serbench.params.check_training), so a
    size, count or rate out of range is one message before any cell, never a torch error in
    every cell or a model trained for 0 epochs."""
    with pytest.raises(ValueError, match=re.escape(expect)):
        plugins.resolve(name)(**{option: value})


def test_an_out_of_range_option_is_exit_2_before_any_cell(home: Path, tmp_path: Path):
    res = serbench("run", "--submission", "ssl-mlp", "--config", "max_epochs=0", "--runs",
                   str(tmp_path / "runs"), "--folds", "1", "--seeds", "0", home=home)
    assert res.returncode == 2 and "max_epochs must be at least 1, got 0" in one_message(res)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("record.json"))


def test_a_home_below_a_file_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from serbench import paths

    (tmp_path / "f").write_text("")
    monkeypatch.setenv("SERBENCH_HOME", str(tmp_path / "f" / "home"))
    with pytest.raises(InputError, match=re.escape(f"({tmp_path / 'f'} is a file, not a")):
        paths.home()


def test_a_record_with_text_probabilities_is_refused(home: Path, tmp_path: Path):
    """The record reader applies the external bridge's check: probabilities a Parquet file
    stores as text are refused by column (they used to be parsed and scored)."""
    import pandas as pd
    from runs_fixture import make_runs, prior

    from serbench.records import read_predictions

    demo = load_task("demo")
    (folder,) = make_runs(demo, tmp_path / "runs", "prior", prior, rules=("AR",), folds=(1,))
    path = folder / "predictions.parquet"
    ids = demo.split(1, "test", "AR").ids
    assert read_predictions(path, demo.spec.classes, ids).shape == (len(ids), demo.spec.k)
    df = pd.read_parquet(path)
    df.assign(p_sad=df["p_sad"].map(repr)).to_parquet(path)
    with pytest.raises(InputError, match=re.escape("column p_sad holds str values, not numbers")):
        read_predictions(path, demo.spec.classes, ids)


def test_a_misspelt_submission_name_gets_a_suggestion():
    from serbench.errors import InputError as Err

    for typo in ("blstm_fc", "BLSTM-FC", "blstm-cf"):
        with pytest.raises(Err, match=re.escape(f"unknown submission {typo!r} (did you mean "
                                                "'blstm-fc'?)")):
            plugins.resolve(typo)


def test_score_and_leaderboard_both_exit_1_on_unreadable_records(home: Path, tmp_path: Path):
    """A record that cannot be read (invalid JSON, a seed that is not a number, a JSON list)
    is a failure found for ``score DIR`` as for ``leaderboard``: listed as skipped, the good
    records scored, exit 1 (text and --json alike)."""
    import json as _json

    from runs_fixture import make_runs, prior

    from serbench.tasks import load_task

    runs = tmp_path / "runs"
    make_runs(load_task("demo"), runs, "prior", prior, rules=("AR",), folds=(1, 2, 3, 4))
    cells = runs / "demo" / "prior"
    broken = {2: "{bad", 3: None, 4: "[1, 2]"}
    for fold, text in broken.items():
        path = cells / f"fold{fold}-AR-seed0" / "record.json"
        if text is None:
            rec = _json.loads(path.read_text())
            rec["seed"] = "zero"
            text = _json.dumps(rec)
        path.write_text(text)
    res = serbench("score", str(cells), "--resamples", "20", home=home)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "fold 1" in res.stdout and "Traceback" not in res.stderr
    assert res.stderr.count("skipped") == 3 and "refused" not in res.stderr, res.stderr
    assert "3 of 4 record(s)" in " ".join(res.stderr.split())
    res = serbench("score", str(cells), "--resamples", "20", "--json", home=home)
    assert res.returncode == 1, res.stdout + res.stderr
    got = _json.loads(res.stdout)
    assert len(got["cells"]) == 1 and len(got["skipped"]) == 3
    assert {Path(s["record"]).parent.name for s in got["skipped"]} == \
        {f"fold{f}-AR-seed0" for f in broken}
    res = serbench("leaderboard", "--runs", str(runs), "--out", str(tmp_path / "board"),
                   "--resamples", "20", home=home)
    assert res.returncode == 1 and res.stderr.count("skipped") == 3, res.stdout + res.stderr


def test_run_names_a_broken_record_and_reports_the_records_it_could_not_score(
        home: Path, tmp_path: Path):
    """``run`` into a folder with broken records: a cell of its grid whose record was
    unreadable is recomputed and said so (not "broken predictions"); a broken record outside
    its grid is listed as skipped after the board is written, with the partial rows, as
    ``serbench leaderboard`` does, and is a failure found (exit 1)."""
    import json as _json

    plugin = tmp_path / "failing.py"
    plugin.write_text(FAILING)
    runs, board = tmp_path / "runs", tmp_path / "board"
    base = ("run", "--submission", str(plugin), "--config", "mode=uniform", "--folds", "1",
            "--rules", "AR", "--runs", str(runs), "--out", str(board), "--resamples", "20",
            "--device", "cpu")
    res = serbench(*base, "--seeds", "0,1", home=home)
    assert res.returncode == 0, res.stdout + res.stderr
    cells = runs / "demo" / "failing"
    mine = cells / "fold1-AR-seed0" / "record.json"
    rec = _json.loads(mine.read_text())
    rec["seed"] = "zero"
    mine.write_text(_json.dumps(rec))
    other = cells / "fold1-AR-seed1" / "record.json"
    other.write_text("[1, 2]")
    res = serbench(*base, "--seeds", "0", home=home)
    assert res.returncode == 1, res.stdout + res.stderr
    text = " ".join(res.stderr.split())
    assert "recomputed fold 1 AR seed 0: its record was unreadable" in text
    assert "broken predictions" not in res.stdout + res.stderr
    assert f"skipped {other}" in text and text.count("skipped") == 1
    assert "partial row demo: failing, trained on AR" in text
    assert "1 record(s) under" in text and "Traceback" not in text
    assert _json.loads(mine.read_text())["seed"] == 0  # the cell of the grid is recomputed
    got = _json.loads(serbench(*base, "--seeds", "0", "--json", home=home).stdout)
    assert [s["record"] for s in got["leaderboard"]["skipped"]] == [str(other)]


def test_a_refused_run_leaves_no_folder_behind(home: Path, tmp_path: Path):
    """A run refused before writing a record (bad option, device, jobs, models folder,
    submission file, --out of other files, a checkpoint failing its sha256 check) removes the
    folders it made (--runs, --out, the cell folders and their lock), and keeps what was there."""
    from concurrent.futures import ThreadPoolExecutor

    bad_py = tmp_path / "bad.py"
    bad_py.write_text("def x(:\n")
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "mine.txt").write_text("mine")
    base = ("run", "--folds", "1", "--seeds", "0", "--rules", "AR", "--config", "max_epochs=1",
            "--resamples", "20", "--device", "cpu")
    cases = [("--folds", "0"), ("--device", "tpu"), ("--jobs", "-1"),
             ("--load-models", str(tmp_path / "nope")), ("--submission", f"{bad_py}:X"),
             ("--out", str(notes))]

    def refused(i: int, extra: tuple[str, ...]) -> subprocess.CompletedProcess:
        top = tmp_path / f"new{i}"
        args = (*base, "--runs", str(top / "runs"), "--out", str(top / "board"), *extra)
        return serbench(*args, home=home, timeout=120)

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda c: refused(*c), enumerate(cases)))
    for i, (extra, res) in enumerate(zip(cases, results, strict=True)):
        assert res.returncode == 2, (extra, res.stdout + res.stderr)
        assert not (tmp_path / f"new{i}").exists(), (extra, list((tmp_path / f"new{i}").rglob("*")))
    assert [p.name for p in notes.iterdir()] == ["mine.txt"]

    saved = tmp_path / "saved"
    res = serbench(*base, "--save-models", "--runs", str(saved), "--no-leaderboard", home=home)
    assert res.returncode == 0, res.stdout + res.stderr
    (model,) = saved.rglob("model.safetensors")
    model.write_bytes(model.read_bytes() + b"x")
    kept = tmp_path / "kept"
    kept.mkdir()
    res = serbench(*base, "--load-models", str(saved), "--runs", str(kept), "--out",
                   str(tmp_path / "board"), home=home)
    assert res.returncode == 2 and "sha256" in res.stderr, res.stdout + res.stderr
    assert kept.is_dir() and not list(kept.iterdir()) and not (tmp_path / "board").exists()


def test_score_names_the_option_when_a_predictions_file_takes_its_value(home: Path,
                                                                          tmp_path: Path):
    """--train-rule / --run-seed fill the columns a predictions file lacks: a wrong value is
    the option's mistake, named as such, not a row of the file to edit."""
    import pandas as pd

    from serbench.tasks import load_task

    task = load_task("demo")
    ids = task.split(1, "test", "AR").ids
    preds = pd.DataFrame({"utterance_id": ids, "fold": 1})
    for c in task.spec.classes:
        preds[f"p_{c}"] = 1 / len(task.spec.classes)
    path = tmp_path / "preds.csv"
    preds.to_csv(path, index=False)
    base = ("score", str(path), "--task", "demo", "--name", "x", "--fingerprint",
            task.fingerprint["fingerprint"], "--runs", str(tmp_path / "runs"))
    for extra, expect in ((("--train-rule", "XX"), "--train-rule 'XX'"),
                          (("--run-seed", "-1"), "--run-seed -1")):
        res = serbench(*base, *extra, home=home)
        assert res.returncode == 2, res.stdout + res.stderr
        msg = one_block(res)
        assert expect in msg and "row 2" not in msg, msg
    assert not (tmp_path / "runs").exists()


def test_a_file_or_an_empty_string_given_for_a_folder_is_named_as_such(home: Path,
                                                                        tmp_path: Path):
    """A file passed where a folder goes is "a file, not a folder" (not "no such folder"); an
    empty --source / --to is refused as empty (Path('') would silently mean '.')."""
    from concurrent.futures import ThreadPoolExecutor

    a_file = tmp_path / "a-file"
    a_file.write_text("mine")
    cases = [
        (("run", "--folds", "1", "--seeds", "0", "--rules", "AR", "--load-models", str(a_file),
          "--runs", str(tmp_path / "new" / "runs"), "--out", str(tmp_path / "new" / "board")),
         f"--load-models {a_file} is a file, not a folder"),
        (("leaderboard", "--runs", str(a_file), "--out", str(tmp_path / "new" / "board")),
         f"--runs {a_file} is a file, not a folder"),
        (("prepare", "emodb", "--source", ""), "--source '' is empty"),
        (("export", "demo", "--to", ""), "--to '' is empty"),
    ]
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda c: serbench(*c[0], home=home, timeout=120), cases))
    for (args, expect), res in zip(cases, results, strict=True):
        assert res.returncode == 2, (args, res.stdout + res.stderr)
        msg = one_block(res)
        assert expect in msg and "no such" not in msg, (args, msg)
    assert a_file.read_text() == "mine" and not (tmp_path / "new").exists()
