"""Shared helpers of the GPU benchmarks: random-weight encoder shapes and an IEMOCAP-like corpus.

Durations: a log-normal with median 3.75 s and sigma 0.6, clipped to
[0.6, 30] s, which gives a mean near 4.5 s like IEMOCAP's segments (Busso et
al., 2008, "IEMOCAP: interactive emotional dyadic motion capture database").
The audio is noise: the benchmarks time the harness, not the model.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

SHAPES = ("tiny", "small", "base", "large", "large12")


def encoder_dir(shape: str) -> Path:
    """A random-weight wav2vec 2.0 of a real shape, saved to a temporary folder.

    ``base``: wav2vec2-base (12 x 768); ``large``: wav2vec2-large-robust
    (24 x 1024, layer-norm CNN, stable layer norm); ``large12``: the same
    trimmed to 12 layers (the fine-tuning recipe's encoder); ``small``: 4 x 256; ``tiny``:
    1 x 16 with an 8-channel CNN, whose forward costs next to nothing, so that a cache build
    against a bare forward measures the harness's own overhead (decoding, hashing, writing).
    """
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    folder = Path(tempfile.mkdtemp()) / f"wav2vec2-{shape}-random"
    torch.manual_seed(0)
    if shape == "base":
        cfg = Wav2Vec2Config()
    elif shape in ("large", "large12"):
        cfg = Wav2Vec2Config(hidden_size=1024, num_hidden_layers=24 if shape == "large" else 12,
                             num_attention_heads=16, intermediate_size=4096,
                             feat_extract_norm="layer", do_stable_layer_norm=True,
                             conv_bias=True)
    elif shape == "tiny":
        cfg = Wav2Vec2Config(hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                             intermediate_size=16, conv_dim=(8,) * 7,
                             num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)
    elif shape == "small":
        cfg = Wav2Vec2Config(hidden_size=256, num_hidden_layers=4, num_attention_heads=4,
                             intermediate_size=1024)
    else:
        raise ValueError(f"unknown shape {shape!r}; use one of {SHAPES}")
    Wav2Vec2Model(cfg).save_pretrained(folder)
    return folder


def iemocap_like(n: int, seed: int = 0, folder: Path | None = None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` 16 kHz noise clips with IEMOCAP-like durations: (ids, paths, durations)."""
    import soundfile as sf

    rng = np.random.default_rng(seed)
    durs = np.clip(rng.lognormal(np.log(3.75), 0.6, n), 0.6, 30.0)
    folder = folder or Path(tempfile.mkdtemp(prefix="iemocap-like-"))
    folder.mkdir(parents=True, exist_ok=True)
    ids, paths = [], []
    for i, d in enumerate(durs):
        path = folder / f"utt{i:05d}.wav"
        sf.write(path, (0.1 * rng.standard_normal(int(d * 16000))).astype(np.float32), 16000)
        ids.append(f"utt{i:05d}")
        paths.append(str(path))
    return np.array(ids, dtype=object), np.array(paths, dtype=object), durs
