"""Training losses (docs/methods.md#e.1) on hand-computed cases."""

import math

import numpy as np
import pytest
import torch

from serbench.methods.losses import loss_fn, probabilities
from serbench.targets import class_balanced_weights

LOGITS = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


def _logsoftmax(z):
    z = np.asarray(z, dtype=float)
    return z - math.log(np.exp(z).sum())


def test_ce_and_kl():
    ce = loss_fn("ce", LOGITS, torch.tensor([0, 2]))
    expect = -(_logsoftmax([2, 0, 0])[0] + _logsoftmax([0, 1, 0])[2]) / 2
    assert float(ce) == pytest.approx(expect)
    t = torch.tensor([[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]])
    kl = loss_fn("kl", LOGITS, t)
    ls = [_logsoftmax([2, 0, 0]), _logsoftmax([0, 1, 0])]
    expect = (0.5 * (math.log(0.5) - ls[0][0]) + 0.5 * (math.log(0.5) - ls[0][1])
              + (0 - ls[1][2])) / 2
    assert float(kl) == pytest.approx(expect)


def test_bce_on_multi_hot():
    bits = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    sig = 1 / (1 + np.exp(-LOGITS.numpy()))
    expect = -np.mean(bits.numpy() * np.log(sig) + (1 - bits.numpy()) * np.log(1 - sig))
    assert float(loss_fn("bce", LOGITS, bits)) == pytest.approx(expect, rel=1e-6)
    p = probabilities("bce", LOGITS)
    assert torch.allclose(p.sum(-1), torch.ones(2))


def test_class_balanced_soft_ce_matches_the_released_formula():
    t = np.array([[0.9, 0.05, 0.05], [0.05, 0.05, 0.9]])
    w = class_balanced_weights(np.array([[0.9, 0.05, 0.05], [0.9, 0.05, 0.05],
                                         [0.05, 0.05, 0.9]]))
    loss = loss_fn("cb_soft_ce", LOGITS, torch.tensor(t, dtype=torch.float32),
                   torch.tensor(w, dtype=torch.float32))
    ls = [_logsoftmax([2, 0, 0]), _logsoftmax([0, 1, 0])]
    expect = np.mean([-(t[i] @ w) * (t[i] @ ls[i]) for i in range(2)])
    assert float(loss) == pytest.approx(expect, rel=1e-6)
    with pytest.raises(ValueError, match="unknown loss"):
        loss_fn("hinge", LOGITS, torch.tensor(t))
