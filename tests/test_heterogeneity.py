"""The rater-heterogeneity study (serbench.recipes.heterogeneity) and the demo's truth plumbing."""

import json
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scipy.stats import entropy

from serbench import paths
from serbench.recipes.heterogeneity import paired_truth, truth_ce, verdict
from serbench.records import CellKey
from serbench.tasks import load_task


def test_truth_ce_is_entropy_plus_kl():
    rng = np.random.default_rng(0)
    t, p = rng.dirichlet(np.ones(4), size=5), rng.dirichlet(np.ones(4), size=5)
    want = [entropy(t[i]) + entropy(t[i], p[i]) for i in range(5)]  # H(t) + KL(t || p)
    np.testing.assert_allclose(truth_ce(t, p), want)


def _cells(ids_by_fold, probs_of, seeds=(0, 1, 2)):
    return [(CellKey("toy", "x", f, "AR", s), ids, probs_of(ids, s))
            for f, ids in ids_by_fold.items() for s in seeds]


def test_paired_truth_by_hand():
    rng = np.random.default_rng(1)
    ids = np.array([f"u{i}" for i in range(40)])
    truth = pd.DataFrame(rng.dirichlet(np.ones(3), size=40), index=ids)
    task = SimpleNamespace(truth=truth)
    folds = {1: ids[:20], 2: ids[20:]}
    exact = _cells(folds, lambda i, s: truth.loc[i].to_numpy())
    uniform = _cells(folds, lambda i, s: np.full((len(i), 3), 1 / 3))
    res = paired_truth(task, exact, uniform, n_resamples=300)  # type: ignore[arg-type]
    h = entropy(truth.to_numpy(), axis=1)
    want = np.mean([np.mean(h[:20] - np.log(3)), np.mean(h[20:] - np.log(3))])
    assert res.diff == pytest.approx(want)
    assert res.seed_diffs == pytest.approx([want] * 3) and res.seed_agreement == "3/3"
    assert res.ci[0] <= want <= res.ci[1] < 0 and verdict(res.diff, res.ci, True) == "helps"
    same = paired_truth(task, exact, exact, n_resamples=50)  # type: ignore[arg-type]
    assert same.diff == 0 and same.ci == (0.0, 0.0) and verdict(same.diff, same.ci, True) == "ties"


@pytest.mark.parametrize(("diff", "ci", "lower", "want"), [
    (0.1, (0.05, 0.2), False, "helps"), (0.1, (0.05, 0.2), True, "hurts"),
    (-0.1, (-0.2, -0.01), True, "helps"), (0.02, (-0.01, 0.05), False, "ties"),
    (float("nan"), (float("nan"), float("nan")), False, "ties")])
def test_verdict(diff, ci, lower, want):
    assert verdict(diff, ci, lower) == want


def test_demo_has_its_truth_and_a_stale_demo_is_rebuilt(home):
    task = load_task("demo")
    assert task.truth is not None and list(task.truth.columns) == list(task.spec.classes)
    np.testing.assert_allclose(task.truth.sum(axis=1), 1.0, atol=1e-5)
    assert set(task.truth.index) == set(task.counts.ids)
    # a demo prepared from an older version (another fingerprint) is prepared again
    prov_file = paths.task_cache("demo") / "provenance.json"
    prov = json.loads(prov_file.read_text())
    prov_file.write_text(json.dumps({**prov, "fingerprint": "0" * 64}))
    again = load_task("demo")
    assert json.loads(prov_file.read_text())["fingerprint"] == prov["fingerprint"]
    assert again.fingerprint == task.fingerprint


def test_study_levels_are_checked_before_anything_runs(home):
    r = subprocess.run([sys.executable, "-m", "serbench.cli", "study", "--levels", "none,huge"],
                       capture_output=True, text=True)
    assert r.returncode == 2
    assert "huge" in r.stderr and "none, moderate, high" in r.stderr
    assert "Traceback" not in r.stderr


def test_a_record_of_an_older_demo_version_is_refused(home, tmp_path):
    from runs_fixture import make_runs, prior

    task = load_task("demo")
    paths_ = make_runs(task, tmp_path / "runs", "old", prior, rules=("AR",), folds=[1])
    rec = paths_[0] if paths_[0].name == "record.json" else paths_[0] / "record.json"
    data = json.loads(rec.read_text())
    rec.write_text(json.dumps({**data, "task_fingerprint": "d3b6edddfddf" + "0" * 52}))
    r = subprocess.run([sys.executable, "-m", "serbench.cli", "score", str(rec.parent.parent)],
                       capture_output=True, text=True)
    assert r.returncode == 2, r.stderr
    assert "d3b6edddfddf" in r.stderr and "version 2" in r.stderr
    assert "Traceback" not in r.stderr


def test_paired_vote_ratio_by_hand():
    """vote_ll differences: ratios of per-clip sums (log-likelihood / votes) per fold, seed."""
    from serbench.recipes.heterogeneity import _paired

    den1, den2 = np.array([1.0, 2.0, 3.0]), np.array([2.0, 2.0])
    fa = {1: {0: (np.array([-1.0, -2.0, -3.0]), den1), 1: (np.array([-1.0, -1.0, -1.0]), den1)},
          2: {0: (np.array([-2.0, -2.0]), den2), 1: (np.array([-4.0, -2.0]), den2)}}
    fb = {1: {0: (np.array([-2.0, -2.0, -2.0]), den1), 1: (np.array([-2.0, -2.0, -2.0]), den1)},
          2: {0: (np.array([-3.0, -3.0]), den2), 1: (np.array([-3.0, -3.0]), den2)}}
    res = _paired(fa, fb, 200, 0)
    # fold 1: seed 0 (-6 + 6) / 6 = 0, seed 1 (-3 + 6) / 6 = 0.5; fold 2: 2 / 4, 0 / 4
    assert res.seed_diffs == pytest.approx([0.25, 0.25])
    assert res.diff == pytest.approx(0.25) and res.ci[0] <= 0.25 <= res.ci[1]


def test_tasks_truth_accepts_the_demo_s_own_clip_table(home):
    load_task("demo")
    clips = next((home / "corpora").iterdir()) / "clips.csv"
    r = subprocess.run([sys.executable, "-m", "serbench.cli", "tasks", "truth", "demo",
                        "--clips", str(clips), "--json"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["closest"]["all"]["tv"] == "AR"  # the vote distribution is the closest


def test_study_folds_are_checked_before_anything_runs(home):
    r = subprocess.run([sys.executable, "-m", "serbench.cli", "study", "--folds", "9"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "folds 1..5" in r.stderr
    assert "heterogeneity study:" not in r.stdout and "Traceback" not in r.stderr


def test_score_json_is_strict_json(home, tmp_path):
    from runs_fixture import make_runs, prior

    task = load_task("demo")
    make_runs(task, tmp_path / "runs", "prior", prior, rules=("AR",), folds=[1])
    r = subprocess.run([sys.executable, "-m", "serbench.cli", "score",
                        str(tmp_path / "runs" / "demo" / "prior"), "--json", "--resamples", "20"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr

    def refuse(name: str) -> None:
        raise ValueError(f"not JSON: {name}")

    json.loads(r.stdout, parse_constant=refuse)  # no NaN / Infinity anywhere
