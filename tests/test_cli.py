"""The command line as a user runs it: JSON output, clear errors, exit codes."""

import json
import os
import subprocess
import sys
from pathlib import Path


def serbench(*args: str, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "SERBENCH_HOME": str(home), "COLUMNS": "120"}
    return subprocess.run([sys.executable, "-m", "serbench.cli", *args], capture_output=True,
                          text=True, env=env, timeout=120)


def test_tasks_show_demo_json(home: Path):
    res = serbench("tasks", "show", "demo", "--json", home=home)
    assert res.returncode == 0, res.stderr
    s = json.loads(res.stdout)
    assert set(s) == {"task", "version", "classes", "question", "group_by", "fingerprint",
                      "n_utterances", "n_ratings", "n_raters", "rules", "agreement", "dropped",
                      "folds", "reference", "reference_human_spread"}
    # the reference rows' values are checked by hand in test_scores_trust.py; here the shape
    ref = s["reference"]["auprc"]
    assert set(ref) == {"MR", "PR", "AR"}
    assert set(ref["AR"]) == {"prior", "best_constant", "human", "oracle"}  # demo v2 knows truth
    frozen = json.loads((Path(__file__).parents[1] / "tasks/demo/fingerprint.json").read_text())
    assert s["fingerprint"] == frozen["fingerprint"]
    fold = s["folds"][0]
    assert set(fold["rules"]) == {"MR", "PR", "AR"}
    for rule, cell in fold["rules"].items():
        assert cell["train"]["n"] + cell["dev"]["n"] + cell["test"]["n"] == s["rules"][rule]
    assert fold["rules"]["AR"]["test"]["n"] == 72  # 2 speakers x 36 clips


def test_tasks_show_human_readable(home: Path):
    res = serbench("tasks", "show", "demo", home=home)
    assert res.returncode == 0
    assert "fingerprint" in res.stdout and "SYNTHETIC" in res.stdout and "MR" in res.stdout


def test_tasks_list_json(home: Path):
    res = serbench("tasks", "list", "--json", home=home)
    names = [r["task"] for r in json.loads(res.stdout)]
    assert names == ["crema-d", "crema-d-audiovisual", "crema-d-face", "demo", "emodb",
                     "iemocap-4class", "iemocap-9class", "iemocap-9class-raw",
                     "msp-improv-4class",
                     "msp-improv-4class-raw", "msp-podcast-8class"]


def test_errors_are_one_message_and_exit_2(home: Path, tmp_path: Path):
    for args, expect in [
        (("tasks", "show", "no-such-task"), "unknown task 'no-such-task'"),
        (("tasks", "show", "crema-d"), "serbench prepare crema-d --source"),
        (("prepare", "crema-d", "--source", str(tmp_path)), "tabulatedVotes.csv"),
    ]:
        res = serbench(*args, home=home)
        assert res.returncode == 2, (args, res.stderr)
        assert expect in " ".join(res.stderr.split())
        assert "Traceback" not in res.stderr


def test_score_leaderboard_compare_commands(home: Path, tmp_path: Path):
    from runs_fixture import make_runs, noisy_oracle, prior

    from serbench.tasks import load_task

    demo = load_task("demo")
    runs = tmp_path / "runs"
    make_runs(demo, runs, "oracle", noisy_oracle, rules=("AR",))
    make_runs(demo, runs, "prior", prior, rules=("AR",))
    cell = runs / "demo" / "oracle" / "fold1-AR-seed0"
    res = serbench("score", str(cell), "--json", "--resamples", "100", home=home)
    assert res.returncode == 0, res.stderr
    (scored,) = json.loads(res.stdout)["cells"]
    assert scored["test"]["AR"]["metrics"]["uar"] is None
    assert scored["test"]["MR"]["n"] < scored["test"]["PR"]["n"] < scored["test"]["AR"]["n"] == 72
    res = serbench("score", str(cell), "--resamples", "100", home=home)
    assert res.returncode == 0 and "trained on AR" in res.stdout and "n/a" in res.stdout
    out = tmp_path / "board"
    res = serbench("leaderboard", "--runs", str(runs), "--out", str(out), "--resamples", "50",
                   home=home)
    assert res.returncode == 0, res.stderr
    assert (out / "index.html").exists() and (out / "leaderboard.json").exists()
    res = serbench("compare", str(runs / "demo" / "oracle"), str(runs / "demo" / "prior"),
                   "--json", "--resamples", "100", home=home)
    cmp = json.loads(res.stdout)
    assert cmp["cells"] == 5 and cmp["diff"] > 0 and cmp["p_bootstrap"] < 0.05
    mixed = serbench("compare", str(runs / "demo"), str(runs / "demo" / "prior"), home=home)
    assert mixed.returncode == 2 and "needs one submission per folder" in mixed.stderr
    bad = serbench("score", str(tmp_path / "nothing-here"), home=home)
    assert bad.returncode == 2 and "no readable record.json" in bad.stderr


def test_submissions_list(home: Path):
    res = serbench("submissions", "list", "--json", home=home)
    assert res.returncode == 0, res.stderr
    rows = {r["name"]: r for r in json.loads(res.stdout)}
    assert {"blstm-fc", "ssl-mlp", "ssl-finetune", "rater-fusion", "crowd-layer"} <= set(rows)
    assert rows["ssl-mlp"]["trains"] is True and rows["blstm-fc"]["source"] == "submissions/"
