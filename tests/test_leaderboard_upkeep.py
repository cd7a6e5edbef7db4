"""Regenerating a leaderboard: stale plots go, partial rows are named, a folder of other files
is refused, and a board without a complete training rule says why it has no rater-level table.

Expected file names, cell counts and messages are worked out from what each test writes
(which cells it records or deletes), not read back from serbench's output.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from runs_fixture import make_runs, noisy_oracle, prior

from serbench import grid
from serbench import leaderboard as lb
from serbench.tasks import load_task


def serbench(*args: str, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "SERBENCH_HOME": str(home), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "serbench.cli", *args], capture_output=True,
                          text=True, env=env, timeout=300)


def one_message(res: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in res.stderr + res.stdout, res.stderr
    assert res.stderr.count("error:") == 1, res.stderr
    return " ".join(res.stderr.split())


def plots(board: Path) -> set[str]:
    return {p.name for p in (board / "plots").iterdir()}


def test_replace_removes_the_plots_of_dropped_rows_and_keeps_other_files(home, tmp_path: Path):
    demo = load_task("demo")
    runs, board = tmp_path / "runs", tmp_path / "board"
    make_runs(demo, runs / "a", "alpha", prior, rules=("AR",))
    make_runs(demo, runs / "b", "beta", noisy_oracle, rules=("AR",))
    lb.write(lb.build(runs, n_resamples=20), board)
    # every submission: its 3x3 and (AR complete, so an AR->MR confusion) its confusion map;
    # the task: per-class F1 bars of the AR-trained rows
    assert plots(board) == {"demo__alpha__3x3.svg", "demo__alpha__confusion.svg",
                            "demo__beta__3x3.svg", "demo__beta__confusion.svg",
                            "demo__per_class_f1.svg"}
    (board / "plots" / "my-figure.svg").write_text("<svg/>")  # the user's, not the board's
    (board / "plots" / "demo__beta__3x3.svg.orig").write_text("a copy")
    (board / "notes.txt").write_text("mine")
    res = serbench("leaderboard", "--runs", str(runs / "a"), "--out", str(board), "--replace",
                   "--resamples", "20", home=home)
    assert res.returncode == 0, res.stderr
    # the dropped row is named, once: beta's records are under runs/b, not passed
    assert " ".join(res.stderr.split()).count(
        "--replace dropped 1 row(s) of the stored leaderboard, and their plots: demo/beta") == 1
    assert plots(board) == {"demo__alpha__3x3.svg", "demo__alpha__confusion.svg",
                            "demo__per_class_f1.svg", "my-figure.svg", "demo__beta__3x3.svg.orig"}
    assert (board / "notes.txt").read_text() == "mine"
    html = (board / "index.html").read_text()
    assert "demo__beta" not in html and "plots/demo__alpha__3x3.svg" in html


def test_a_deleted_cell_is_named_on_the_board_and_in_the_output(home, tmp_path: Path):
    demo = load_task("demo")
    runs, board = tmp_path / "runs", tmp_path / "board"
    make_runs(demo, runs, "prior", prior, rules=("AR", "MR"), seeds=(0, 1))
    lb.write(lb.build(runs, n_resamples=20), board)
    readme = (board / "README.md").read_text()
    assert "Partial rows" not in readme and "| prior | 0.1 | AR | 0." in readme
    confusion = board / "plots" / "demo__prior__confusion.svg"
    assert confusion.exists()
    for cell in ("fold4-AR-seed1", "fold2-AR-seed1", "fold3-MR-seed0"):
        for f in (runs / "demo" / "prior" / cell).iterdir():
            f.unlink()
        (runs / "demo" / "prior" / cell).rmdir()
    res = serbench("leaderboard", "--runs", str(runs), "--out", str(board), "--resamples", "20",
                   home=home)
    assert res.returncode == 0, res.stderr  # a partial row is not an error
    err = " ".join(res.stderr.split())
    # 2 seeds x 5 folds = 10 cells a row; AR lost 2 (seed 1: folds 2 and 4), MR lost 1
    assert ("row became partial demo: prior, trained on AR: 2 of 10 cells not recorded "
            "(seed 1: folds 2, 4)") in err
    assert ("row became partial demo: prior, trained on MR: 1 of 10 cells not recorded "
            "(seed 0: fold 3)") in err
    assert "trained on PR" not in err  # never run: not partial, and it shows 0/5 folds as before
    readme = (board / "README.md").read_text()
    assert "Partial rows: a training rule is scored once every fold of every seed" in readme
    assert "- prior, trained on MR: 1 of 10 cells not recorded (seed 0: fold 3)" in readme
    assert "- prior, trained on AR: 2 of 10 cells not recorded (seed 1: folds 2, 4)" in readme
    line = next(x for x in readme.splitlines() if x.startswith("| prior | 0.1 | AR |"))
    assert line.split(" | ")[3] == "—" and "5/5" in line  # every fold has seed 0: 5/5 folds
    assert "prior, trained on AR: 2 of 10 cells not recorded" in (board / "index.html").read_text()
    assert not confusion.exists()  # no complete AR or MR row: no confusion map, and no stale one
    # the stored numbers are what they are: --check still compares them, and they match
    board_now = lb.build(runs, n_resamples=20)
    compared, diffs = lb.check(board_now, board)
    assert diffs == [] and compared > 100
    # written again: the rows were already partial in the stored board, so not "became"
    again = lb.partial_messages(board_now, lb.stored_complete(board))
    assert [became for became, _ in again] == [False, False]
    assert again[0][1].startswith("partial row demo: prior, trained on MR: 1 of 10 cells")
    # a row complete before and without any cell now (PR was never run here): said too
    emptied = lb.partial_messages(board_now, {("demo", "prior", "PR")})
    assert emptied[-1] == (True, "row became empty demo: prior, trained on PR: none of its 10 "
                                 "cells is recorded; its scores show — (it was complete in the "
                                 "leaderboard this one replaced)")


def test_one_fold_board_says_why_it_has_no_rater_level_table(home, tmp_path: Path):
    demo = load_task("demo")
    runs, board = tmp_path / "runs", tmp_path / "board"
    make_runs(demo, runs, "prior", prior, rules=("AR",), folds=(1,))
    lb.write(lb.build(runs, n_resamples=20), board)
    readme = (board / "README.md").read_text()
    section = readme.split("### Rater-level evaluation", 1)[1].split("###", 1)[0]
    assert "Not shown yet" in section and "every fold of every seed" in section
    assert "folds recorded: prior MR 0/5, PR 0/5, AR 1/5" in section
    assert "|" not in section  # a sentence, not a table
    assert "Not shown yet" in (board / "index.html").read_text()
    # once the rule is complete the table is there, and the sentence is gone
    make_runs(demo, runs, "prior", prior, rules=("AR",), folds=(2, 3, 4, 5))
    lb.write(lb.build(runs, n_resamples=20), board)
    readme = (board / "README.md").read_text()
    section = readme.split("### Rater-level evaluation", 1)[1].split("###", 1)[0]
    assert "Not shown yet" not in section and "| prior | AR |" in section


def test_out_folder_of_other_files_is_refused(home, tmp_path: Path):
    demo = load_task("demo")
    runs = tmp_path / "runs"
    make_runs(demo, runs, "prior", prior, rules=("AR",), folds=(1,))
    mine = tmp_path / "mine"
    (mine / "figures").mkdir(parents=True)
    (mine / "paper.tex").write_text("my paper")
    for cmd in (("leaderboard", "--runs", str(runs)),
                ("run", "--folds", "1", "--rules", "AR", "--seeds", "0", "--device", "cpu",
                 "--runs", str(tmp_path / "fresh-runs"))):
        res = serbench(*cmd, "--out", str(mine), "--resamples", "20", home=home)
        assert res.returncode == 2, res.stdout + res.stderr
        msg = one_message(res)
        assert f"{mine} holds other files (figures/, paper.tex) and no serbench leaderboard" \
            in msg and "--out DIR" in msg
        assert sorted(p.name for p in mine.iterdir()) == ["figures", "paper.tex"]
    assert not (tmp_path / "fresh-runs" / "demo").exists()  # refused before any cell ran
    with pytest.raises(lb.WouldDropRows, match="holds other files"):
        grid.build_leaderboard(runs, mine, resamples=20)  # the Python API refuses it too
    # allowed: the runs folder inside --out (the default leaderboard/runs layout), hidden
    # files, a missing or empty folder, and a serbench board with other things beside it
    board = tmp_path / "board"
    make_runs(demo, board / "runs", "prior", prior, rules=("AR",), folds=(1,))
    (board / ".gitkeep").write_text("")
    assert lb.guard_out(board, board / "runs") is None
    with pytest.raises(lb.WouldDropRows, match=r"holds other files \(runs/\)"):
        lb.guard_out(board, runs)  # those runs are not the ones it is built from
    assert lb.guard_out(tmp_path / "nothing-yet", runs) is None
    (tmp_path / "empty").mkdir()
    assert lb.guard_out(tmp_path / "empty", runs) is None
    grid.build_leaderboard(board / "runs", board, resamples=20)
    (board / "ablation").mkdir()  # as in the committed leaderboard/
    assert lb.guard_out(board, runs) == {("demo", "prior"), ("demo", "")}


def test_check_uses_the_stored_bootstrap_settings(home, tmp_path: Path):
    """leaderboard.json records the resamples and seed its intervals used; --check recomputes
    with them, refuses other ones given explicitly, and a board that records none is checked
    with the options as before."""
    import json

    demo = load_task("demo")
    runs, board = tmp_path / "runs", tmp_path / "board"
    make_runs(demo, runs, "alpha", prior, rules=("AR",))
    res = serbench("leaderboard", "--runs", str(runs), "--out", str(board), "--resamples", "20",
                   "--seed", "3", home=home)
    assert res.returncode == 0, res.stderr
    stored = json.loads((board / "leaderboard.json").read_text())
    assert set(stored) == {"bootstrap", "skipped", "tasks"}
    assert stored["bootstrap"] == {"resamples": 20, "seed": 3}
    res = serbench("leaderboard", "--check", "--runs", str(runs), "--out", str(board), home=home)
    assert res.returncode == 0, res.stderr
    assert "leaderboard matches" in res.stdout
    res = serbench("leaderboard", "--check", "--runs", str(runs), "--out", str(board),
                   "--resamples", "21", "--seed", "3", home=home)
    assert res.returncode == 2
    msg = one_message(res)
    assert "computed with --resamples 20 --seed 3, and --check was asked for --resamples 21" \
        in msg and "leave out --resamples" in msg
    # a board written before the settings were stored: checked with the options given
    del stored["bootstrap"]
    (board / "leaderboard.json").write_text(json.dumps(stored))
    res = serbench("leaderboard", "--check", "--runs", str(runs), "--out", str(board),
                   "--resamples", "20", "--seed", "3", home=home)
    assert res.returncode == 0, res.stderr
    res = serbench("leaderboard", "--check", "--runs", str(runs), "--out", str(board),
                   "--resamples", "21", "--seed", "3", home=home)
    assert res.returncode == 1 and "ci95" in res.stderr
