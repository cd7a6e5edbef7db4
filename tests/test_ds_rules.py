"""Dawid-Skene target rules (DS, DS1): crowd-kit equality, keep masks, tasks, truth report."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy.spatial.distance import jensenshannon
from test_tasks import TASK, write_release

from serbench import aggregation as agg
from serbench.errors import InputError
from serbench.records import CellKey
from serbench.reference import reference
from serbench.rules import RuleResult, apply_rule
from serbench.scoring import score_probs
from serbench.summaries import aggregate
from serbench.tasks import freeze, prepare
from serbench.tasks.spec import parse_task
from serbench.truth import closest_rule, mixtures_from_table, truth_report
from serbench.views import TaskBoard, three_by_three_values

# (clip, rater, class): 8 clips, 4 raters, 3 classes; rater r4 says "c" for "b".
RATED = [
    ("u1", "r1", 0), ("u1", "r2", 0), ("u1", "r3", 0), ("u1", "r4", 0),
    ("u2", "r1", 1), ("u2", "r2", 1), ("u2", "r4", 2),
    ("u3", "r1", 1), ("u3", "r3", 2), ("u3", "r4", 2),
    ("u4", "r2", 2), ("u4", "r3", 2), ("u4", "r4", 2),
    ("u5", "r1", 0), ("u5", "r2", 1), ("u5", "r3", 0), ("u5", "r4", 2),
    ("u6", "r2", 1), ("u6", "r3", 1), ("u6", "r4", 2),
    ("u7", "r1", 2), ("u7", "r2", 0),
    ("u8", "r3", 1),
]
IDS = np.array(sorted({u for u, _, _ in RATED}), dtype=object)
CLASSES = ("a", "b", "c")


def ratings_table(rows=RATED) -> pd.DataFrame:
    return pd.DataFrame({"utterance_id": [u for u, _, _ in rows],
                         "rater_id": [r for _, r, _ in rows],
                         "mapped_class": [CLASSES[c] for _, _, c in rows],
                         "question": "primary"})


def counts_of(rows=RATED) -> np.ndarray:
    out = np.zeros((len(IDS), 3), dtype=np.int64)
    for u, _, c in rows:
        out[list(IDS).index(u), c] += 1
    return out


def crowdkit_posterior(frame: pd.DataFrame, n_iter: int, one_coin: bool) -> np.ndarray:
    """crowd-kit's posterior [clips, K] after exactly ``n_iter`` EM iterations."""
    crowdkit = pytest.importorskip("crowdkit.aggregation")  # the test extra installs it
    cls = crowdkit.OneCoinDawidSkene if one_coin else crowdkit.DawidSkene
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas deprecation warnings inside crowd-kit
        model = cls(n_iter=n_iter, tol=float("-inf"))
        proba = model.fit_predict_proba(frame)
    return proba.reindex(index=IDS, columns=range(3)).fillna(0.0).to_numpy()


@pytest.mark.parametrize("one_coin", [False, True])
@pytest.mark.parametrize("n_iter", [1, 4, 40])
def test_rater_posteriors_equal_crowdkit(one_coin: bool, n_iter: int):
    frame = pd.DataFrame(RATED, columns=["task", "worker", "label"])
    expected = crowdkit_posterior(frame, n_iter, one_coin)
    votes = agg.rater_votes(ratings_table(), IDS, CLASSES, "primary")
    assert votes is not None and votes.mode == "raters" and votes.workers == ("r1", "r2", "r3",
                                                                              "r4")
    fit = agg.dawid_skene(votes, 3, one_coin=one_coin, max_iter=n_iter, tol=0.0)
    assert fit.iterations == n_iter
    # crowd-kit floors its returned posteriors at 1e-10 (its objective clips them in place)
    np.testing.assert_allclose(fit.posterior, expected, atol=2e-10)


@pytest.mark.parametrize("one_coin", [False, True])
def test_pooled_posteriors_equal_crowdkit(one_coin: bool):
    counts = counts_of()
    rows = [(IDS[i], "anyone", k) for i in range(len(IDS)) for k in range(3)
            for _ in range(counts[i, k])]
    frame = pd.DataFrame(rows, columns=["task", "worker", "label"])
    for n_iter in (1, 7, 60):
        fit = agg.dawid_skene(agg.pooled_votes(counts), 3, one_coin=one_coin, max_iter=n_iter,
                              tol=0.0)
        np.testing.assert_allclose(fit.posterior, crowdkit_posterior(frame, n_iter, one_coin),
                                   atol=2e-10)


def test_converged_fit_is_crowdkit_run_as_long():
    counts = counts_of()
    rows = [(IDS[i], "anyone", k) for i in range(len(IDS)) for k in range(3)
            for _ in range(counts[i, k])]
    frame = pd.DataFrame(rows, columns=["task", "worker", "label"])
    fit = agg.dawid_skene(agg.pooled_votes(counts), 3)
    assert fit.converged and 1 < fit.iterations < agg.MAX_ITER
    np.testing.assert_allclose(fit.posterior, crowdkit_posterior(frame, fit.iterations, False),
                               atol=2e-10)
    # EM never lowers the marginal likelihood (crowd-kit's own objective does fall)
    for f in (fit, agg.dawid_skene(agg.rater_votes(ratings_table(), IDS, CLASSES, "primary"),
                                   3, max_iter=200)):
        assert all(b >= a - 1e-12 for a, b in zip(f.history, f.history[1:], strict=False))
    # per-rater DS on 23 votes drifts towards certainty and stops at the cap, saying so
    capped = agg.dawid_skene(agg.rater_votes(ratings_table(), IDS, CLASSES, "primary"), 3,
                             max_iter=50)
    assert capped.iterations == 50 and not capped.converged


def test_one_em_step_by_hand():
    # counts [[2, 0], [1, 1]], pooled. Start: shares q = [[1, 0], [.5, .5]], prior [.75, .25];
    # confusion P(answer | true): true a -> (2.5, .5)/3, true b -> (.5, .5)/1.
    # E-step: u1 ∝ (.75 (5/6)^2, .25 (1/2)^2) = (25/48, 3/48); u2 ∝ (.75 (5/6)(1/6), 1/16).
    fit = agg.dawid_skene(agg.pooled_votes(np.array([[2, 0], [1, 1]])), 2, max_iter=1, tol=0)
    np.testing.assert_allclose(fit.posterior, [[25 / 28, 3 / 28], [5 / 8, 3 / 8]], rtol=1e-12)


def test_keep_masks_and_labels_by_hand():
    counts = np.array([[3, 0, 0], [0, 0, 0], [1, 1, 1], [0, 2, 0], [0, 0, 1]])
    for rule in ("DS", "DS1"):
        res = apply_rule(rule, counts)
        assert res.keep.tolist() == [True, False, True, True, True]  # as AR: >= 1 vote
        assert res.targets.shape == (4, 3)
        np.testing.assert_allclose(res.targets.sum(axis=1), 1.0)
        assert res.labels.tolist() == res.targets.argmax(axis=1).tolist()
        assert res.labels[[0, 2, 3]].tolist() == [0, 1, 2]  # unanimous clips keep their class
    # a class nobody chose gets posterior 0; one chosen class only: one-hot
    single = apply_rule("DS", np.array([[2, 0], [1, 0], [0, 0]]))
    assert single.keep.tolist() == [True, True, False]
    np.testing.assert_array_equal(single.targets, [[1.0, 0.0], [1.0, 0.0]])


def test_task_votes_use_rater_ids_else_pool():
    table = ratings_table()
    votes = agg.task_votes(table, IDS, CLASSES, "primary", counts_of())
    assert votes.mode == "raters" and len(votes) == len(RATED)
    table.loc[3, "rater_id"] = None  # one vote without an id: pooled, and said so
    votes = agg.task_votes(table, IDS, CLASSES, "primary", counts_of())
    assert votes.mode == "pooled" and votes.workers == (agg.POOLED,)


def test_row_order_of_the_ratings_does_not_change_the_fit():
    table = ratings_table()
    shuffled = table.sample(frac=1.0, random_state=3).reset_index(drop=True)
    fits = [agg.dawid_skene(agg.task_votes(t, IDS, CLASSES, "primary", counts_of()), 3,
                            max_iter=300) for t in (table, shuffled)]
    np.testing.assert_array_equal(fits[0].posterior, fits[1].posterior)  # bit for bit


def test_held_out_posterior_is_the_fit_without_that_vote():
    votes = agg.rater_votes(ratings_table(), IDS, CLASSES, "primary")
    assert votes is not None
    fit = agg.dawid_skene(votes, 3)
    sel, targets = agg.held_out_posteriors(fit, votes)
    assert set(votes.clip[sel]) == set(range(7))  # u8 has one vote: nothing remains
    v = int(sel[0])  # u1's first vote, by hand: prior times the other three votes' rows
    others = [j for j in range(len(votes)) if votes.clip[j] == votes.clip[v] and j != v]
    like = fit.priors * np.prod([fit.errors[votes.worker[j], votes.label[j]] for j in others],
                                axis=0)
    np.testing.assert_allclose(targets[0], like / like.sum(), rtol=1e-9)


# --------------------------------------------------------------------------- tasks


@pytest.fixture
def ds_task(tasks_dir: Path, home: Path, tmp_path: Path):
    (tasks_dir / "tiny").mkdir()
    (tasks_dir / "tiny" / "task.yaml").write_text(
        yaml.safe_dump({**TASK, "rules": ["MR", "PR", "AR", "DS"]}))
    src = write_release(tmp_path / "release")
    freeze("tiny", src)
    return prepare("tiny", src)[0]


def test_task_with_ds_builds_fingerprints_and_has_its_test_set(ds_task, tasks_dir: Path):
    task = ds_task
    fp = task.fingerprint
    assert set(fp["cells"]["fold_1"]) == {"MR", "PR", "AR", "DS"}
    for fold in (1, 2):
        ds, ar = task.split(fold, "test", "DS"), task.split(fold, "test", "AR")
        assert ds.ids.tolist() == ar.ids.tolist() and len(ds) > 0
        np.testing.assert_allclose(ds.targets.sum(axis=1), 1.0)
        assert fp["cells"][f"fold_{fold}"]["DS"]["test"]["n"] == len(ds)
    # the targets are pooled DS on the task's counts, fitted once over every clip
    res, _ = agg.model_rule("DS", task.counts.counts)
    np.testing.assert_allclose(task.rule("DS").targets, res.targets)
    s = task.summary()
    assert s["rules"]["DS"] == 8 and s["aggregation"]["DS"]["workers"] == "pooled"
    assert s["aggregation"]["DS"]["converged"] is True and s["aggregation"]["DS"]["note"]
    # the configuration hash names the DS settings; a task without DS has no such key
    assert "aggregation" in task.spec.target_config()
    assert "aggregation" not in parse_task(TASK, tasks_dir / "x.yaml").target_config()
    assert fp["fingerprint"] == task.fingerprint["fingerprint"]
    # the export carries the posterior beside the vote distribution
    from serbench.export import clip_table

    table = clip_table(task).to_pydict()
    assert table["in_ds"] == task.rule("DS").keep.tolist()
    np.testing.assert_allclose(np.array(table["ds_posterior"]), task.rule("DS").targets)


def test_rater_ids_give_per_rater_ds(tasks_dir: Path, home: Path, tmp_path: Path):
    from test_table_reader import ROWS, write_corpus

    spec = {"name": "rated", "corpus": {"reader": "csv"},
            "classes": ["angry", "happy", "neutral"],
            "label_map": {"ang": "angry", "hap": "happy", "neu": "neutral"},
            "rules": ["MR", "PR", "AR", "DS", "DS1"],
            "folds": {"group_by": "speaker_id", "splits": [{"test": ["s1"], "dev": ["s2"]},
                                                             {"test": ["s3"], "dev": ["s4"]}]},
            "frozen": False}
    (tasks_dir / "rated").mkdir()
    (tasks_dir / "rated" / "task.yaml").write_text(yaml.safe_dump(spec))
    src = write_corpus(tmp_path / "corpus", ROWS)
    task = prepare("rated", src)[0]
    assert task.summary()["aggregation"]["DS"]["workers"] == "raters"
    assert {"DS", "DS1"} <= set(task.fingerprint["cells"]["fold_1"])
    # the task can pool on purpose: then the targets are pooled DS of the counts
    spec["aggregation"] = {"workers": "pooled"}
    (tasks_dir / "rated" / "task.yaml").write_text(yaml.safe_dump(spec))
    pooled = prepare("rated", src)[0]
    assert pooled.summary()["aggregation"]["DS1"]["workers"] == "pooled"
    np.testing.assert_allclose(pooled.rule("DS").targets,
                               apply_rule("DS", pooled.counts.counts).targets)
    assert pooled.spec.config_hash() != task.spec.config_hash()


def test_per_rater_ds_needs_rater_ids(tasks_dir: Path, home: Path, tmp_path: Path):
    (tasks_dir / "tiny").mkdir()
    (tasks_dir / "tiny" / "task.yaml").write_text(yaml.safe_dump(
        {**TASK, "rules": ["AR", "DS"], "aggregation": {"workers": "raters"}, "frozen": False}))
    with pytest.raises(InputError, match="some votes have no rater id"):
        prepare("tiny", write_release(tmp_path / "release"))
    with pytest.raises(InputError, match=r"aggregation\.workers must be one of"):
        parse_task({**TASK, "aggregation": {"workers": "everyone"}}, tmp_path / "task.yaml")


def test_unknown_rule_is_a_precise_error(tmp_path: Path):
    with pytest.raises(InputError) as exc:
        parse_task({**TASK, "rules": ["MR", "PR", "AR", "DX"]}, tmp_path / "task.yaml")
    msg = str(exc.value)
    assert "task.yaml" in msg and "unknown rule(s): 'DX'" in msg and "MR, PR, AR, DS, DS1" in msg
    with pytest.raises(InputError, match="'ds' \\(did you mean 'DS'\\?\\)"):
        parse_task({**TASK, "rules": ["MR", "ds"]}, tmp_path / "task.yaml")
    with pytest.raises(InputError, match="repeated"):
        parse_task({**TASK, "rules": ["MR", "DS", "DS"]}, tmp_path / "task.yaml")


def test_unknown_rule_exits_2_without_traceback(tasks_dir: Path, home: Path):
    (tasks_dir / "tiny").mkdir()
    (tasks_dir / "tiny" / "task.yaml").write_text(
        yaml.safe_dump({**TASK, "rules": ["MR", "dawid"]}))
    proc = subprocess.run([sys.executable, "-m", "serbench.cli", "tasks", "show", "tiny"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    text = proc.stdout + proc.stderr
    assert "'dawid'" in text and "Traceback" not in text


def test_scores_and_train_by_test_table_grow_with_ds(ds_task):
    task = ds_task
    rng = np.random.default_rng(0)
    cells = []
    for fold in (1, 2):
        ids = task.split(fold, "test", "AR").ids
        for train in task.spec.rules:
            probs = rng.dirichlet(np.ones(3), size=len(ids))
            cells.append(score_probs(task, CellKey("tiny", "rand", fold, train, 0), ids, probs,
                                     n_resamples=20))
    assert {"DS"} <= set(cells[0].point)
    ref = reference(task)  # the human row under DS: remaining votes under the fitted model
    assert ref["multilabel_macro_f1"]["DS"]["human"].value is not None
    a = aggregate(task, cells)
    board = TaskBoard(task, [a], {"rand": "1"})
    values = three_by_three_values(board, a)
    assert values.shape == (4, 4) and np.isfinite(values).all()


# --------------------------------------------------------------------------- truth


def test_truth_report_by_hand():
    truth = np.array([[0.8, 0.2], [0.5, 0.5], [0.1, 0.9]])
    mr = RuleResult("MR", np.array([True, False, True]), np.array([[1.0, 0], [0, 1.0]]),
                    np.array([0, 1]))
    ar = RuleResult("AR", np.array([True, True, True]),
                    np.array([[0.6, 0.4], [0.5, 0.5], [0.0, 1.0]]), np.array([0, -1, 1]))
    rep = truth_report(truth, {"MR": mr, "AR": ar})
    # MR kept: TV .2 and .1; all: clip 2 as uniform (TV 0); accuracy 1, 1 (and tie: 1)
    assert rep["MR"]["coverage"] == pytest.approx(2 / 3)
    assert rep["MR"]["kept"]["tv"] == pytest.approx(0.15)
    assert rep["MR"]["all"]["tv"] == pytest.approx(0.1)
    assert rep["MR"]["kept"]["accuracy"] == 1.0 and rep["MR"]["all"]["accuracy"] == 1.0
    # AR: TV .2, 0, .1; the common clips are 1 and 3
    assert rep["AR"]["kept"]["tv"] == pytest.approx(0.1)
    assert rep["AR"]["common"]["tv"] == pytest.approx(0.15) and rep["AR"]["common"]["n"] == 2
    js = np.mean([jensenshannon([0.6, 0.4], [0.8, 0.2], base=2), 0.0,
                  jensenshannon([0.0, 1.0], [0.1, 0.9], base=2)])
    assert rep["AR"]["kept"]["js"] == pytest.approx(js)
    # a tied target counts half when one of its two classes is the truth's top class
    half = truth_report(np.array([[0.7, 0.3]]), {"AR": RuleResult(
        "AR", np.array([True]), np.array([[0.5, 0.5]]), np.array([-1]))})
    assert half["AR"]["kept"]["accuracy"] == 0.5
    assert closest_rule(rep, clips="common", measure="tv") in ("MR", "AR")
    assert closest_rule(rep, clips="all", measure="tv") == "MR"


def test_mixtures_from_table_checks_rows(tmp_path: Path):
    table = pd.DataFrame({"utterance_id": ["u1", "u2"], "mix_a": [0.3, 1.0],
                          "mix_b": [0.7, 0.0]})
    np.testing.assert_allclose(mixtures_from_table(table, ["u2", "u1"], ["a", "b"]),
                               [[1.0, 0.0], [0.3, 0.7]])
    table.loc[1, "mix_a"] = 0.9
    with pytest.raises(InputError, match="'u2' is not a distribution"):
        mixtures_from_table(table, ["u1", "u2"], ["a", "b"])
    with pytest.raises(InputError, match="mix_c"):
        mixtures_from_table(table, ["u1"], ["a", "c"])


def test_tasks_truth_command(ds_task, tmp_path: Path):
    import json

    ids = [str(u) for u in ds_task.counts.ids]
    rng = np.random.default_rng(1)
    mix = rng.dirichlet(np.ones(3), size=len(ids))
    clips = pd.DataFrame({"utterance_id": ids, **{f"mix_{c}": mix[:, i]
                                                   for i, c in enumerate(("a", "b", "c"))}})
    clips.to_csv(tmp_path / "clips.csv", index=False)
    cmd = [sys.executable, "-m", "serbench.cli", "tasks", "truth", "tiny", "--clips"]
    proc = subprocess.run([*cmd, str(tmp_path / "clips.csv"), "--json"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    expected = truth_report(mix, {r: ds_task.rule(r) for r in ds_task.spec.rules})
    assert set(got["rules"]) == {"MR", "PR", "AR", "DS"}
    for rule, rep in expected.items():
        assert got["rules"][rule]["all"]["tv"] == pytest.approx(rep["all"]["tv"])
    assert got["closest"]["common"]["tv"] == closest_rule(expected, clips="common")
    clips.drop(columns="mix_c").to_csv(tmp_path / "bad.csv", index=False)
    proc = subprocess.run([*cmd, str(tmp_path / "bad.csv")], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2 and "mix_c" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr


def test_aggregation_without_a_model_rule_is_refused(tmp_path: Path):
    """aggregation only configures DS / DS1: on a task without them it would do nothing."""
    with pytest.raises(InputError, match="rules \\['MR', 'PR', 'AR'\\] has none of them"):
        parse_task({**TASK, "aggregation": {"workers": "pooled"}}, tmp_path / "task.yaml")
    parse_task({**TASK, "rules": ["AR", "DS"], "aggregation": {"workers": "pooled"}},
               tmp_path / "task.yaml")  # with DS it is fine


@pytest.mark.parametrize("extra, expect", [
    ({"version": "two"}, "version must be an integer, not 'two'"),
    ({"version": 2.7}, "version must be an integer, not 2.7"),
    ({"smoothing": "x"}, "smoothing must be a number, not 'x'"),
    ({"other": 5}, "other must be a mapping"),
])
def test_task_values_of_the_wrong_type_are_one_message(tmp_path: Path, extra, expect):
    with pytest.raises(InputError, match=expect):
        parse_task({**TASK, **extra}, tmp_path / "task.yaml")


def test_a_binary_task_file_is_one_message_and_does_not_hide_the_others(tasks_dir: Path):
    from serbench.tasks.spec import load_spec

    (tasks_dir / "junk").mkdir()
    (tasks_dir / "junk" / "task.yaml").write_bytes(bytes([0xFF, 0xFE, 0x00, 0x80]) + b"binary")
    with pytest.raises(InputError, match="not UTF-8 text"):
        load_spec(tasks_dir / "junk" / "task.yaml")
    res = subprocess.run([sys.executable, "-m", "serbench.cli", "tasks", "list", "--json"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr and '"demo"' in res.stdout and "junk" in res.stdout
