"""Crowd layers, their masked loss, late fusion and the per-rater answer matrix, by hand."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from serbench.errors import InputError
from serbench.methods import fusion
from serbench.methods.crowd import CrowdLayer, masked_crowd_loss
from serbench.methods.raters import rater_answers, require_rater_ids, select_raters

SIGMA = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])


def test_crowd_layers_start_as_identity_maps():
    for kind in ("MW", "VW", "VB", "VW+B", "SW"):
        out = CrowdLayer(3, 4, kind)(SIGMA)
        assert out.shape == (2, 4, 3)
        for r in range(4):
            torch.testing.assert_close(out[:, r], SIGMA)


def test_crowd_layer_maps_by_hand():
    mw = CrowdLayer(3, 2, "MW")
    with torch.no_grad():
        mw.weight[1] = torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 2.0]])
    # annotator 1 swaps classes 0 and 1 and doubles class 2: sigma @ W
    torch.testing.assert_close(mw(SIGMA)[:, 1], torch.tensor([[0.2, 0.7, 0.2], [0.3, 0.1, 1.2]]))
    vwb = CrowdLayer(3, 2, "VW+B")
    with torch.no_grad():
        vwb.weight[0] = torch.tensor([2.0, 1.0, 0.0])
        vwb.bias[0] = torch.tensor([0.0, 0.5, 0.0])
    torch.testing.assert_close(vwb(SIGMA)[:, 0], torch.tensor([[1.4, 0.7, 0.0], [0.2, 0.8, 0.0]]))
    sw = CrowdLayer(3, 2, "SW")
    with torch.no_grad():
        sw.weight[1] = 3.0
    torch.testing.assert_close(sw(SIGMA)[:, 1], 3 * SIGMA)


def test_masked_crowd_loss_by_hand():
    logits = torch.tensor([[[0.0, 0.0], [5.0, 1.0]], [[math.log(3), 0.0], [0.0, 0.0]]])
    answers = torch.tensor([[0, -1], [1, 1]])
    # observed: (0,0): -log 1/2; (1,0): -log 1/4 (softmax of [log 3, 0]); (1,1): -log 1/2
    want = (math.log(2) + math.log(4) + math.log(2)) / 2
    assert masked_crowd_loss(logits, answers).item() == pytest.approx(want)


def test_masked_crowd_loss_gradient_ignores_missing_answers():
    logits = torch.randn(2, 2, 3, dtype=torch.float64, requires_grad=True)
    answers = torch.tensor([[2, -1], [-1, -1]])
    masked_crowd_loss(logits, answers).backward()
    assert torch.count_nonzero(logits.grad[0, 1]) == 0 and torch.count_nonzero(logits.grad[1]) == 0
    assert torch.autograd.gradcheck(lambda z: masked_crowd_loss(z, answers), (logits.detach()
                                                                               .requires_grad_(),))


def test_average_and_loglinear_fusion_by_hand():
    p1, p2 = np.array([[0.8, 0.2]]), np.array([[0.4, 0.6]])
    np.testing.assert_allclose(fusion.average([p1, p2]), [[0.6, 0.4]])
    np.testing.assert_allclose(fusion.average([p1, p2], [2, 1]), [[2 / 3, 1 / 3]])
    np.testing.assert_allclose(fusion.loglinear([p1, p2]), [[0.32 / 0.44, 0.12 / 0.44]])
    np.testing.assert_allclose(fusion.loglinear([p1, p2], [2, 1]),
                               [[0.256 / 0.28, 0.024 / 0.28]])
    with pytest.raises(ValueError, match="weights"):
        fusion.average([p1, p2], [1, -1])


def test_learned_fusion_picks_the_informative_member_and_falls_back_without_a_class():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    good = np.full((300, 3), 0.1)
    good[np.arange(300), y] = 0.8  # always right
    noise = rng.dirichlet(np.ones(3), 300)  # uninformative
    fuser = fusion.LearnedFusion().fit([noise, good], y)
    assert not fuser.fallback
    assert (fuser.predict_proba([noise, good]).argmax(1) == y).mean() == 1.0
    fuser = fusion.LearnedFusion().fit([noise, good], np.where(y == 2, 0, y))  # class 2 unseen
    assert fuser.fallback
    np.testing.assert_allclose(fuser.predict_proba([noise, good]), fusion.loglinear([noise, good]))


def _ratings(rows, source="votes.csv"):
    df = pd.DataFrame(rows, columns=["utterance_id", "rater_id", "mapped_class", "question"])
    df["label"] = df["mapped_class"]
    df["source"] = source
    return df


RATINGS = _ratings([
    ("u1", "r1", "a", "primary"), ("u1", "r2", "b", "primary"), ("u1", "r3", "other", "primary"),
    ("u2", "r1", "b", "primary"), ("u2", "r2", "b", "primary"),
    ("u3", "r1", "a", "primary"), ("u3", "r3", "a", "primary"),
    ("u3", "r2", "a", "secondary"),
])


def test_rater_selection_and_answer_matrix():
    raters, n = select_raters(RATINGS, ["a", "b"], min_ratings=2)
    # r1 has 3 in-set answers, r2 has 2; r3 has 1 in-set answer (its "other" does not count)
    assert raters == ("r1", "r2") and n.tolist() == [3, 2]
    assert select_raters(RATINGS, ["a", "b"], min_ratings=1, max_raters=2)[0] == ("r1", "r2")
    got = rater_answers(["u1", "u2", "u3", "u4"], RATINGS, ["a", "b"], ("r1", "r2", "r3"))
    np.testing.assert_array_equal(got.answers, [[0, 1, -1], [1, 1, -1], [0, -1, 0],
                                                [-1, -1, -1]])
    cov = got.coverage()
    assert cov["clips_without_kept_rater"] == 1 and cov["mean_kept_raters_per_clip"] == 1.5


def test_counts_only_sources_are_refused_with_the_file_that_has_rater_ids():
    counts = _ratings([("u1", None, "a", "primary"), ("u1", None, "b", "primary")],
                      source="/data/CREMA-D/tabulatedVotes.csv")
    with pytest.raises(InputError, match=r"finishedResponses\.csv") as exc:
        require_rater_ids(counts)
    assert "tabulatedVotes.csv" in str(exc.value)
    require_rater_ids(RATINGS)  # has rater ids: accepted
