"""The paper's remaining variants and the honest penalty, on hand-computed cases.

Class-balanced BCE with the penalty (IS-2023 "L_P + CBL"), BCE on the smoothed
target, dev temperature scaling, frequency-corrected co-occurrence (lift, PMI) and
the warning for a co-occurrence matrix without pairs of different classes.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from serbench.errors import SerbenchWarning
from serbench.methods import temperature
from serbench.methods.cooccurrence import lift, npmi, off_diagonal_mass, penalty_matrix
from serbench.methods.losses import loss_fn, probabilities
from serbench.methods.penalty import (
    EmptyCooccurrence,
    PenaltyConfig,
    penalized_loss,
    training_penalty,
)
from serbench.methods.training import targets_for
from serbench.runner import Runner, recorded_warnings
from serbench.submission import Data, FitSpec, Submission
from serbench.tasks import load_task

LOGITS = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]], dtype=torch.float64)


def _sig(z):
    return 1.0 / (1.0 + np.exp(-np.asarray(z, dtype=float)))


def _bce(z, t):
    s = _sig(z)
    return -(t * np.log(s) + (1 - t) * np.log(1 - s))


# ----------------------------------------------------------------------------- losses


def test_class_balanced_bce_weights_each_emotion():
    bits = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    w = np.array([0.5, 1.0, 1.5])
    expect = np.mean(_bce(LOGITS.numpy(), bits) * w)  # mean over the 6 (clip, emotion) terms
    got = loss_fn("cb_bce", LOGITS, torch.tensor(bits), torch.tensor(w))
    assert float(got) == pytest.approx(expect, rel=1e-9)
    # without weights it is plain BCE
    assert float(loss_fn("cb_bce", LOGITS, torch.tensor(bits))) == pytest.approx(
        float(loss_fn("bce", LOGITS, torch.tensor(bits))), rel=1e-12)


def test_bce_on_the_smoothed_target():
    t = np.array([[0.9, 0.05, 0.05], [0.05, 0.9, 0.05]])
    expect = np.mean(_bce(LOGITS.numpy(), t))
    assert float(loss_fn("bce_smooth", LOGITS, torch.tensor(t))) == pytest.approx(expect, rel=1e-9)
    p = probabilities("bce_smooth", LOGITS)
    s = _sig(LOGITS.numpy())
    np.testing.assert_allclose(p.numpy(), s / s.sum(1, keepdims=True))


def test_penalty_with_class_balanced_bce_is_lp_plus_cbl():
    """(1 - a) CBL + a * L_P / K, with sigmoid outputs in L_P."""
    bits = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
    w = np.array([2.0, 0.5, 0.5])
    p = np.array([[0.0, 1.0, 0.5], [1.0, 0.0, 0.25], [0.5, 0.25, 0.0]])
    s = _sig(LOGITS.numpy())
    # clip 1: t P = row a = [0, 1, .5] -> 1 * s12 + .5 * s13; clip 2: rows b + c = [1.5, .25, .25]
    lp = ((1.0 * s[0, 1] + 0.5 * s[0, 2]) + (1.5 * s[1, 0] + 0.25 * s[1, 1] + 0.25 * s[1, 2])) / 2
    cbl = np.mean(_bce(LOGITS.numpy(), bits) * w)
    expect = 0.8 * cbl + 0.2 * lp / 3
    got = penalized_loss("cb_bce", LOGITS, torch.tensor(bits), torch.tensor(p),
                         PenaltyConfig(alpha=0.2), torch.tensor(w))
    assert float(got) == pytest.approx(expect, rel=1e-9)


def test_each_loss_trains_on_its_own_target():
    t = np.array([[0.6, 0.4, 0.0], [0.0, 0.0, 1.0]])
    data = Data(ids=np.array(["a", "b"]), audio_paths=np.array(["", ""]), targets=t,
                labels=np.array([0, 2]))
    spec = FitSpec(task="t", classes=("x", "y", "z"), fold=1, train_rule="AR",
                   target_kind="distribution", seed=0, device="cpu", smoothing=0.1)
    rng = np.random.default_rng(0)
    np.testing.assert_array_equal(targets_for("cb_bce", data, spec, rng), [[1, 1, 0], [0, 0, 1]])
    # smoothing 0.1 over K = 3: (1 - 0.1) v + 0.05 (1 - v)
    np.testing.assert_allclose(targets_for("bce_smooth", data, spec, rng),
                               [[0.56, 0.39, 0.05], [0.05, 0.05, 0.9]], rtol=1e-6)


# ----------------------------------------------------------------------------- temperature


def test_per_emotion_temperatures_by_hand():
    # emotion 0: every logit 2, 7 of 10 positive -> s(2 / T) = 0.7 -> T = 2 / logit(0.7)
    # emotion 1: every logit -1, 2 of 10 positive -> s(-1 / T) = 0.2 -> T = 1 / logit(0.8)
    z = np.column_stack([np.full(10, 2.0), np.full(10, -1.0), np.zeros(10)])
    t = np.column_stack([np.r_[np.ones(7), np.zeros(3)], np.r_[np.ones(2), np.zeros(8)],
                         np.ones(10)])
    temps = temperature.fit_temperatures(z, t, "per_emotion")
    assert temps[0] == pytest.approx(2 / math.log(0.7 / 0.3), rel=1e-4)
    assert temps[1] == pytest.approx(1 / math.log(0.8 / 0.2), rel=1e-4)
    assert temps[2] == 1.0  # a zero logit carries no scale to fit


def test_single_temperature_by_hand():
    # two classes, logits (2, 0): softmax_0 = s(2 / T); targets (0.7, 0.3) -> T = 2 / logit(0.7)
    z = np.tile([2.0, 0.0], (5, 1))
    t = np.tile([0.7, 0.3], (5, 1))
    (temp,) = temperature.fit_temperatures(z, t, "single")
    assert temp == pytest.approx(2 / math.log(0.7 / 0.3), rel=1e-4)
    np.testing.assert_allclose(temperature.scale(z, np.array([temp])), z / temp)
    with pytest.raises(ValueError, match="temperature kind"):
        temperature.fit_temperatures(z, t, "vector")  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- co-occurrence

C = np.array([[5, 3, 0], [3, 4, 1], [0, 1, 2]])  # T = 19, marginals m = (8, 8, 3)


def test_lift_and_pmi_penalties_by_hand():
    np.testing.assert_allclose(lift(C)[0, 1], 3 * 19 / (8 * 8))
    np.testing.assert_allclose(lift(C)[1, 2], 1 * 19 / (8 * 3))
    # lift: a-b 57/64 is the largest; b-c (19/24) / (57/64) = 8/9 -> P = 1/9; a-c never -> 1
    np.testing.assert_allclose(penalty_matrix(C, "lift"),
                               [[0, 0, 1], [0, 0, 1 / 9], [1, 1 / 9, 0]], atol=1e-12)
    n01 = math.log((3 / 19) / ((8 / 19) * (8 / 19))) / -math.log(3 / 19)
    n12 = math.log((1 / 19) / ((8 / 19) * (3 / 19))) / -math.log(1 / 19)
    assert npmi(C)[0, 1] == pytest.approx(n01)
    assert npmi(C)[0, 2] == -1.0
    np.testing.assert_allclose(penalty_matrix(C, "pmi"),
                               [[0, (1 - n01) / 2, 1], [(1 - n01) / 2, 0, (1 - n12) / 2],
                                [1, (1 - n12) / 2, 0]], atol=1e-12)
    assert PenaltyConfig(norm="pmi").norm == "pmi"
    with pytest.raises(ValueError, match="norm must be one of"):
        PenaltyConfig(norm="ppmi")


def _single_votes() -> pd.DataFrame:
    rows = [("u1", "a"), ("u2", "b"), ("u3", "b"), ("u4", "c")]
    return pd.DataFrame({"utterance_id": [u for u, _ in rows], "rater_id": None,
                         "question": "primary", "mapped_class": [c for _, c in rows],
                         "source": "votes.csv"})


def test_empty_cooccurrence_warns_and_gives_a_uniform_penalty():
    assert off_diagonal_mass(np.diag([3, 2, 1])) == 0.0
    assert off_diagonal_mass(C) == 8.0
    with pytest.warns(EmptyCooccurrence, match="no pair of different classes"):
        p = training_penalty(_single_votes(), ["a", "b", "c"], PenaltyConfig())
    np.testing.assert_array_equal(p, 1 - np.eye(3))  # the "penalty" is uniform
    with warnings.catch_warnings():
        warnings.simplefilter("error", EmptyCooccurrence)  # a matrix with pairs: no warning
        training_penalty(pd.concat([_single_votes(),
                                    _single_votes().assign(mapped_class="a", rater_id="r9")]),
                         ["a", "b", "c"], PenaltyConfig())


def test_recorded_warnings_collects_serbench_warnings_once():
    with pytest.warns(EmptyCooccurrence), recorded_warnings() as notes:
        training_penalty(_single_votes(), ["a", "b", "c"], PenaltyConfig())
        training_penalty(_single_votes(), ["a", "b", "c"], PenaltyConfig())
    assert len(notes) == 1 and "no pair of different classes" in notes[0]


class _OneVote(Submission):
    """Builds the penalty from one vote per training clip (a counts-only source), as the
    penalty losses do, and predicts the prior."""

    name = ""

    def fit(self, train: Data, dev: Data, spec: FitSpec) -> None:
        votes = train.split_ratings.drop_duplicates("utterance_id")
        training_penalty(votes, spec.classes, PenaltyConfig())
        self.p = train.targets.mean(axis=0)

    def predict_proba(self, batch: Data) -> np.ndarray:
        return np.tile(self.p / self.p.sum(), (len(batch), 1))


def test_the_run_record_says_the_penalty_had_no_pairs(home, tmp_path: Path):
    demo = load_task("demo")
    runner = Runner(demo, _OneVote, runs=tmp_path / "runs", device="cpu", label="one-vote")
    key = runner.cells([1], ["AR"], [0])[0]
    with pytest.warns(SerbenchWarning, match="no pair of different classes"):  # from commit
        assert runner.run_cell(key).status == "done"
    rec = json.loads((key.folder(tmp_path / "runs") / "record.json").read_text())
    assert len(rec["warnings"]) == 1 and "no pair of different classes" in rec["warnings"][0]


def test_ablation_report_prints_recorded_warnings():
    from serbench.recipes.ablation import Report, markdown

    rep = Report("emodb", "abc", "MR", [1], [0], [], [], [], {},
                 warnings={"blstm-fc+kl+pen0.2": ["the training co-occurrence matrix has no pair"]})
    text = markdown(rep)
    assert "**Warning** (blstm-fc+kl+pen0.2): the training co-occurrence matrix has no pair" in text


def test_blstm_per_emotion_temperature_needs_a_sigmoid_loss():
    from serbench.baselines.blstm_fc import BlstmFc

    with pytest.raises(ValueError, match="sigmoid"):
        BlstmFc(loss="cb_soft_ce", temperature="per_emotion")
    assert BlstmFc(loss="cb_bce", temperature="per_emotion").config()["temperature"] == \
        "per_emotion"
    assert BlstmFc(normalisation="group").config()["transductive"] is True
