"""The co-occurrence penalty loss against hand-computed values and numerical gradients."""

import math

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from serbench.errors import InputError
from serbench.methods.penalty import (
    CooccurrencePenaltyLoss,
    PenaltyConfig,
    penalized_loss,
    penalty_term,
    training_penalty,
)

# C = [[5,3,0],[3,4,1],[0,1,2]]: the largest off-diagonal count is 3, so under
# global_max P = 1 - C/3 off the diagonal: P01 = 0, P02 = 1, P12 = 2/3.
P = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 2 / 3], [1.0, 2 / 3, 0.0]], dtype=torch.float64)
LOGITS = torch.zeros(2, 3, dtype=torch.float64)  # softmax 1/3 each, sigmoid 1/2 each
T = torch.tensor([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0]], dtype=torch.float64)


def test_pairwise_form_by_hand():
    # clip 1: t P = [0, 0, 1] -> 1 * 1/3; clip 2: t P = [0, 0, 5/6] -> 5/6 * 1/3
    assert penalty_term(LOGITS, T, P).item() == pytest.approx((1 / 3 + 5 / 18) / 2)
    # sigmoid outputs are 1/2: clip 1 -> 1/2, clip 2 -> 5/12
    assert penalty_term(LOGITS, T, P, activation="sigmoid").item() == pytest.approx(
        (1 / 2 + 5 / 12) / 2)


def test_literal_kl_form_by_hand():
    # row sums of P: [1, 2/3, 5/3]; clip 1: 1 * log(1 / (1/3)); clip 2: 0.5 log 1.5 (1 + 2/3)
    want = (math.log(3) + 0.5 * math.log(1.5) * (1 + 2 / 3)) / 2
    assert penalty_term(LOGITS, T, P, form="kl_literal").item() == pytest.approx(want)


def test_penalty_is_zero_when_all_mass_sits_on_target_or_allowed_classes():
    logits = torch.tensor([[20.0, 20.0, -20.0]], dtype=torch.float64)  # mass on classes 0, 1
    t = torch.tensor([[1.0, 0.0, 0.0]], dtype=torch.float64)  # P01 = 0: co-occurring pair
    assert penalty_term(logits, t, P).item() == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("loss", ["ce", "bce", "kl", "cb_soft_ce"])
def test_alpha_zero_is_the_base_loss(loss):
    torch.manual_seed(0)
    z = torch.randn(5, 3)
    t = torch.tensor([0, 1, 2, 0, 1]) if loss == "ce" else torch.softmax(torch.randn(5, 3), -1)
    w = torch.tensor([1.0, 2.0, 0.5]) if loss == "cb_soft_ce" else None
    base = penalized_loss(loss, z, t, None, None, w)
    off = penalized_loss(loss, z, t, P.float(), PenaltyConfig(alpha=0.0), w)
    assert off.item() == base.item()


def test_convex_and_additive_combinations():
    z = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]], dtype=torch.float64)
    y = torch.tensor([0, 1])
    onehot = F.one_hot(y, 3).double()
    ce = -(torch.log_softmax(z, -1) * onehot).sum(-1).mean()
    term = ((onehot @ P) * torch.softmax(z, -1)).sum(-1).mean()
    got = penalized_loss("ce", z, y, P, PenaltyConfig(alpha=0.2))
    assert got.item() == pytest.approx((0.8 * ce + 0.2 * term).item())
    got = penalized_loss("ce", z, y, P, PenaltyConfig(alpha=0.5, combine="additive"))
    assert got.item() == pytest.approx((ce + 0.5 * term).item())


def test_bce_penalty_uses_sigmoid_outputs_on_the_per_output_scale():
    z = torch.tensor([[1.0, -1.0, 0.5]], dtype=torch.float64)
    t = torch.tensor([[1.0, 1.0, 0.0]], dtype=torch.float64)
    bce = F.binary_cross_entropy_with_logits(z, t)  # a mean over the 3 outputs
    term = ((t @ P) * torch.sigmoid(z)).sum()  # [0, 0, 5/3] . sigmoid(z)
    assert term.item() == pytest.approx(5 / 3 / (1 + math.exp(-0.5)))
    got = penalized_loss("bce", z, t, P, PenaltyConfig(alpha=0.8))
    assert got.item() == pytest.approx((0.2 * bce + 0.8 * term / 3).item())


@pytest.mark.parametrize("form", ["pairwise", "kl_literal"])
@pytest.mark.parametrize("activation", ["softmax", "sigmoid"])
def test_gradients_match_finite_differences(form, activation):
    torch.manual_seed(1)
    z = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    t = torch.softmax(torch.randn(4, 3, dtype=torch.float64), -1)
    assert torch.autograd.gradcheck(
        lambda x: penalty_term(x, t, P, activation=activation, form=form), (z,))


@pytest.mark.parametrize("loss", ["ce", "bce", "kl", "cb_soft_ce"])
def test_combined_loss_gradients(loss):
    torch.manual_seed(2)
    z = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    if loss == "ce":
        t = torch.tensor([0, 2, 1, 0])
    elif loss == "bce":
        t = torch.tensor([[1.0, 0, 0], [1, 1, 0], [0, 0, 1], [0, 1, 0]], dtype=torch.float64)
    else:
        t = torch.softmax(torch.randn(4, 3, dtype=torch.float64), -1)
    w = torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64) if loss == "cb_soft_ce" else None
    module = CooccurrencePenaltyLoss(loss, P.numpy(), PenaltyConfig(alpha=0.5), w)
    assert torch.autograd.gradcheck(lambda x: module(x, t), (z,))


def test_config_validation():
    with pytest.raises(ValueError, match="form"):
        PenaltyConfig(form="quadratic")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="convex"):
        PenaltyConfig(alpha=1.5)
    PenaltyConfig(alpha=1.5, combine="additive")
    with pytest.raises(ValueError, match="alpha"):
        PenaltyConfig(alpha=float("nan"))
    with pytest.raises(ValueError, match="mode"):
        PenaltyConfig(mode="pairs")


def _ratings(rows):
    df = pd.DataFrame(rows, columns=["utterance_id", "rater_id", "mapped_class", "question"])
    df["label"] = df["mapped_class"]
    df["source"] = "votes.csv"
    return df


def test_training_penalty_counts_by_hand():
    classes = ["a", "b", "c"]
    ratings = _ratings([
        ("u1", "r1", "a", "primary"), ("u1", "r2", "b", "primary"),
        ("u2", "r1", "a", "primary"), ("u2", "r2", "b", "primary"), ("u2", "r3", "b", "primary"),
        ("u3", "r1", "c", "primary"), ("u3", "r2", "c", "primary"),
        ("u1", "r1", "a", "secondary"), ("u1", "r1", "c", "secondary"),
    ])
    # across raters (ordered pairs): u1 a-b once each way; u2 a-b 2x each way, b-b 2;
    # u3 c-c 2.  Off-diagonal max is a-b = 3: P_ab = 0, P_ac = P_bc = 1.
    p = training_penalty(ratings, classes, PenaltyConfig())
    np.testing.assert_allclose(p, [[0, 0, 1], [0, 0, 1], [1, 1, 0]])
    # within one rater's multi-choice answer: only a-c (u1, r1) -> P_ac = 0
    p = training_penalty(ratings, classes, PenaltyConfig(mode="within_rater"))
    np.testing.assert_allclose(p, [[0, 1, 0], [1, 0, 1], [0, 1, 0]])
    # both: a-b 3, a-c 1 -> P_ab = 0, P_ac = 2/3, P_bc = 1
    p = training_penalty(ratings, classes, PenaltyConfig(mode="both"))
    np.testing.assert_allclose(p, [[0, 0, 2 / 3], [0, 0, 1], [2 / 3, 1, 0]])


def test_within_rater_needs_multi_choice_answers():
    ratings = _ratings([("u1", "r1", "a", "primary"), ("u1", "r2", "b", "primary")])
    with pytest.raises(InputError, match="multi-choice"):
        training_penalty(ratings, ["a", "b"], PenaltyConfig(mode="within_rater"))
