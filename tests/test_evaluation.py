"""The local evaluate module loads offline and gives serbench's numbers."""

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score

from serbench import evaluation
from serbench import metrics as M


def test_local_evaluate_module(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    module = evaluation.load()
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(4), size=40)
    labels = rng.integers(0, 4, size=40)
    onehot = np.eye(4)[labels]
    res = module.compute(predictions=probs.tolist(), references=onehot.tolist())
    assert res["uar"] == pytest.approx(balanced_accuracy_score(labels, probs.argmax(1)))
    dist = rng.dirichlet(np.ones(4), size=40)
    res = module.compute(predictions=probs.tolist(), references=dist.tolist())
    assert "uar" not in res
    assert res["kl"] == pytest.approx(M.compute(["kl"], dist, probs)["kl"])
