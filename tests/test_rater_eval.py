"""Rater-level evaluation end to end: counted votes, predict_rater_proba through the runner,
the rater-disjoint option, n/a on tasks without rater ids, coverage in every record."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import yaml
from runs_fixture import make_runs, prior
from sklearn.metrics import balanced_accuracy_score

from serbench import leaderboard as lb
from serbench.errors import InputError
from serbench.records import CellKey, find_records, write_cell
from serbench.runner import Runner
from serbench.scoring import score_record
from serbench.submission import Data, FitSpec, Submission
from serbench.tasks import load_task, prepare
from serbench.tasks.spec import parse_task

# ----------------------------------------------------------------------------- a tiny task

# fold 1 tests s1 (c1, c2), develops on s2 (c3); fold 2 tests s3 (c4), develops on s4 (c5).
# Raters a and b rate every clip; x rates only the s1 clips, so in fold 1 x is the one test
# rater who rated no training or development clip.
VOTES = [("c1", "a", "ang"), ("c1", "b", "ang"), ("c1", "x", "hap"),
         ("c2", "a", "hap"), ("c2", "b", "neu"), ("c2", "x", "hap"),
         ("c3", "a", "neu"), ("c3", "b", "neu"),
         ("c4", "a", "ang"), ("c4", "b", "hap"),
         ("c5", "a", "hap"), ("c5", "b", "hap")]
SPEAKER = {"c1": "s1", "c2": "s1", "c3": "s2", "c4": "s3", "c5": "s4"}
CLASSES = ["angry", "happy", "neutral"]
# the predictions written for fold 1's test clips (c1, c2)
P1 = {"c1": [.45, .35, .20], "c2": [.20, .60, .20]}


def _spec(raters: dict | None = None) -> dict:
    spec = {"name": "raterlet", "corpus": {"reader": "csv"}, "classes": CLASSES,
            "label_map": {"ang": "angry", "hap": "happy", "neu": "neutral"},
            "folds": {"group_by": "speaker_id", "splits": [{"test": ["s1"], "dev": ["s2"]},
                                                             {"test": ["s3"], "dev": ["s4"]}]},
            "frozen": False}
    if raters is not None:
        spec["raters"] = raters
    return spec


def _task(tasks_dir: Path, root: Path, raters: dict | None = None, anonymous: bool = False):
    (root / "wav").mkdir(parents=True, exist_ok=True)
    for clip in SPEAKER:
        sf.write(root / "wav" / f"{clip}.wav", np.zeros(8000, dtype=np.float32), 16000)
    lines = ["utterance_id,rater_id,label,speaker_id,question,audio"]
    lines += [f"{u},{'' if anonymous else r},{lab},{SPEAKER[u]},primary,wav/{u}.wav"
              for u, r, lab in VOTES]
    (root / "ratings.csv").write_text("\n".join(lines) + "\n")
    (tasks_dir / "raterlet").mkdir(exist_ok=True)
    (tasks_dir / "raterlet" / "task.yaml").write_text(yaml.safe_dump(_spec(raters)))
    return prepare("raterlet", root / "ratings.csv")[0]


def _records(task, runs: Path) -> list:
    """One record per fold: P1 on fold 1, uniform-ish on fold 2."""
    for fold in (1, 2):
        ids = task.split(fold, "test", "AR").ids
        probs = np.array([P1.get(u, [.5, .25, .25]) for u in ids])
        key = CellKey("raterlet", "fixed", fold, "AR", 0)
        write_cell(key.folder(runs), {"task": "raterlet",
                                      "task_fingerprint": task.fingerprint["fingerprint"],
                                      "fold": fold, "train_rule": "AR", "seed": 0,
                                      "submission": {"name": "fixed", "version": "1"}},
                   ids, probs, CLASSES)
    return sorted(find_records(runs)[0], key=lambda r: r.key.fold)


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
def test_all_raters_by_hand(tasks_dir, home, tmp_path):
    task = _task(tasks_dir, tmp_path / "corpus", {"min_votes": 1})
    rec1, _ = _records(task, tmp_path / "runs")
    s = score_record(task, rec1, n_resamples=50)
    ar = s.point["AR"]
    # votes of c1: ang, ang, hap; c2: hap, neu, hap
    ll = [math.log(.45), math.log(.45), math.log(.35), math.log(.6), math.log(.2), math.log(.6)]
    assert ar["vote_ll"] == pytest.approx(np.mean(ll), abs=1e-6)
    assert ar["vote_accuracy"] == pytest.approx(4 / 6)  # argmax c1 = angry, c2 = happy
    # per rater: a (ang, hap) both right -> 1; b (ang right, neu wrong) -> 0.5; x (hap, hap),
    # one right -> 0.5, as scikit-learn's balanced accuracy says
    pred = {"c1": 0, "c2": 1}
    uars = []
    for rater in "abx":
        mine = [(u, CLASSES.index({"ang": "angry", "hap": "happy", "neu": "neutral"}[lab]))
                for u, r, lab in VOTES if r == rater and u in pred]
        uars.append(balanced_accuracy_score([y for _, y in mine], [pred[u] for u, _ in mine]))
    assert uars == [1.0, 0.5, 0.5]
    assert ar["rater_uar"] == pytest.approx(np.mean(uars))
    assert ar["rater_uar_sd"] == pytest.approx(np.std(uars, ddof=1))
    # minority views: c1 happy (1 of 3), predicted .35 > 1/3: in; c2 neutral (1 of 3) at .2: out
    assert ar["minority_recall"] == pytest.approx(1 / 2)
    lo, hi = s.interval("AR", "vote_ll")  # the bootstrap sums in float32
    assert lo - 1e-6 <= ar["vote_ll"] <= hi + 1e-6
    cov = s.rater_coverage["AR"]
    assert (cov["votes"], cov["raters"], cov["raters_uar"], cov["test_disjoint"]) == \
        (6, 3, 3, False)


def test_rater_disjoint_test_raters(tasks_dir, home, tmp_path):
    task = _task(tasks_dir, tmp_path / "corpus", {"test_disjoint": True, "min_votes": 1})
    assert task.spec.rater_test_disjoint and task.spec.rater_min_votes == 1
    rec1, rec2 = _records(task, tmp_path / "runs")
    s = score_record(task, rec1, n_resamples=20)
    ar = s.point["AR"]
    # only x counts (a and b rated training and development clips): hap on c1 and on c2
    assert ar["vote_ll"] == pytest.approx((math.log(.35) + math.log(.6)) / 2, abs=1e-6)
    assert ar["vote_accuracy"] == pytest.approx(1 / 2)
    assert ar["rater_uar"] == pytest.approx(1 / 2)
    # among x's votes alone no class is a minority view
    assert ar["minority_recall"] is None
    assert "minority view" in s.notes["AR"]["minority_recall"]
    cov = s.rater_coverage["AR"]
    assert (cov["votes"], cov["raters"], cov["excluded"]["seen_raters"]) == (2, 1, 4)
    # fold 2: its test raters a and b rated training clips: every value n/a with the reason
    s2 = score_record(task, rec2, n_resamples=20)
    for m in ("vote_ll", "vote_accuracy", "rater_uar", "minority_recall"):
        assert s2.point["AR"][m] is None
        assert "no test rater is disjoint" in s2.notes["AR"][m]
    assert s2.rater_coverage["AR"]["excluded"]["seen_raters"] == 2  # a and b on c4


@pytest.mark.parametrize(("raters", "message"), [
    ({"test_disjoint": "yes"}, "raters.test_disjoint must be true or false"),
    ({"min_votes": 0}, "raters.min_votes must be a whole number >= 1"),
    ({"min_votes": 2.5}, "raters.min_votes must be a whole number >= 1"),
    ({"disjoint": True}, "unknown key"),
    (["test_disjoint"], "raters must be a mapping"),
])
def test_bad_rater_options_are_precise_errors(raters, message, tmp_path):
    with pytest.raises(InputError, match=message) as err:
        parse_task(_spec(raters), tmp_path / "task.yaml")
    assert "raters: {test_disjoint: true" in str(err.value)


def test_task_without_rater_ids_is_na_with_reason(tasks_dir, home, tmp_path):
    task = _task(tasks_dir, tmp_path / "corpus", anonymous=True)
    runs = tmp_path / "runs"
    _records(task, runs)
    s = score_record(task, find_records(runs)[0][0], n_resamples=10)
    for rule in ("PR", "AR"):
        for m in ("vote_ll", "vote_accuracy", "rater_uar", "rater_uar_sd", "minority_recall"):
            assert s.point[rule][m] is None
            assert "no rater ids" in s.notes[rule][m]
    assert "no rater ids" in s.rater_coverage["AR"]["why"]
    board = lb.build(runs, n_resamples=10)
    lb.write(board, tmp_path / "board")
    readme = (tmp_path / "board" / "README.md").read_text()
    section = readme.split("### Rater-level evaluation")[1].split("###")[0]
    assert "no rater ids" in section and "| fixed |" not in section  # one line, no n/a table
    csv_row = next(x for x in (tmp_path / "board" / "leaderboard.csv").read_text().splitlines()
                   if ",fixed,1,AR,AR,vote_ll," in x)
    assert ",n/a," in csv_row and "no rater ids" in csv_row


# ----------------------------------------------------------------------------- the runner


class RaterPrior(Submission):
    """Each training rater's smoothed class distribution; the pooled one for strangers."""

    name = "rater-prior"
    version = "1"
    mode = "good"

    def fit(self, train: Data, dev: Data, spec: FitSpec) -> None:
        assert train.ratings is not None
        r = train.ratings[train.ratings["question"] == "primary"]
        self.k = spec.k
        cls = {c: i for i, c in enumerate(spec.classes)}
        self.pooled = np.ones(spec.k)
        self.own: dict[str, np.ndarray] = {}
        for rater, lab in zip(r["rater_id"].astype(str), r["mapped_class"].astype(str),
                              strict=True):
            self.own.setdefault(rater, np.ones(spec.k))[cls[lab]] += 1
            self.pooled[cls[lab]] += 1
        self.pooled /= self.pooled.sum()
        self.own = {k: v / v.sum() for k, v in self.own.items()}

    def predict_proba(self, batch: Data) -> np.ndarray:
        return np.tile(self.pooled, (len(batch), 1))

    def rater_coverage(self) -> dict:
        return {"train_raters": len(self.own)}

    def predict_rater_proba(self, batch: Data, rater_ids) -> np.ndarray:
        out = np.stack([self.own.get(r, self.pooled) for r in rater_ids])
        out = np.tile(out, (len(batch), 1, 1))
        if self.mode == "shape":
            return out[:, :-1]
        if self.mode == "nan":
            out[0, 0, 0] = np.nan
        if self.mode == "sum":
            out = out * 2
        return out


@pytest.fixture
def demo(home):
    return load_task("demo")


def test_runner_stores_and_scores_rater_predictions(demo, tmp_path):
    runner = Runner(demo, RaterPrior, runs=tmp_path / "runs", device="cpu")
    res = runner.run_cell(runner.cells([1], ["AR"], [0])[0])
    assert res.status == "done", res.message
    (rec,), _ = find_records(tmp_path / "runs")
    assert rec.data["rater_predictions"] == "rater-predictions.parquet"
    cov = rec.data["rater_coverage"]
    assert cov["rater_predictions"] is True and cov["test"]["votes"] > 0
    assert cov["model"] == {"train_raters": 40}  # the submission's own rater_coverage()
    # independently: each test vote scored with that rater's training distribution
    sub = RaterPrior()
    train = runner.data(1, "train", "AR")[0]
    sub.fit(train, train, FitSpec("demo", demo.spec.classes, 1, "AR", "distribution", 0, "cpu",
                                  0.05))
    test_ids = set(demo.split(1, "test", "AR").ids)
    r = demo.ratings
    votes = r[(r["question"] == "primary") & r["utterance_id"].isin(test_ids)]
    cls = {c: i for i, c in enumerate(demo.spec.classes)}
    ll = [math.log(sub.own.get(str(rr), sub.pooled)[cls[str(lab)]])
          for rr, lab in zip(votes["rater_id"], votes["mapped_class"], strict=True)]
    s = score_record(demo, rec, n_resamples=0)
    assert s.rater_specific
    assert s.point["AR"]["vote_ll"] == pytest.approx(np.mean(ll), abs=1e-6)
    assert s.rater_coverage["AR"]["votes"] == len(ll) == cov["test"]["votes"]
    # the stored rows are each rater's own distribution, one row per voted (clip, rater) pair
    table = pd.read_parquet(rec.folder / "rater-predictions.parquet")
    assert len(table) == len(ll) and list(table.columns[:2]) == ["utterance_id", "rater_id"]
    want = np.stack([sub.own.get(str(rr), sub.pooled) for rr in table["rater_id"]])
    np.testing.assert_allclose(table.iloc[:, 2:].to_numpy(), want, atol=1e-12)


@pytest.mark.parametrize(("mode", "message"), [
    ("shape", "predict_rater_proba returned shape"),
    ("nan", "predict_rater_proba returned NaN or inf"),
    ("sum", "predict_rater_proba rows do not sum to 1"),
])
def test_bad_rater_predictions_fail_their_cell(demo, tmp_path, mode, message):
    cls = type(f"Bad{mode}", (RaterPrior,), {"mode": mode, "name": f"bad-{mode}"})
    runner = Runner(demo, cls, runs=tmp_path / "runs", device="cpu")
    res = runner.run_cell(runner.cells([1], ["AR"], [0])[0])
    assert res.status == "failed" and message in res.message
    assert not find_records(tmp_path / "runs")[0]


def test_every_record_has_rater_coverage(demo, tmp_path):
    make_runs(demo, tmp_path / "fixture", "prior", prior, rules=("AR",), folds=(1,))

    class Plain(RaterPrior):
        name = "plain"
        predict_rater_proba = Submission.predict_rater_proba  # type: ignore[assignment]

    assert not Plain.predicts_raters() and RaterPrior.predicts_raters()
    runner = Runner(demo, Plain, runs=tmp_path / "runs", device="cpu")
    assert runner.run_cell(runner.cells([1], ["AR"], [0])[0]).status == "done"
    (rec,), _ = find_records(tmp_path / "runs")
    data = json.loads(rec.path.read_text())
    assert "rater_predictions" not in data
    assert data["rater_coverage"]["rater_predictions"] is False
    assert data["rater_coverage"]["test"]["raters"] > 0
    s = score_record(demo, rec, n_resamples=0)
    assert not s.rater_specific and s.point["AR"]["vote_ll"] is not None


# ----------------------------------------------------------------------------- baselines

FAST = {"max_epochs": 1, "patience": 1, "hidden": 16, "fc": 16}


def _fit(runner, name, config, demo):
    from serbench import plugins

    train, _ = runner.data(1, "train", "AR")
    dev, _ = runner.data(1, "dev", "AR")
    sub = plugins.resolve(name)(**FAST, **config)
    sub.fit(train, dev, FitSpec("demo", demo.spec.classes, 1, "AR", "distribution", 0, "cpu",
                                0.05))
    return sub, dev.take(np.arange(5))


def test_rater_fusion_and_crowd_layer_predict_each_kept_rater(demo, tmp_path):
    """Fusion: a kept rater's head, the fused clip prediction for a stranger; crowd layer:
    the softmax of a kept rater's map, the base softmax for a stranger."""
    import torch

    from serbench import plugins
    from serbench.methods import training

    runner = Runner(demo, plugins.resolve("rater-fusion"), FAST, runs=tmp_path / "runs",
                    device="cpu")
    runner.prepare_features()  # the log-mel features both models read, extracted once
    sub, batch = _fit(runner, "rater-fusion", {"max_raters": 3}, demo)
    kept = list(sub.raters)
    out = sub.predict_rater_proba(batch, [kept[1], "stranger", kept[0]])
    assert out.shape == (5, 3, demo.spec.k)
    _, _, heads = sub._posteriors(batch)
    np.testing.assert_allclose(out[:, 0], heads[1], atol=1e-9)
    np.testing.assert_allclose(out[:, 2], heads[0], atol=1e-9)
    np.testing.assert_allclose(out[:, 1], sub.predict_proba(batch), atol=1e-9)
    cov = sub.rater_coverage()
    assert cov["test"] == {"raters_asked": 3, "raters_with_head": 2}
    assert cov["train"]["kept_raters"] == 3

    crowd, batch = _fit(runner, "crowd-layer", {"max_raters": 3}, demo)
    kept = list(crowd.raters)
    out = crowd.predict_rater_proba(batch, ["stranger", kept[2]])
    raw = training.outputs(crowd.model, crowd.collate, batch, crowd.spec).float()
    np.testing.assert_allclose(out[:, 1], torch.softmax(raw[:, 3], -1).numpy(), atol=1e-6)
    np.testing.assert_allclose(out[:, 0], crowd.predict_proba(batch), atol=1e-6)
    assert crowd.rater_coverage()["test"] == {"raters_asked": 2, "raters_with_map": 1}


def test_bad_rater_option_exits_2_with_one_message(tasks_dir, home, tmp_path):
    import subprocess
    import sys

    (tasks_dir / "raterlet").mkdir()
    (tasks_dir / "raterlet" / "task.yaml").write_text(
        yaml.safe_dump(_spec({"test_disjoint": "sometimes"})))
    res = subprocess.run([sys.executable, "-m", "serbench.cli", "tasks", "show", "raterlet"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2, res.stderr
    text = res.stdout + res.stderr
    assert "raters.test_disjoint must be true or false" in text and "Traceback" not in text


def test_compare_refuses_rater_metrics_with_a_message(demo, tmp_path):
    from serbench.scoring import load_probs
    from serbench.summaries import compare

    make_runs(demo, tmp_path, "prior", prior, rules=("AR",), folds=(1,))
    loaded = [(r.key, *load_probs(demo, r)) for r in find_records(tmp_path)[0]]
    with pytest.raises(InputError, match="no paired comparison yet"):
        compare(demo, loaded, loaded, metric="vote_ll", train_rule="AR", test_rule="AR")


def test_reference_rows_by_hand(tasks_dir, home, tmp_path):
    from serbench.rater_eval import reference_fold, reference_rows

    task = _task(tasks_dir, tmp_path / "corpus", {"min_votes": 1})
    ref = reference_fold(task, 1, "AR")
    # prior: fold 1 trains on c4 (ang, hap) and c5 (hap, hap): AR targets' mean (.25, .75, 0)
    ll = [math.log(.25)] * 2 + [math.log(.75)] * 3 + [math.log(1e-8)]  # votes: 2 ang, 3 hap, 1 neu
    assert ref["prior"]["vote_ll"] == pytest.approx(np.mean(ll), abs=1e-6)
    assert ref["prior"]["vote_accuracy"] == pytest.approx(3 / 6)
    # held out: a vote predicted by the clip's two other votes, smoothed by 0.05 (K = 3):
    # four votes share their class with one of the other two (p = .95 * .5 + .05 / 3),
    # two with neither (p = .05 / 3); ties go to the lower class, so 4 of 6 are right
    half, none = .95 * .5 + .05 / 3, .05 / 3
    assert ref["human"]["vote_ll"] == pytest.approx(
        (4 * math.log(half) + 2 * math.log(none)) / 6, abs=1e-6)
    assert ref["human"]["vote_accuracy"] == pytest.approx(4 / 6)
    assert ref["human"]["minority_recall"] is None
    rows = reference_rows(task, "AR")
    assert rows["human"]["minority_recall"][0] is None and rows["human"]["minority_recall"][1]
    anonymous = _task(tasks_dir, tmp_path / "corpus2", anonymous=True)
    assert all(v is None and "no rater ids" in why
               for row in reference_rows(anonymous, "AR").values() for v, why in row.values())
