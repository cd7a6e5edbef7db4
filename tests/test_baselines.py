"""The SSL baselines and the feature cache on a tiny randomly initialised wav2vec 2.0."""

from pathlib import Path

import numpy as np
import pytest
from tiny_encoder import save_tiny_wav2vec2

from serbench import audio, plugins
from serbench.features import SSLHiddenStates
from serbench.records import find_records
from serbench.runner import Runner
from serbench.tasks import load_task


@pytest.fixture(scope="module")
def encoder(tmp_path_factory) -> Path:
    return save_tiny_wav2vec2(tmp_path_factory.mktemp("enc") / "tiny-w2v2")


@pytest.fixture
def demo(home):
    return load_task("demo")


def test_cached_states_equal_an_unpadded_forward(demo, encoder: Path, tmp_path: Path):
    import torch
    from transformers import AutoModel

    runner = Runner(demo, plugins.resolve("ssl-mlp"), {"model": str(encoder), "features": "frames"},
                    runs=tmp_path / "runs", device="cpu")
    runner.prepare_features()
    store = runner.store
    assert len(store) == 360
    model = AutoModel.from_pretrained(encoder).eval()
    # The longest and the shortest clip: both were batched with others of similar length.
    durations = demo.meta["duration"].astype(float)
    for utt in (durations.idxmax(), durations.idxmin()):
        wav = audio.load(demo.meta.loc[utt, "audio_path"])
        x = torch.from_numpy((wav - wav.mean()) / (wav.std() + 1e-7))[None]
        with torch.inference_mode():
            ref = torch.stack(model(x, output_hidden_states=True).hidden_states, 1)[0].numpy()
        got = store[utt].astype(np.float32)
        assert got.shape == ref.shape  # [layers + 1, frames, dim], padding cut off
        np.testing.assert_allclose(got, ref, atol=2e-2, rtol=2e-2)  # float16 storage
    mtime = (store.path / "features.arrow").stat().st_mtime_ns
    again = Runner(demo, plugins.resolve("ssl-mlp"), {"model": str(encoder), "features": "frames"},
                   runs=tmp_path / "runs", device="cpu")
    again.prepare_features()
    assert (again.store.path / "features.arrow").stat().st_mtime_ns == mtime  # reused


@pytest.mark.parametrize("pooling", ["mean", "unmasked_mean"])
def test_ssl_mlp_grid(demo, encoder: Path, tmp_path: Path, pooling):
    cls = plugins.resolve("ssl-mlp")
    runner = Runner(demo, cls, {"model": str(encoder), "hidden": 64, "max_epochs": 3,
                                "pooling": pooling}, runs=tmp_path / "runs", device="cpu")
    runner.prepare_features()
    results = [runner.run_cell(k) for k in runner.cells([1], None, [0])]
    assert [r.status for r in results] == ["done"] * 3, [r.message for r in results]
    records, _ = find_records(tmp_path / "runs")
    assert {r.data["config"]["pooling"] for r in records} == {pooling}
    sub = cls(model=str(encoder), hidden=16, max_epochs=1)
    train, _ = runner.data(1, "train", "AR")
    dev, _ = runner.data(1, "dev", "AR")
    from serbench.submission import FitSpec
    sub.fit(train, dev, FitSpec("demo", demo.spec.classes, 1, "AR", "distribution", 0, "cpu",
                                0.05))
    w = sub.layer_weights()
    assert w.shape == (3,) and w.sum() == pytest.approx(1.0)


def test_ssl_finetune_one_cell(demo, encoder: Path, tmp_path: Path):
    runner = Runner(demo, plugins.resolve("ssl-finetune"),
                    {"model": str(encoder), "keep_layers": 1, "hidden": 32, "max_epochs": 1},
                    runs=tmp_path / "runs", device="cpu")
    (key,) = runner.cells([2], ["MR"], [0])
    res = runner.run_cell(key)
    assert res.status == "done", res.message
    (record,), _ = find_records(tmp_path / "runs")
    assert record.data["config"]["keep_layers"] == 1 and record.data["n"]["test"] == 72


def test_feature_spec_keys_differ_by_encoder_and_layers():
    a = SSLHiddenStates(model="facebook/wav2vec2-base")
    assert a.key() != SSLHiddenStates(model="microsoft/wavlm-base").key()
    assert a.key() != SSLHiddenStates(model="facebook/wav2vec2-base", layers=(3, 6)).key()
    assert a.key() == SSLHiddenStates(model="facebook/wav2vec2-base").key()


def test_blstm_fc_on_egemaps_lld(demo, tmp_path: Path):
    pytest.importorskip("opensmile", reason="the egemaps extra is not installed "
                        "(.ci/run installs it)")
    runner = Runner(demo, plugins.resolve("blstm-fc"),
                    {"feature": "egemaps", "hidden": 8, "fc": 8, "max_epochs": 1},
                    runs=tmp_path / "runs", device="cpu")
    runner.prepare_features()
    utt = demo.counts.ids[0]
    frames = runner.store[utt]
    assert frames.shape[1] == 25 and frames.shape[0] > 50  # 25 LLDs every 10 ms
    (key,) = runner.cells([3], ["PR"], [0])
    assert runner.run_cell(key).status == "done"


def test_cache_is_shared_and_extended_not_recomputed(demo, tmp_path: Path):
    from serbench.features import LogMel, build_store

    meta = demo.meta
    ids = meta.index.to_numpy()
    paths = meta["audio_path"].to_numpy()
    durs = meta["duration"].astype(float).to_numpy()
    first = build_store(ids[:100], paths[:100], durs[:100], LogMel())
    assert len(first) == 100
    kept = first[ids[5]].copy()
    calls = []

    class Counting(LogMel):
        def extract(self, waves, device="cpu"):
            calls.append(len(waves))
            return super().extract(waves, device)

    spec = Counting()
    assert spec.key().startswith("counting-")
    build_store(ids[:100], paths[:100], durs[:100], spec)
    assert sum(calls) == 100
    calls.clear()
    bigger = build_store(ids[50:150], paths[50:150], durs[50:150], spec)  # another "task"
    assert sum(calls) == 50 and len(bigger) == 150  # only the 50 new clips were computed
    calls.clear()
    build_store(ids[:150], paths[:150], durs[:150], spec)
    assert sum(calls) == 0
    np.testing.assert_array_equal(bigger[ids[5]], kept)
