"""The feature cache on tiny random encoders: pooled specs, content fingerprints, up-front checks.

Reference values come from plain ``transformers`` forwards and numpy means,
never from the cache itself.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from tiny_encoder import save_tiny_wav2vec2

from serbench import audio
from serbench.errors import InputError
from serbench.features import SSLHiddenStates, SSLPooled, build_store
from serbench.features.cache import fingerprint, store_dir
from serbench.tasks import load_task


@pytest.fixture(scope="module")
def encoder(tmp_path_factory) -> Path:
    return save_tiny_wav2vec2(tmp_path_factory.mktemp("enc") / "tiny-w2v2")


@pytest.fixture
def clips(home):
    meta = load_task("demo").meta.iloc[:24]
    return (meta.index.to_numpy(), meta["audio_path"].to_numpy(),
            meta["duration"].astype(float).to_numpy())


def _alone(encoder: Path, wav: np.ndarray) -> np.ndarray:
    """[L, T, D] float32 states of one clip, unpadded, straight from transformers."""
    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(encoder).eval()
    x = torch.from_numpy((wav - wav.mean()) / (wav.std() + 1e-7))[None]
    with torch.inference_mode():
        return torch.stack(model(x, output_hidden_states=True).hidden_states, 1)[0].numpy()


def test_pooled_equals_the_mean_of_the_cached_frames(clips, encoder: Path):
    ids, paths, durs = clips
    frames = build_store(ids, paths, durs, SSLHiddenStates(model=str(encoder)))
    pooled = build_store(ids, paths, durs, SSLPooled(model=str(encoder), stats=("mean", "std")))
    assert frames.path != pooled.path
    for u in ids:
        h = frames[u].astype(np.float32)  # [L, T, D]
        p = pooled[u].astype(np.float32)  # [2, L, D]
        assert p.shape == (2, h.shape[0], h.shape[2]) and pooled[u].dtype == np.float16
        assert pooled.length(u) == frames.length(u) == h.shape[1]
        np.testing.assert_allclose(p[0], h.mean(axis=1), atol=2e-3, rtol=2e-3)
        np.testing.assert_allclose(p[1], h.std(axis=1), atol=5e-3, rtol=5e-3)


def test_padding_never_leaks_into_a_pooled_value(clips, encoder: Path):
    ids, paths, durs = clips
    short, long = int(np.argmin(durs)), int(np.argmax(durs))
    assert durs[long] > 1.5 * durs[short]  # the short clip is padded by a third or more
    spec = SSLPooled(model=str(encoder), stats=("mean", "std"), batch_seconds=1e6)
    together = build_store(ids[[short, long]], paths[[short, long]], durs[[short, long]], spec)
    ref = _alone(encoder, audio.load(paths[short]))  # the clip on its own: no padding at all
    got = together[ids[short]].astype(np.float32)
    np.testing.assert_allclose(got[0], ref.mean(axis=1), atol=2e-3, rtol=2e-3)
    np.testing.assert_allclose(got[1], ref.std(axis=1), atol=5e-3, rtol=5e-3)


def test_a_replaced_wav_gets_new_features_and_is_named(clips, encoder: Path, tmp_path: Path):
    ids, paths, durs = clips
    folder = tmp_path / "corpus"
    folder.mkdir()
    local = []
    for p in paths[:6]:
        dest = folder / Path(p).name
        dest.write_bytes(Path(p).read_bytes())
        local.append(str(dest))
    local_paths = np.array(local, dtype=object)
    spec = SSLPooled(model=str(encoder))
    first = build_store(ids[:6], local_paths, durs[:6], spec)
    old = first[ids[2]].copy()
    rng = np.random.default_rng(0)
    sf.write(local[2], (0.1 * rng.standard_normal(16000)).astype(np.float32), 16000)
    assert fingerprint(local[2]) != first.fingerprints[ids[2]]
    said: list[str] = []
    second = build_store(ids[:6], local_paths, durs[:6], spec, log=said.append)
    assert second.recomputed == [ids[2]]
    assert len(said) == 1 and ids[2] in said[0] and "recomputed" in said[0]
    new = second[ids[2]].astype(np.float32)
    ref = _alone(encoder, audio.load(local[2])).mean(axis=1)
    np.testing.assert_allclose(new[0], ref, atol=2e-3, rtol=2e-3)
    assert not np.allclose(new, old.astype(np.float32), atol=1e-2)
    np.testing.assert_array_equal(second[ids[3]], first[ids[3]])  # untouched clips: kept
    third = build_store(ids[:6], local_paths, durs[:6], spec, log=said.append)
    assert third.recomputed == [] and len(said) == 1  # now served from the cache


def test_the_forward_precision_is_part_of_the_key(encoder: Path):
    a = SSLHiddenStates(model=str(encoder))
    assert a.key() != SSLHiddenStates(model=str(encoder), precision="bfloat16").key()
    assert a.key() != SSLPooled(model=str(encoder)).key()
    assert SSLPooled(model=str(encoder)).key() != SSLPooled(model=str(encoder),
                                                           stats=("mean", "std")).key()


def test_bfloat16_forward_is_close_to_float32(clips, encoder: Path):
    ids, paths, durs = clips
    f32 = build_store(ids[:4], paths[:4], durs[:4], SSLPooled(model=str(encoder)))
    b16 = build_store(ids[:4], paths[:4], durs[:4],
                      SSLPooled(model=str(encoder), precision="bfloat16"))
    for u in ids[:4]:
        np.testing.assert_allclose(b16[u].astype(np.float32), f32[u].astype(np.float32),
                                   atol=0.1, rtol=0.1)


@pytest.mark.parametrize("layers", [(0, 3), (-4,)])
def test_an_out_of_range_layer_is_refused_before_extraction(clips, encoder: Path, layers):
    ids, paths, durs = clips
    spec = SSLPooled(model=str(encoder), layers=layers)  # the tiny encoder has 3 hidden states
    with pytest.raises(InputError, match=r"layer index -?\d+ is out of range.*3 hidden states"):
        build_store(ids, paths, durs, spec)
    assert not (store_dir(paths, spec) / "features.arrow").exists()


def test_an_encoder_without_frame_lengths_is_refused(clips, tmp_path: Path):
    from transformers import BertConfig, BertModel

    folder = tmp_path / "tiny-bert"
    BertModel(BertConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=32, vocab_size=50)).save_pretrained(folder)
    ids, paths, durs = clips
    with pytest.raises(InputError, match="does not say how many frames"):
        build_store(ids, paths, durs, SSLHiddenStates(model=str(folder)))


def test_a_failed_build_leaves_no_cache(clips, encoder: Path, tmp_path: Path):
    ids, paths, durs = clips
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF not really a wav")
    bad_paths = paths.copy()
    bad_paths[5] = str(broken)
    spec = SSLPooled(model=str(encoder))
    with pytest.raises(InputError, match="unreadable audio"):
        build_store(ids, bad_paths, durs, spec)
    folder = store_dir(bad_paths, spec)
    assert not (folder / "features.arrow").exists() and not (folder / "meta.json").exists()
