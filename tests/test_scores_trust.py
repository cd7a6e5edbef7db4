"""Issue 14 (scores a reader can trust): proper metrics, reference rows, seed-aware statistics.

Every expected value is worked out by hand here or computed by scikit-learn / scipy.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from runs_fixture import make_runs, noisy_oracle, prior
from sklearn.metrics import (
    average_precision_score,
    balanced_accuracy_score,
    brier_score_loss,
    f1_score,
    log_loss,
    recall_score,
)

from serbench import bootstrap as bs
from serbench import metrics as M
from serbench import views
from serbench.outputs import check_probabilities
from serbench.records import CellKey, find_records, read_predictions, write_cell
from serbench.reference import reference, reference_rows
from serbench.rules import apply_rule
from serbench.scoring import load_probs, score_record, score_records
from serbench.summaries import aggregate, compare, hierarchical_interval
from serbench.tasks import load_task
from serbench.tasks.task import Split

# ----------------------------------------------------------------------------- metrics


def _data(seed: int, n: int = 400, k: int = 5):
    rng = np.random.default_rng(seed)
    t = rng.dirichlet(np.ones(k) * 0.5, size=n)
    p = rng.dirichlet(np.ones(k), size=n)
    p[: n // 4] = np.round(p[: n // 4] * 4) / 4 + 1e-3  # ties in the scores
    p /= p.sum(axis=1, keepdims=True)
    return t, p


@pytest.mark.parametrize("ties", [False, True])
def test_resampled_auprc_equals_sklearn_with_the_draw_counts_as_weights(ties: bool):
    """The bootstrap's AP (``counts=True``: the path for untied scores) is scikit-learn's
    average precision with each clip weighted by how often the resample drew it."""
    rng = np.random.default_rng(7)
    t, p = _data(7) if ties else (rng.dirichlet(np.ones(5) * 0.5, size=300),
                                  rng.dirichlet(np.ones(5), size=300))
    bits = (t > 1 / t.shape[1]).astype(int)
    w = np.vstack([c.copy() for c in bs.resample_weights(len(t), 6, 3)])
    plan = M.rank_plan(t, p)
    fast = M.average_precision(plan, w, counts=True)
    assert np.allclose(fast, M.average_precision(plan, w), rtol=0, atol=1e-12)
    for r in range(len(w)):
        assert fast[r] == pytest.approx(np.mean([average_precision_score(
            bits[:, c], p[:, c], sample_weight=w[r]) for c in range(t.shape[1])]), abs=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_new_metrics_against_sklearn(seed: int):
    t, p = _data(seed)
    k = t.shape[1]
    bits = (t > 1 / k).astype(int)
    r = M.compute(["auprc", "multilabel_weighted_f1", "nll", "brier"], t, p)
    assert r["auprc"] == pytest.approx(average_precision_score(bits, p, average="macro"))
    assert r["multilabel_weighted_f1"] == pytest.approx(
        f1_score(bits, (p > 1 / k).astype(int), average="weighted", zero_division=0))
    # NLL of the vote distribution = log-loss of votes weighted by their share
    rows = np.repeat(np.arange(len(t)), k)
    votes = np.tile(np.arange(k), len(t))
    assert r["nll"] == pytest.approx(log_loss(votes, p[rows], sample_weight=t.ravel(),
                                              labels=range(k)) * 1.0, rel=1e-9)
    assert r["brier"] == pytest.approx(((p - t) ** 2).sum(axis=1).mean())
    y = t.argmax(1)
    one_hot = np.eye(k)[y]
    s = M.compute(["nll", "brier", "weighted_f1", "uar"], one_hot, p, y)
    assert s["nll"] == pytest.approx(log_loss(y, p, labels=range(k)))
    assert s["brier"] == pytest.approx(brier_score_loss(y, p, labels=range(k)))
    assert s["weighted_f1"] == pytest.approx(f1_score(y, p.argmax(1), average="weighted"))
    assert s["uar"] == pytest.approx(balanced_accuracy_score(y, p.argmax(1)))


def test_uar_class_convention():
    # class 2 never appears in the reference: "present" averages 2 recalls, "all" 3
    y = np.array([0, 0, 1, 1])
    p = np.eye(3)[[0, 1, 1, 2]]
    assert M.compute(["uar"], None, p, y)["uar"] == pytest.approx((0.5 + 0.5) / 2)
    assert M.compute(["uar"], None, p, y, uar_classes="all")["uar"] == pytest.approx(
        recall_score(y, p.argmax(1), average="macro", labels=[0, 1, 2], zero_division=0))


def test_calibration_by_hand():
    t = np.array([[0.5, 0.5, 0.0], [0.0, 1.0, 0.0]])
    # predicting the vote distribution is perfectly calibrated class-wise
    assert M.compute(["ece_classwise"], t, t)["ece_classwise"] == 0.0
    p = np.array([[0.2, 0.7, 0.1], [0.2, 0.7, 0.1]])
    # class 0: both p = 0.2 in bin 3, mean t 0.25 -> 0.05; class 1: bin 10, mean t 0.75 -> 0.05;
    # class 2: bin 1, mean t 0 -> 0.1; mean over classes = 0.2 / 3
    assert M.compute(["ece_classwise"], t, p)["ece_classwise"] == pytest.approx(0.2 / 3)
    # top label: confidence 0.7 both, argmax (class 1) is a top class of both -> |0.7 - 1| = 0.3
    assert M.compute(["ece_toplabel"], t, p)["ece_toplabel"] == pytest.approx(0.3)
    # the old ECE against the 1/K bits does not score the exact distribution 0
    assert M.compute(["ece_bits"], t, t)["ece_bits"] > 0


def test_independent_outputs_are_used_as_they_are():
    t = np.array([[0.5, 0.5, 0.0], [0.0, 1.0, 0.0]])
    sig = np.array([[0.9, 0.8, 0.4], [0.1, 0.9, 0.05]])  # sigmoid outputs, rows do not sum to 1
    as_is = M.compute(["multilabel_macro_f1", "nll"], t, sig, independent=True)
    bits = (sig > 1 / 3).astype(int)
    assert as_is["multilabel_macro_f1"] == pytest.approx(
        f1_score((t > 1 / 3).astype(int), bits, average="macro", zero_division=0))
    norm = sig / sig.sum(axis=1, keepdims=True)
    assert as_is["nll"] == pytest.approx(M.compute(["nll"], t, norm)["nll"])
    assert np.array_equal(check_probabilities(sig, 2, 3, independent=True), sig)
    with pytest.raises(ValueError, match="do not sum to 1"):
        check_probabilities(sig, 2, 3)
    with pytest.raises(ValueError, match="above 1"):
        check_probabilities(sig * 2, 2, 3, independent=True)


# ----------------------------------------------------------------------------- bootstrap


def test_stratified_resamples_keep_every_class():
    strata = np.array([0] * 5 + [1] * 2 + [2] * 30)
    for w in bs.resample_weights(len(strata), 300, 0, strata):
        for c, n in ((0, 5), (1, 2), (2, 30)):
            assert (w[:, strata == c].sum(axis=1) == n).all()


def test_seed_bootstrap_draws_seeds_with_replacement():
    per_seed = np.array([np.zeros(2000), np.ones(2000), 2 * np.ones(2000)])
    out = bs.seed_resampled_mean(per_seed, 0)
    assert set(np.round(out * 3).astype(int)) <= set(range(7))  # means of 3 draws of {0, 1, 2}
    assert out.mean() == pytest.approx(1.0, abs=0.05)
    assert np.quantile(out, 0.025) <= 1 / 3 + 1e-9 and np.quantile(out, 0.975) >= 5 / 3 - 1e-9
    assert np.array_equal(bs.seed_resampled_mean(per_seed[:1], 0), per_seed[0])


# ----------------------------------------------------------------------------- reference rows


class CountsTask:
    """A one-fold task built straight from vote counts (duck-typed serbench Task)."""

    def __init__(self, counts: list[list[int]], part: list[str], *, smoothing: float = 0.0,
                 metrics: tuple[str, ...] = M.DEFAULT, truth: np.ndarray | None = None) -> None:
        c = np.array(counts)
        n, k = c.shape
        ids = np.array([f"u{i:03d}" for i in range(n)])
        self.truth = None if truth is None else pd.DataFrame(
            truth, index=ids, columns=[f"c{j}" for j in range(k)])
        self.counts = SimpleNamespace(ids=ids, counts=c, other=np.zeros(n, dtype=int))
        self.part = np.array(part)
        self.spec = SimpleNamespace(name="toy", k=k, classes=tuple(f"c{j}" for j in range(k)),
                                    rules=("MR", "PR", "AR"), metrics=metrics,
                                    uar_classes="present", smoothing=smoothing,
                                    mr_denominator="all_votes", primary_metric="auprc")
        self.n_folds = 1
        self.fingerprint = {"fingerprint": f"toy-{c.tobytes().hex()}-{smoothing}-{part}"}

    def split(self, fold: int, split: str, rule: str) -> Split:
        res = apply_rule(rule, self.counts.counts, self.counts.other)
        sel = (self.part == split)[res.keep]
        return Split(fold, split, rule, self.counts.ids[res.keep][sel], res.targets[sel],
                     res.labels[sel])


TOY_TEST = [[2, 1, 0], [0, 0, 3], [1, 0, 0]]
TOY_TRAIN = [[3, 0, 0], [2, 1, 0], [0, 2, 1], [0, 0, 4], [1, 1, 1], [0, 3, 0]]


def _toy(**kw) -> CountsTask:
    return CountsTask(TOY_TEST + TOY_TRAIN, ["test"] * 3 + ["train"] * 6, **kw)


def test_human_reference_by_hand():
    ref = reference(_toy())  # type: ignore[arg-type]
    # PR: clip 1 (2,1,0): holding out a class-0 vote leaves a tie (skipped); holding out the
    # class-1 vote leaves target 0 -> wrong. Clip 2: holding out a class-2 vote -> right.
    # Clip 3 has one vote: nothing left, skipped. Accuracy 1/2; UAR over classes {0, 2} = 1/2.
    assert ref["weighted_accuracy"]["PR"]["human"].value == pytest.approx(0.5)
    assert ref["uar"]["PR"]["human"].value == pytest.approx(0.5)
    # AR: clip 1 holds out class 0 (2 votes, target (.5,.5,0)) or class 1 (1 vote, target
    # (1,0,0)); one-hot votes (smoothing 0). Brier 0.5 and 2, weights 2/3 and 1/3; clip 2: 0.
    assert ref["brier"]["AR"]["human"].value == pytest.approx((2 / 3 * 0.5 + 1 / 3 * 2 + 0) / 2)


def test_prior_and_best_constant_by_hand_and_sklearn():
    task = _toy()
    ref = reference(task)  # type: ignore[arg-type]
    train, test = task.split(1, "train", "AR"), task.split(1, "test", "AR")
    pr = train.targets.mean(axis=0)
    nll = -(test.targets * np.log(np.maximum(pr, 1e-8))).sum(axis=1).mean()
    assert ref["nll"]["AR"]["prior"].value == pytest.approx(nll)
    assert ref["nll"]["AR"]["best_constant"].value == pytest.approx(nll)  # the mean is optimal
    # 1/K macro-F1: the best set of bits (at most K-1 on) on the training split, by sklearn
    k = 3
    tb, sb = (train.targets > 1 / k).astype(int), (test.targets > 1 / k).astype(int)
    best = max((s for m in range(k) for s in itertools.combinations(range(k), m)),
               key=lambda s: f1_score(tb, np.tile(np.isin(range(k), s), (len(tb), 1)).astype(int),
                                      average="macro", zero_division=0))
    want = f1_score(sb, np.tile(np.isin(range(k), best), (len(sb), 1)).astype(int),
                    average="macro", zero_division=0)
    assert ref["multilabel_macro_f1"]["AR"]["best_constant"].value == pytest.approx(want)
    # every constant ranks the same: AUPRC = prevalence of the bits (sklearn), averaged over
    # the classes with a positive bit in the test set (class 1 has none here)
    per_class = [average_precision_score(sb[:, c], np.full(len(sb), pr[c])) for c in (0, 2)]
    assert ref["auprc"]["AR"]["best_constant"].value == pytest.approx(np.mean(per_class))


def test_oracle_row_by_hand():
    """The oracle predicts each test clip's known answer distribution."""
    truth = np.full((9, 3), 1 / 3)
    truth[:3] = [[0.6, 0.3, 0.1], [0.1, 0.1, 0.8], [0.7, 0.2, 0.1]]
    task = _toy(truth=truth)
    ref = reference(task)  # type: ignore[arg-type]
    # AR targets of the test clips: (2/3, 1/3, 0), (0, 0, 1), (1, 0, 0).
    nll = -(2 / 3 * np.log(0.6) + 1 / 3 * np.log(0.3) + np.log(0.8) + np.log(0.7)) / 3
    assert ref["nll"]["AR"]["oracle"].value == pytest.approx(nll)
    # PR keeps all three (unique tops 0, 2, 0); the oracle's argmax is right on each.
    assert ref["weighted_accuracy"]["PR"]["oracle"].value == pytest.approx(1.0)
    assert "oracle" not in reference(_toy())["nll"]["AR"]  # type: ignore[arg-type]


def test_reference_rows_shape_and_na_reasons():
    one_vote = CountsTask([[1, 0], [0, 1], [1, 0], [0, 1]], ["test", "test", "train", "train"])
    rows = reference_rows(one_vote)  # type: ignore[arg-type]
    assert set(rows) == set(M.DEFAULT)
    assert set(rows["auprc"]) == {"MR", "PR", "AR"}
    assert set(rows["auprc"]["AR"]) == {"prior", "best_constant", "human"}
    assert rows["auprc"]["AR"]["human"].startswith("n/a: every test clip has fewer than 2")
    assert isinstance(rows["auprc"]["AR"]["prior"], float)
    json.dumps(rows)
    tied = reference_rows(CountsTask([*TOY_TEST, [1, 1, 0], *TOY_TRAIN],  # type: ignore[arg-type]
                                     ["test"] * 4 + ["train"] * 6))
    assert tied["uar"]["AR"]["prior"].startswith("n/a: needs a consensus label")
    values = [v for by in tied.values() for r in by.values() for v in r.values()]
    assert all(isinstance(v, str) or v is not None for v in values)


def test_demo_reference_reproduces_the_issue(home):
    """A constant gets closer to people on the paper's metric than on the chosen primary."""
    ref = reference(load_task("demo"))
    f1, ap = ref["multilabel_macro_f1"]["AR"], ref["auprc"]["AR"]
    assert ap["best_constant"].value == pytest.approx(ap["prior"].value)
    assert ap["human"].value > ap["best_constant"].value
    assert f1["best_constant"].value / f1["human"].value > \
        ap["best_constant"].value / ap["human"].value
    # demo v2 knows the truth: the oracle bounds every model, above people
    assert ap["oracle"].value > ap["human"].value and f1["oracle"].value > f1["human"].value


# ----------------------------------------------------------------------------- seeds and tests


@pytest.fixture
def demo(home):
    return load_task("demo")


def test_three_seeds_aggregate_and_compare(demo, tmp_path: Path):
    make_runs(demo, tmp_path / "a", "oracle", noisy_oracle, rules=("AR",), seeds=(0, 1, 2))
    make_runs(demo, tmp_path / "b", "prior", prior, rules=("AR",), seeds=(0, 1, 2))
    recs = find_records(tmp_path / "a")[0]
    cells = score_records(demo, recs, n_resamples=200)
    agg = aggregate(demo, cells)
    assert agg.seeds == [0, 1, 2] and agg.complete["AR"]
    key = ("AR", "AR", "auprc")
    by_seed = [np.mean([c.point["AR"]["auprc"] for c in cells if c.key.seed == s])
               for s in (0, 1, 2)]
    assert agg.mean[key] == pytest.approx(np.mean(by_seed))
    assert agg.seed_std[key] > 0
    lo, hi = agg.ci[key]
    assert lo < agg.mean[key] < hi
    mean, ci = hierarchical_interval(cells, "AR", "auprc")
    assert mean == pytest.approx(agg.mean[key]) and ci == pytest.approx(agg.ci[key])
    # the seed level widens the interval beyond the clip-only interval of one seed
    one = aggregate(demo, [c for c in cells if c.key.seed == 0])
    assert hi - lo > 0 and one.ci[key] != agg.ci[key]
    load = [[(r.key, *load_probs(demo, r)) for r in find_records(tmp_path / x)[0]]
            for x in ("a", "b")]
    res = compare(demo, load[0], load[1], metric="auprc", train_rule="AR", test_rule="AR",
                  n_resamples=200)
    assert res.seeds == [0, 1, 2] and len(res.seed_diffs) == 3
    assert res.seed_agreement == "3/3" and res.diff_ci[0] > 0
    # demo MR test sets have 43-51 clips: a 60-subset t-test is refused, with the reason
    mr = compare(demo, load[0], load[1], metric="uar", train_rule="AR", test_rule="MR",
                 n_resamples=50, n_subsets=60)
    assert np.isnan(mr.p_subsets) and "fewer than 60 subsets" in mr.t_test_refused
    assert not np.isnan(compare(demo, load[0], load[1], metric="uar", train_rule="AR",
                                test_rule="MR", n_resamples=50).p_subsets)


def test_independent_record_is_scored_as_declared(demo, tmp_path: Path):
    ids = demo.split(1, "test", "AR").ids
    rng = np.random.default_rng(0)
    sig = rng.uniform(0, 1, size=(len(ids), demo.spec.k))
    key = CellKey("demo", "sigmoid", 1, "AR", 0)
    record = {"task": "demo", "task_fingerprint": demo.fingerprint["fingerprint"], "fold": 1,
              "train_rule": "AR", "seed": 0, "submission": {"name": "sigmoid", "version": "1"},
              "config": {}, "timings": {}, "outputs": "independent"}
    folder = write_cell(key.folder(tmp_path), record, ids, sig, demo.spec.classes)
    with pytest.raises(Exception, match="do not sum to 1"):
        read_predictions(folder / "predictions.parquet", demo.spec.classes, ids)
    (rec,), _ = find_records(tmp_path)
    s = score_record(demo, rec, n_resamples=0)
    ar = demo.split(1, "test", "AR")
    k = demo.spec.k
    assert s.point["AR"]["multilabel_macro_f1"] == pytest.approx(f1_score(
        (ar.targets > 1 / k).astype(int), (sig > 1 / k).astype(int), average="macro",
        zero_division=0))
    assert s.point["AR"]["auprc"] == pytest.approx(average_precision_score(
        (ar.targets > 1 / k).astype(int), sig, average="macro"))
    norm = sig / sig.sum(axis=1, keepdims=True)
    assert s.point["AR"]["brier"] == pytest.approx(((norm - ar.targets) ** 2).sum(1).mean())


def test_terminal_three_by_three_has_reference_rows(demo, tmp_path: Path):
    from serbench import leaderboard as lb

    make_runs(demo, tmp_path, "oracle", noisy_oracle, seeds=(0, 1))
    board = lb.build(tmp_path, n_resamples=50)
    title, head, rows, notes = views.terminal_three_by_three(board, "demo", "oracle")
    assert head == ["train \\ test", "MR", "PR", "AR"] and "seeds 0, 1" in title
    assert [r[0] for r in rows[3:]] == list(views.REFERENCE_LABEL.values())
    ref = reference(demo)["auprc"]
    assert rows[4][3] == f"{ref['AR']['best_constant'].value:.4f}"
    assert any("classes present" in n for n in notes)
    assert views.terminal_three_by_three(board, "demo", "nobody") is None


def test_reference_table_for_tasks_show(demo):
    head, rows, notes = views.reference_table(demo)
    assert head[2:] == ["prior", "best constant", "human (held-out vote)", "oracle (known truth)"]
    ref = reference(demo)
    row = next(r for r in rows if r[0] == "auprc (primary)" and r[1] == "AR")
    assert row[2:] == [ref["auprc"]["AR"][k].text()
                       for k in ("prior", "best_constant", "human", "oracle")]
    assert any(r[0] == "multilabel_macro_f1 (paper)" for r in rows)
    assert not any(r[0].startswith("uar") and r[1] == "AR" for r in rows)  # undefined: omitted
    assert notes == []  # every shown demo row is defined


def test_human_spread_over_raters(demo):
    from serbench.reference import human_spread

    spread = human_spread(demo, ("uar", "brier"))
    mr = spread["uar"]["MR"]
    assert isinstance(mr, dict) and mr["raters"] == 40  # the demo's 40 simulated raters
    assert mr["p10"] <= mr["median"] <= mr["p90"]
    assert spread["uar"]["AR"] == "n/a: needs a consensus label"
    # one rater, by hand: its AR held-out votes against the targets of the remaining votes
    r = demo.ratings[demo.ratings["rater_id"].notna() & (demo.ratings["question"] == "primary")]
    ar_ids = set(np.concatenate([demo.split(f, "test", "AR").ids for f in range(1, 6)]))
    counts = {u: c for u, c in zip(demo.counts.ids, demo.counts.counts, strict=True)}
    per_rater = {}
    for rater, votes in r[r["utterance_id"].isin(ar_ids)].groupby("rater_id"):
        b = []
        for u, label in zip(votes["utterance_id"], votes["mapped_class"], strict=True):
            v = demo.spec.classes.index(label)
            rest = counts[u].astype(float)
            rest[v] -= 1
            if rest.sum() == 0:
                continue
            pred = np.full(6, 0.05 / 5)
            pred[v] = 0.95
            b.append(((pred - rest / rest.sum()) ** 2).sum())
        if len(b) >= 20:
            per_rater[rater] = np.mean(b)
    ar = spread["brier"]["AR"]
    assert isinstance(ar, dict) and ar["raters"] == len(per_rater)
    assert ar["median"] == pytest.approx(np.median(list(per_rater.values())), abs=1e-6)
    counts_only = CountsTask([[1, 2], [2, 1]], ["test", "train"])
    counts_only.ratings = None  # type: ignore[attr-defined]
    assert human_spread(counts_only)["auprc"]["AR"].startswith(  # type: ignore[arg-type]
        "n/a: the source has vote counts only")


def test_best_constant_ties_go_to_the_first_candidate():
    """Top-label ECE of a constant is |confidence - how often its arg max is a top class|.
    Each top-label candidate j sets its confidence to that rate (when it is above 1/K), so
    here four candidates (classes 1, 2, 3 and 4: rates 0.35, 0.45, 0.5, 0.3 > 1/5) score 0 in
    exact arithmetic; in floats they score 8e-17, 2e-17, 0 and 6e-18.  The first tied
    candidate (class 1) must win, not whichever the last bits favour (their test scores
    differ)."""
    from serbench.reference import best_constants

    counts = np.array([
        [2, 1, 1, 0, 0], [0, 0, 3, 2, 3], [2, 2, 3, 2, 2], [2, 2, 3, 1, 3], [2, 0, 1, 3, 2],
        [0, 3, 2, 3, 0], [0, 3, 0, 2, 0], [1, 1, 1, 1, 0], [0, 0, 0, 2, 2], [2, 1, 2, 3, 1],
        [1, 3, 3, 3, 1], [2, 3, 2, 3, 2], [2, 1, 3, 0, 2], [2, 3, 2, 1, 1], [1, 1, 2, 3, 0],
        [3, 2, 1, 2, 2], [1, 1, 2, 2, 2], [1, 3, 1, 1, 3], [1, 0, 2, 2, 0], [0, 1, 3, 1, 3]])
    t = counts / counts.sum(axis=1, keepdims=True)
    top = t == t.max(axis=1, keepdims=True)
    assert top.mean(axis=0) == pytest.approx([0.15, 0.35, 0.45, 0.5, 0.3])  # the rates
    labels = np.where(top.sum(axis=1) == 1, t.argmax(axis=1), -1)
    split = Split(1, "train", "AR", np.array([f"c{i}" for i in range(20)]), t, labels)
    c = best_constants(["ece_toplabel"], split)["ece_toplabel"]
    assert c == pytest.approx([0.1625, 0.35, 0.1625, 0.1625, 0.1625])  # class 1 at its rate


@pytest.mark.parametrize("metric", ["ece_classwise", "ece_toplabel"])
def test_binned_ece_intervals_hold_their_point(metric: str):
    """A binned ECE sums |gaps|, so clip resamples of a well-calibrated prediction sit above
    its point estimate; the scorer re-centres them (as for AP), so the interval holds it."""
    from serbench.scoring import score_test_set

    rng = np.random.default_rng(3)
    t = rng.dirichlet(np.ones(5), size=80)
    p = 0.9 * t + 0.1 * rng.dirichlet(np.ones(5), size=80)  # close to the targets
    point, samples = score_test_set([metric], t, p, None, n_resamples=500, seed=1)
    raw = M.finalize(metric, np.vstack([c.copy() for c in bs.resample_weights(80, 500, 1)])
                     @ M.statistics("dist", t, p), 5)
    assert raw.mean() > point[metric]  # the raw resamples are biased upward ...
    assert np.mean(samples[metric]) == pytest.approx(point[metric])  # ... re-centred
    lo, hi = bs.percentile_interval(samples[metric])
    assert lo <= point[metric] <= hi


def test_single_label_metrics_refuse_clips_without_a_consensus():
    """Label -1 (a tie) used to index the last class of the one-hot reference."""
    labels = np.array([0, -1, 2])
    with pytest.raises(ValueError, match="1 of 3 have none"):
        M.compute(["uar"], np.eye(3)[[0, 1, 2]], np.eye(3)[[0, 1, 2]], labels)


@pytest.mark.parametrize("call, expect", [
    (lambda: M.compute("uar", np.eye(3), np.eye(3), np.arange(3)), "list of metric names"),
    (lambda: M.compute(["foo"], np.eye(3), np.eye(3)), "unknown metric"),
    (lambda: M.compute(["nll"], np.eye(3), np.full((3, 3), np.nan)), "finite and non-negative"),
    (lambda: M.compute(["nll"], np.eye(3), np.eye(3), weights=[1, -1, 1]), "non-negative numbers"),
    (lambda: M.compute(["uar"], np.eye(3), np.eye(3), np.array([0, 1, 3])), "there are 3 classes"),
    (lambda: M.compute(["uar"], np.eye(3), np.eye(3), np.array([0.0, 1.5, 2])), "integer class"),
    (lambda: M.compute(["nll"], np.zeros((0, 3)), np.zeros((0, 3))), "at least one clip"),
    (lambda: M.compute(["kl"], -np.eye(3), np.eye(3)), "targets must be finite, non-negative"),
])
def test_compute_refuses_what_it_cannot_score(call, expect):
    """The public metric function says what is wrong instead of returning a number."""
    with pytest.raises((ValueError, TypeError), match=expect):
        call()
