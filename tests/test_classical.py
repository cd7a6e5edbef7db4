"""The classical reference baseline: soft targets, normalisation, selection, bad input.

Features here are a cheap stand-in spec (two numbers per clip) so that the tests
run in seconds; the openSMILE extraction itself is the library's.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from serbench.errors import InputError
from serbench.features import normalise as norm
from serbench.features.functionals import OpenSmileFunctionals, require_opensmile
from serbench.features.specs import FeatureSpec
from serbench.runner import Runner
from serbench.submission import Data, FitSpec
from serbench.tasks import load_task

from serbench.baselines.opensmile_svm import (  # isort: skip
    OpenSmileSvm, balanced_weights, clip_folds, repeat_soft)


# ----------------------------------------------------------------------------- pure functions


def test_soft_targets_repeat_each_clip_per_voted_class_with_its_share():
    x = np.array([[1.0], [2.0], [3.0]])
    t = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.0, 0.25, 0.75]])
    xr, y, w, rows = repeat_soft(x, t)
    assert xr[:, 0].tolist() == [1.0, 2.0, 2.0, 3.0, 3.0]
    assert y.tolist() == [0, 0, 1, 1, 2]
    assert w.tolist() == [1.0, 0.5, 0.5, 0.25, 0.75]
    assert rows.tolist() == [0, 1, 1, 2, 2]


def test_balanced_weights_give_every_class_equal_mass():
    y = np.array([0, 0, 1, 1, 2])
    w = np.array([1.0, 0.5, 0.5, 0.25, 0.75])
    # masses 1.5, 0.75, 0.75; total 3; 3 classes -> scale 3 / (3 m_k) = 1 / m_k
    got = balanced_weights(y, w, 4)  # class 3 absent: ignored
    np.testing.assert_allclose(got, [1 / 1.5, 0.5 / 1.5, 0.5 / 0.75, 0.25 / 0.75, 0.75 / 0.75])
    np.testing.assert_allclose(np.bincount(y, weights=got), [1.0, 1.0, 1.0])


def test_soft_target_repetition_is_the_expected_risk():
    """A weighted logistic fit on repeated rows equals the fit on the vote-share risk.

    Two clips with shares (0.75, 0.25) and (0.25, 0.75) are the same risk as four
    copies with hard labels in those proportions (3:1 and 1:3), by linearity.
    """
    from sklearn.linear_model import LogisticRegression

    x = np.array([[-1.0], [1.0]])
    t = np.array([[0.75, 0.25], [0.25, 0.75]])
    xr, y, w, _ = repeat_soft(x, t)
    soft = LogisticRegression(C=10.0).fit(xr, y, sample_weight=w)
    xh = np.array([[-1.0]] * 4 + [[1.0]] * 4)
    yh = np.array([0, 0, 0, 1, 1, 0, 1, 1])
    hard = LogisticRegression(C=10.0 / 4).fit(xh, yh)  # 4x the rows: C / 4 keeps the ratio
    np.testing.assert_allclose(soft.coef_, hard.coef_, rtol=1e-4)
    # the optimum reproduces the shares exactly when the penalty is negligible
    exact = LogisticRegression(C=1e8).fit(xr, y, sample_weight=w)
    np.testing.assert_allclose(exact.predict_proba(x), t, atol=1e-4)


def test_clip_folds_keep_the_copies_of_a_clip_together():
    rows = np.repeat(np.arange(20), 2)
    y = np.tile([0, 1], 20)
    folds = clip_folds(rows, y, seed=0)
    assert len(folds) == 5
    for train, test in folds:
        assert not set(rows[train]) & set(rows[test])
    assert sorted(np.concatenate([t for _, t in folds]).tolist()) == list(range(40))


def test_group_moments_use_each_groups_own_clips():
    feats = {"a": np.array([[1.0, 10.0]]), "b": np.array([[3.0, 30.0]]),
             "c": np.array([[5.0, 0.0]])}
    groups = pd.DataFrame({"speaker_id": ["s1", "s1", "s2"], "session": [None] * 3},
                          index=["a", "b", "c"])
    stats = norm.group_moments(feats, groups, "speaker_id", ["s1"])
    np.testing.assert_allclose(stats["s1"][0], [2.0, 20.0])
    np.testing.assert_allclose(stats["s1"][1], [1.0, 10.0])
    with pytest.raises(InputError, match="no session values"):
        norm.group_of(groups, ["a"], "session", task="task t")
    with pytest.raises(InputError, match="does not provide"):
        norm.group_of(groups.drop(columns="session"), ["a"], "session")


def test_missing_opensmile_is_one_message_with_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "opensmile", None)  # import now raises ImportError
    with pytest.raises(InputError) as err:
        require_opensmile()
    assert "pip install" in str(err.value)
    with pytest.raises(InputError, match="pip install"):
        OpenSmileFunctionals("egemaps").extract([np.zeros(16000, dtype=np.float32)])
    with pytest.raises(InputError, match="unknown openSMILE feature set"):
        OpenSmileFunctionals("gemaps-typo")


# ----------------------------------------------------------------------------- the submission


class _Store(dict):
    """An in-memory feature store: utterance id -> [1, D]."""


def _spec(k: int = 2) -> FitSpec:
    return FitSpec(task="t", classes=tuple("ab"[:k]), fold=1, train_rule="AR",
                   target_kind="distribution", seed=0, device="cpu", smoothing=0.05)


def _data(store: _Store, groups: pd.DataFrame, ids: list[str], targets: np.ndarray | None = None
          ) -> Data:
    t = np.zeros((0, 2)) if targets is None else targets
    return Data(ids=np.array(ids, dtype=object), audio_paths=np.array(ids, dtype=object),
                targets=t, labels=t.argmax(1) if len(t) else np.zeros(0, dtype=int),
                features=store, groups=groups)


@pytest.fixture
def toy():
    rng = np.random.default_rng(0)
    store, spk = _Store(), {}
    ids = [f"u{i}" for i in range(40)]
    y = np.array([i % 2 for i in range(40)])
    for i, u in enumerate(ids):
        store[u] = (rng.normal(size=(1, 3)) + 2.0 * y[i] + (i // 10) * 5.0).astype(np.float32)
        spk[u] = f"s{i // 10}"
    store["t1"], store["t2"] = np.ones((1, 3), np.float32), np.full((1, 3), 9.0, np.float32)
    spk["t1"] = spk["t2"] = "test"
    groups = pd.DataFrame({"speaker_id": pd.Series(spk), "session": pd.NA})
    return store, groups, ids, np.eye(2)[y]


def test_global_normalisation_uses_training_statistics_only(toy):
    store, groups, ids, t = toy
    sub = OpenSmileSvm(feature_set="egemaps", normalisation="global", classifier="svm_linear",
                       c_grid=[0.1, 1.0])
    sub.fit(_data(store, groups, ids[:30], t[:30]), _data(store, groups, ids[30:], t[30:]),
            _spec())
    train = np.concatenate([store[u] for u in ids[:30]]).astype(np.float64)
    np.testing.assert_allclose(sub.moments[0], train.mean(0))
    np.testing.assert_allclose(sub.moments[1], train.std(0))
    # a test clip's prediction does not depend on the other test clips
    p1 = sub.predict_proba(_data(store, groups, ["t1", "t2"]))
    store["t2"] = np.full((1, 3), -50.0, np.float32)
    p2 = sub.predict_proba(_data(store, groups, ["t1", "t2"]))
    np.testing.assert_allclose(p1[0], p2[0])
    assert sub.config()["transductive"] is False
    np.testing.assert_allclose(p1.sum(1), 1.0)


def test_group_normalisation_is_transductive_and_says_so(toy):
    store, groups, ids, t = toy
    sub = OpenSmileSvm(normalisation="group", classifier="svm_linear", c_grid=[1.0])
    sub.fit(_data(store, groups, ids[:30], t[:30]), _data(store, groups, ids[30:], t[30:]),
            _spec())
    assert sub.config()["transductive"] is True
    # group "test" = {t1, t2}: z-scores are +-1 whatever the raw values
    x = sub._inputs(_data(store, groups, ["t1", "t2"]), _spec())
    np.testing.assert_allclose(x, [[-1.0] * 3, [1.0] * 3], atol=1e-6)


def test_selection_uses_dev_only(toy):
    store, groups, ids, t = toy
    sub = OpenSmileSvm(normalisation="global", classifier="svm_rbf", c_grid=[0.1, 1.0, 10.0])
    sub.fit(_data(store, groups, ids[:30], t[:30]), _data(store, groups, ids[30:], t[30:]),
            _spec())
    assert [s["C"] for s in sub.selection] == [0.1, 1.0, 10.0]
    scores = [s["dev_uar"] for s in sub.selection]
    assert sub.chosen["C"] == sub.selection[int(np.argmax(scores))]["C"]


def test_bad_options_are_input_errors():
    with pytest.raises(InputError, match="unknown normalisation"):
        OpenSmileSvm(normalisation="speaker")
    with pytest.raises(InputError, match="unknown openSMILE feature set"):
        OpenSmileSvm(feature_set="is09")


# ----------------------------------------------------------------------------- harness


@dataclass(frozen=True)
class _Moments(FeatureSpec):
    """Mean and standard deviation of the waveform: [1, 2], instant to compute."""

    sample_rate: int = 16000

    def extract(self, waves: list[np.ndarray], device: str = "cpu") -> list[np.ndarray]:
        return [np.array([[w.mean(), w.std()]], dtype=np.float32) for w in waves]


class _CheapSvm(OpenSmileSvm):
    name = ""  # not a registered plugin

    def feature_spec(self) -> FeatureSpec:  # type: ignore[override]
        return _Moments()


def test_runner_cell_records_transductive_and_refuses_a_missing_group_column(home, tmp_path):
    demo = load_task("demo")
    runner = Runner(demo, _CheapSvm, {"normalisation": "group"}, runs=tmp_path / "runs",
                    device="cpu", label="cheap-svm")
    runner.prepare_features()
    key = runner.cells([1], ["AR"], [0])[0]
    assert runner.run_cell(key).status == "done"
    rec = json.loads((key.folder(tmp_path / "runs") / "record.json").read_text())
    assert rec["config"]["transductive"] is True
    assert rec["config"]["normalisation"] == "group"
    bad = Runner(demo, _CheapSvm, {"normalisation": "group", "group_column": "session"},
                 runs=tmp_path / "runs2", device="cpu", label="cheap-svm")
    bad.prepare_features()
    with pytest.raises(InputError, match="no session values"):
        bad.compute_cell(bad.cells([1], ["AR"], [0])[0])


def test_cli_bad_normalisation_exits_2_without_traceback(home, tmp_path: Path):
    exe = Path(sys.executable).with_name("serbench")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "serbench.cli"]
    res = subprocess.run([*cmd, "run", "--task", "demo", "--submission", "opensmile-svm",
                          "--config", "normalisation=\"speaker\"", "--runs", str(tmp_path / "r"),
                          "--no-leaderboard", "--device", "cpu"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2, res.stderr + res.stdout
    assert "unknown normalisation" in res.stderr + res.stdout
    assert "Traceback" not in res.stderr + res.stdout
