"""The leaderboard: regenerated from records, deterministic, missing shown as missing, renders."""

import filecmp
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from runs_fixture import make_runs, noisy_oracle, prior

from serbench import leaderboard as lb
from serbench.reference import row_kinds
from serbench.scoring import scored_metrics
from serbench.tasks import load_task


@pytest.fixture
def runs(home, tmp_path: Path) -> Path:
    demo = load_task("demo")
    root = tmp_path / "runs"
    make_runs(demo, root, "oracle", noisy_oracle)
    make_runs(demo, root, "prior", prior, rules=("AR",))
    make_runs(demo, root, "prior", prior, rules=("MR",), folds=(1, 2, 3))
    broken = root / "demo" / "prior" / "fold9-PR-seed0"
    broken.mkdir()
    (broken / "record.json").write_text("{truncated")
    return root


def _tree(d: Path) -> list[str]:
    return sorted(str(p.relative_to(d)) for p in d.rglob("*") if p.is_file())


def test_regeneration_is_byte_identical(runs: Path, tmp_path: Path):
    a, b = tmp_path / "a", tmp_path / "b"
    lb.write(lb.build(runs, n_resamples=100), a)
    lb.write(lb.build(runs, n_resamples=100), b)
    assert _tree(a) == _tree(b)
    assert "index.html" in _tree(a) and "leaderboard.csv" in _tree(a)
    assert sum(1 for f in _tree(a) if f.endswith(".svg")) == 5  # 2 x 3x3, F1 bars, 2 confusion
    for f in _tree(a):
        assert filecmp.cmp(a / f, b / f, shallow=False), f


def test_contents(runs: Path, tmp_path: Path):
    board = lb.build(runs, n_resamples=100)
    lb.write(board, tmp_path)
    readme = (tmp_path / "README.md").read_text()
    # prior trained on MR has 3 of 5 folds: its row is missing, never zero
    line = next(x for x in readme.splitlines() if x.startswith("| prior | 0.1 | MR |"))
    assert "—" in line and "3/5" in line
    assert "### oracle: training rule × test rule" in readme
    assert "fold9-PR-seed0" in readme and "Skipped records" in readme
    agg = next(a for a in board.tasks[0].aggregates if a.submission == "oracle")
    top = agg.mean[("AR", "AR", "multilabel_macro_f1")]
    assert f"{top:.4f}" in readme
    csv_lines = (tmp_path / "leaderboard.csv").read_text().splitlines()
    n_metrics = len(board.tasks[0].task.spec.metrics)
    n_scored = len(scored_metrics(board.tasks[0].task))  # the task's and the rater-level ones
    n_ref = len(row_kinds(board.tasks[0].task))  # prior, best constant, human (+ oracle)
    # 2 submissions x 3x3 cells x metrics, then the reference rows x 3 test rules x metrics
    assert len(csv_lines) == 1 + 2 * 9 * n_scored + n_ref * 3 * n_metrics
    row = next(x for x in csv_lines if x.startswith("demo,") and ",prior,0.1,MR,AR,kl," in x)
    assert ",—,—," in row and row.endswith(",3,5,1,False,—,")
    # reference rows: a number, or n/a with its reason (UAR needs a consensus label on AR)
    na = next(x for x in csv_lines if ",reference:human,,,AR,uar," in x)
    assert ",n/a," in na and "consensus label" in na
    assert "*reference: best constant*" in readme and "*reference: human (held-out vote)*" in readme
    assert "classes present in each test set" in readme and "one-hot consensus" in readme


def test_index_html_renders_in_headless_chromium(runs: Path, tmp_path: Path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Debian chromium is not installed (.ci/run installs it)")
    out = tmp_path / "board"
    lb.write(lb.build(runs, n_resamples=100), out)
    shot = tmp_path / "shot.png"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--hide-scrollbars"]
    subprocess.run([chromium, *flags, f"--screenshot={shot}", "--window-size=1280,2400",
                    (out / "index.html").as_uri()], check=True, capture_output=True, timeout=120)
    dom = subprocess.run([chromium, *flags, "--dump-dom", (out / "index.html").as_uri()],
                         check=True, capture_output=True, text=True, timeout=120).stdout
    # main table, the rater-level table, one 3x3 per submission
    assert dom.count("<table") == 4 and "Rater-level evaluation" in dom
    assert "oracle" in dom and "plots/demo__per_class_f1.svg" in dom
    import matplotlib.image as mpimg

    img = mpimg.imread(shot)
    assert img.shape[0] >= 2000 and img.shape[1] >= 1200
    ink = (img[..., :3].mean(axis=2) < 0.9).mean()  # share of non-white pixels
    assert ink > 0.02, "the page rendered (almost) blank"
    keep = Path("/tmp/serbench-leaderboard-screenshot.png")
    shutil.copy(shot, keep)
    assert np.isfinite(img).all()


def test_check_recomputes_and_catches_tampering(runs: Path, tmp_path: Path):
    import json

    import pandas as pd

    out = tmp_path / "board"
    lb.write(lb.build(runs, n_resamples=50), out)
    compared, diffs = lb.check(lb.build(runs, n_resamples=50), out)
    assert diffs == [] and compared > 100
    # a stored number edited by hand is caught, by name
    data = json.loads((out / "leaderboard.json").read_text())
    oracle = next(s for s in data["tasks"][0]["submissions"] if s["submission"] == "oracle")
    oracle["cells"]["AR->AR"]["multilabel_macro_f1"]["mean"] += 0.01
    (out / "leaderboard.json").write_text(json.dumps(data))
    _, diffs = lb.check(lb.build(runs, n_resamples=50), out)
    where = "/tasks/demo/submissions/oracle/cells/AR->AR/multilabel_macro_f1/mean"
    assert len(diffs) == 1 and diffs[0].startswith(where)
    # predictions changed after the leaderboard was written: their cells no longer match
    lb.write(lb.build(runs, n_resamples=50), out)
    pred = runs / "demo" / "oracle" / "fold1-AR-seed0" / "predictions.parquet"
    df = pd.read_parquet(pred)
    cols = [c for c in df.columns if c.startswith("p_")]
    df[cols] = df[cols].to_numpy()[:, ::-1]  # still valid probabilities, different classes
    df.to_parquet(pred)
    _, diffs = lb.check(lb.build(runs, n_resamples=50), out)
    assert diffs and all("/tasks/demo/submissions/oracle/" in d for d in diffs)
    assert any("AR->AR/multilabel_macro_f1/mean" in d for d in diffs)
    from typer.testing import CliRunner

    from serbench.cli import app

    res = CliRunner().invoke(app, ["leaderboard", "--check", "--runs", str(runs), "--out", str(out),
                                   "--resamples", "50"])
    assert res.exit_code == 1 and "difference(s)" in res.output


def test_transductive_and_external_submissions_are_marked(home: Path, tmp_path: Path):
    demo = load_task("demo")
    runs = tmp_path / "runs"
    make_runs(demo, runs, "speaker-norm", prior, rules=("AR",), config={"transductive": True})
    make_runs(demo, runs, "outside", prior, rules=("AR",), plugin="external")
    make_runs(demo, runs, "plain", prior, rules=("AR",))
    out = tmp_path / "board"
    lb.write(lb.build(runs, n_resamples=10), out)
    md = (out / "README.md").read_text()
    assert "speaker-norm (transductive)" in md and "outside (external)" in md
    assert "plain (" not in md
    assert "speaker-norm (transductive)" in (out / "index.html").read_text()
    subs = {s["submission"]: s["marks"]
            for t in json.loads((out / "leaderboard.json").read_text())["tasks"]
            for s in t["submissions"]}
    assert subs == {"speaker-norm": ["transductive"], "outside": ["external"], "plain": []}
