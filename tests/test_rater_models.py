"""Rater fusion, crowd layers, the penalty through the runner, and the ablation recipe, on demo."""

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from serbench import plugins
from serbench.cli import app
from serbench.errors import InputError
from serbench.methods.cooccurrence import fold_penalty_matrix
from serbench.methods.penalty import PenaltyConfig
from serbench.methods.training import SingleHead
from serbench.recipes import ablation
from serbench.records import find_records
from serbench.runner import Runner
from serbench.scoring import score_record
from serbench.submission import FitSpec
from serbench.tasks import load_task

FAST = {"max_epochs": 1, "patience": 1, "hidden": 16, "fc": 16}


@pytest.fixture
def demo(home):
    return load_task("demo")


def _runner(task, name, config, tmp_path, label=None):
    r = Runner(task, plugins.resolve(name), config, runs=tmp_path / "runs", device="cpu",
               label=label)
    r.prepare_features()
    return r


def _spec(task, rule="AR"):
    return FitSpec(task="demo", classes=task.spec.classes, fold=1, train_rule=rule,
                   target_kind="distribution", seed=0, device="cpu", smoothing=0.05)


def test_penalty_matrix_comes_from_every_training_clip_and_no_test_rating(demo, tmp_path):
    r = _runner(demo, "blstm-fc", FAST, tmp_path)
    train, _ = r.data(1, "train", "MR")
    test, _ = r.data(1, "test", "AR", with_targets=False)
    assert test.ratings is None and test.split_ratings is None  # nothing to leak at test time
    # MR keeps fewer clips than the split has, yet the matrix counts the whole split's ratings,
    # exactly as Task.penalty_matrix does from the AR training ids
    assert len(train) < len(demo.split(1, "train", "AR"))
    head = SingleHead("kl", train, _spec(demo, "MR"), PenaltyConfig(alpha=0.2))
    np.testing.assert_allclose(head.penalty.numpy(), fold_penalty_matrix(demo, 1), atol=1e-7)


def test_penalised_blstm_cells_and_config_guard(demo, tmp_path):
    cfg = {**FAST, "loss": "kl", "penalty_alpha": 0.5, "penalty_form": "kl_literal"}
    r = _runner(demo, "blstm-fc", cfg, tmp_path, label="blstm-fc+kl+pen0.5")
    res = [r.run_cell(k) for k in r.cells([1], ["AR"], [0])]
    assert [x.status for x in res] == ["done"], [x.message for x in res]
    rec = find_records(tmp_path / "runs")[0][0]
    assert rec.key.submission == "blstm-fc+kl+pen0.5"
    assert rec.data["submission"]["plugin"] == "blstm-fc"
    assert rec.data["config"]["penalty_form"] == "kl_literal"
    # a record written before an option existed resumes when the option is at its default
    data = json.loads(rec.path.read_text())
    del data["config"]["cooc_norm"]
    rec.path.write_text(json.dumps(data))
    assert r.run_cell(r.cells([1], ["AR"], [0])[0]).status == "skipped"
    # the same name with another configuration is refused, not silently resumed
    other = _runner(demo, "blstm-fc", {**cfg, "penalty_alpha": 0.2}, tmp_path,
                    label="blstm-fc+kl+pen0.5")
    with pytest.raises(InputError, match="another configuration"):
        other.run_cell(other.cells([1], ["AR"], [0])[0])


@pytest.mark.parametrize("config", [
    {},
    {"separate": True, "max_raters": 2, "fusion": "loglinear"},
    {"fusion": "average", "members": "all"},
    {"fusion": "R"},
    {"pooling": "meanstd"},  # the heads take the wider statistics-pooled state
])
def test_rater_fusion_cells(demo, tmp_path, config):
    r = _runner(demo, "rater-fusion", {**FAST, **config}, tmp_path)
    res = [r.run_cell(k) for k in r.cells([1], ["AR"], [0])]
    assert [x.status for x in res] == ["done"], [x.message for x in res]
    rec = find_records(tmp_path / "runs")[0][0]
    scores = score_record(demo, rec, n_resamples=10)
    assert 0 <= scores.point["MR"]["uar"] <= 1


def test_rater_fusion_heads_and_masks(demo, tmp_path):
    """The joint model has one head per kept rater and trains each on that rater's answers."""
    r = _runner(demo, "rater-fusion", {**FAST, "min_ratings": 30, "max_raters": 5}, tmp_path)
    train, _ = r.data(1, "train", "AR")
    dev, _ = r.data(1, "dev", "AR")
    sub = plugins.resolve("rater-fusion")(**FAST, min_ratings=30, max_raters=5)
    sub.fit(train, dev, _spec(demo))
    # the 5 most prolific raters of the training clips, counted independently
    primary = train.ratings[train.ratings["question"] == "primary"]
    top = primary["rater_id"].value_counts()
    top = sorted(top.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
    assert sub.model.m == 5
    assert sub.coverage["train"]["kept_raters"] == 5
    rated = primary[primary["rater_id"].isin([t[0] for t in top])]["utterance_id"].nunique()
    assert sub.coverage["train"]["clips"] - sub.coverage["train"]["clips_without_kept_rater"] \
        == rated
    out = sub.model(*sub.collate(train.ids[:4]))
    assert out.shape == (4, 2 + 5, demo.spec.k)


def test_rater_models_refuse_counts_only_sources(demo, tmp_path):
    r = _runner(demo, "rater-fusion", FAST, tmp_path)
    ratings = demo.ratings.copy()
    ratings["rater_id"] = None
    ratings["source"] = "/corpora/CREMA-D/tabulatedVotes.csv"
    demo.ratings = ratings
    with pytest.raises(InputError, match="finishedResponses"):
        r.run_cell(r.cells([1], ["AR"], [0])[0])


@pytest.mark.parametrize("config", [
    {"kind": "MW"}, {"kind": "VW"}, {"kind": "VB"}, {"kind": "VW+B"}, {"kind": "SW"},
    {"kind": "MW", "consensus": "hard", "reduction": "mean"},
    {"kind": "MW", "consensus": "soft"},
])
def test_crowd_layer_cells(demo, tmp_path, config):
    r = _runner(demo, "crowd-layer", {**FAST, **config}, tmp_path)
    res = [r.run_cell(k) for k in r.cells([1], ["MR"], [0])]
    assert [x.status for x in res] == ["done"], [x.message for x in res]


def test_crowd_layer_prediction_is_the_base_softmax(demo, tmp_path):
    r = _runner(demo, "crowd-layer", FAST, tmp_path)
    train, _ = r.data(1, "train", "AR")
    dev, _ = r.data(1, "dev", "AR")
    sub = plugins.resolve("crowd-layer")(**FAST)
    sub.fit(train, dev, _spec(demo))
    with torch.no_grad():
        sub.model.crowd.weight.mul_(0).add_(7.0)  # the crowd layer must not matter at test time
    got = sub.predict_proba(dev)
    sub.model.eval()
    with torch.no_grad():
        want = torch.softmax(sub.model.base(*sub.collate(dev.ids)), -1).numpy()
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_ablation_plan_labels():
    vs = ablation.plan(losses=["ce", "kl"], alphas=[0.5], crowd_kinds=["MW", "SW"],
                       backbone={"max_epochs": 3}, penalty={"cooc_norm": "row"})
    assert [v.label for v in vs] == [
        "blstm-fc+ce", "blstm-fc+ce+pen0.5", "blstm-fc+kl", "blstm-fc+kl+pen0.5",
        "rater-fusion", "crowd-layer-MW", "crowd-layer-SW", "crowdh", "crowds"]
    pen = vs[1].config
    assert pen == {"max_epochs": 3, "loss": "ce", "penalty_alpha": 0.5, "cooc_norm": "row"}
    assert "cooc_norm" not in vs[0].config  # penalty options only where the penalty is on


def test_ablate_command_end_to_end(home, tmp_path):
    out = tmp_path / "abl"
    res = CliRunner().invoke(app, ["ablate", "--seeds", "0", "--losses", "ce", "--alphas", "0.2",
                                   "--folds", "1",
                                   "--epochs", "1", "--config", "hidden=16", "--out", str(out),
                                   "--resamples", "50", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    rep = json.loads((out / "ablation.json").read_text())
    labels = [v["label"] for v in rep["variants"]]
    assert labels == ["blstm-fc+ce", "blstm-fc+ce+pen0.2", "rater-fusion", "crowd-layer-MW",
                      "crowdh", "crowds"]
    pairs = {(p["a"], p["b"]) for p in rep["pairs"]}
    assert ("blstm-fc+ce+pen0.2", "blstm-fc+ce") in pairs
    assert ("rater-fusion", "crowdh") in pairs
    # with one fold the summary is that cell's own score, recomputed here from its record
    task = load_task("demo")
    for v in labels:
        rec = find_records(out / "runs" / "demo" / v)[0][0]
        cell = score_record(task, rec, n_resamples=10)
        got = {(s["metric"], s["test_rule"]): s["mean"] for s in rep["summaries"]
               if s["label"] == v}
        assert got[("uar", "MR")] == pytest.approx(cell.point["MR"]["uar"])
        primary = task.spec.primary_metric  # the losses are compared on it (auprc on demo)
        assert got[(primary, "AR")] == pytest.approx(cell.point["AR"][primary])
    assert (out / "ablation.svg").read_text().startswith("<?xml")
    assert "rater-fusion − model" in (out / "ablation.md").read_text()
    # a second call resumes: nothing is retrained
    res = CliRunner().invoke(app, ["ablate", "--seeds", "0", "--losses", "ce", "--alphas", "0.2",
                                   "--folds", "1",
                                   "--epochs", "1", "--config", "hidden=16", "--out", str(out),
                                   "--resamples", "50", "--device", "cpu"])
    assert res.exit_code == 0 and res.output.count("1 already done") == 6, res.output

