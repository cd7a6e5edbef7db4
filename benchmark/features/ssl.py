"""Frozen SSL encoders through ``transformers``: padded, masked batch forward passes.

Any audio encoder that ``AutoModel`` loads and that returns
``hidden_states`` (wav2vec 2.0, HuBERT, WavLM, data2vec-audio) works, from a
hub id or a local folder.  Each clip's states are cut to its own number of
frames before caching, so padding never leaks into the features.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np


@lru_cache(maxsize=2)
def load_encoder(model: str, device: str) -> Any:
    import torch
    from transformers import AutoModel

    enc = AutoModel.from_pretrained(model)
    enc.eval().to(torch.device(device))
    return enc


def frame_lengths(encoder: Any, lengths: Any) -> Any:
    """Number of encoder frames per clip (the CNN feature extractor's output length)."""
    fn = getattr(encoder, "_get_feat_extract_output_lengths", None)
    if fn is None:
        raise ValueError("the encoder does not expose _get_feat_extract_output_lengths")
    return fn(lengths)


def encode_batch(spec: Any, waves: list[np.ndarray], device: str) -> list[np.ndarray]:
    import torch

    enc = load_encoder(spec.model, device)
    lengths = torch.tensor([len(w) for w in waves])
    longest = int(lengths.max())
    x = torch.zeros(len(waves), longest)
    mask = torch.zeros(len(waves), longest, dtype=torch.long)
    for i, w in enumerate(waves):
        v = torch.from_numpy(w)
        if spec.normalize:
            v = (v - v.mean()) / (v.std() + 1e-7)
        x[i, : len(w)] = v
        mask[i, : len(w)] = 1
    dev = torch.device(device)
    use_mask = getattr(enc.config, "feat_extract_norm", "layer") == "layer"
    with torch.inference_mode():
        out = enc(x.to(dev), attention_mask=mask.to(dev) if use_mask else None,
                  output_hidden_states=True)
    states = torch.stack(out.hidden_states, dim=1)  # [B, L, T, D]
    if spec.layers is not None:
        states = states[:, list(spec.layers)]
    n_frames = frame_lengths(enc, lengths)
    states = states.to(torch.float16).cpu().numpy()
    return [states[i, :, : int(n_frames[i])] for i in range(len(waves))]
