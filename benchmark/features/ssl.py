"""Frozen SSL encoders through ``transformers``: padded, masked batch forward passes.

Any audio encoder that ``AutoModel`` loads, that returns ``hidden_states``
and that says how many frames a waveform gives
(``_get_feat_extract_output_lengths``: wav2vec 2.0, HuBERT, WavLM,
data2vec-audio) works, from a hub id or a local folder.  Each clip's states
are cut to its own number of frames before caching or pooling, so padding
never leaks into the features.

On a GPU a batch is *started*, not finished: the input goes up from pinned
memory, the forward pass, the float16 cast, the packing of every clip's own
frames into one contiguous buffer (or the per-clip pooling) and the copy back
into pinned host memory are all queued on the device, and the host only waits
(:meth:`Pending.result`) when the cache's writer thread needs the bytes.  The
next batch is decoded and launched meanwhile.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from ..errors import InputError
from .specs import POOL_STATS, PRECISIONS, Pending

_FIX_MODEL = ("pass a hub id or a local folder saved with save_pretrained (offline: download "
              "the model once and pass its folder)")


@lru_cache(maxsize=2)
def load_encoder(model: str, device: str) -> Any:
    import torch
    from transformers import AutoModel

    try:
        enc = AutoModel.from_pretrained(model)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot load the encoder {model!r}: {exc}", fix=_FIX_MODEL) from None
    enc.eval().to(torch.device(device))
    return enc


def frame_lengths(encoder: Any, lengths: Any) -> Any:
    """Number of encoder frames per clip (the CNN feature extractor's output length)."""
    fn = getattr(encoder, "_get_feat_extract_output_lengths", None)
    if fn is None:
        raise InputError(f"the encoder {type(encoder).__name__} does not say how many frames a "
                         "waveform gives (no _get_feat_extract_output_lengths)",
                         fix="use an audio encoder such as wav2vec 2.0, HuBERT, WavLM or "
                             "data2vec-audio")
    return fn(lengths)


def check_spec(spec: Any) -> None:
    """Refuse, before any extraction, an encoder without a frame-length function, an
    out-of-range layer index, an unknown precision or pooling statistic.

    Reads only the model's configuration (no weights).
    """
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_MAPPING

    if spec.precision not in PRECISIONS:
        raise InputError(f"unknown forward precision {spec.precision!r}",
                         fix=f"use one of {', '.join(PRECISIONS)}")
    for stat in getattr(spec, "stats", ()):
        if stat not in POOL_STATS:
            raise InputError(f"unknown pooling statistic {stat!r}",
                             fix=f"use some of {', '.join(POOL_STATS)}")
    if getattr(spec, "stats", None) == ():
        raise InputError("a pooled feature spec needs at least one statistic",
                         fix="stats=('mean',) or ('mean', 'std')")
    try:
        config = AutoConfig.from_pretrained(spec.model)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot load the encoder {spec.model!r}: {exc}",
                         fix=_FIX_MODEL) from None
    try:
        found: Any = MODEL_MAPPING[type(config)]
    except KeyError:
        found = None
    cls = found[0] if isinstance(found, tuple) else found
    if cls is not None and not hasattr(cls, "_get_feat_extract_output_lengths"):
        raise InputError(f"the encoder {spec.model!r} ({cls.__name__}) does not say how many "
                         "frames a waveform gives (no _get_feat_extract_output_lengths)",
                         fix="use an audio encoder such as wav2vec 2.0, HuBERT, WavLM or "
                             "data2vec-audio")
    n = int(getattr(config, "num_hidden_layers", 0)) + 1
    for i in spec.layers or ():
        if not -n <= int(i) < n:
            raise InputError(f"layer index {i} is out of range for {spec.model!r}, which has {n} "
                             f"hidden states (0 = CNN projection, 1..{n - 1} transformer layers)",
                             fix=f"use layer indices from 0 to {n - 1} (or negative from the end)")


def prepare_batch(spec: Any, waves: list[np.ndarray], device: str) -> tuple[Any, Any]:
    """The zero-padded, per-clip normalised batch on the host (pinned for a GPU), and the
    sample counts: the CPU work of a batch, which the cache does on its decoding thread, ahead
    of the forward pass, so the thread driving the device only launches work."""
    import torch

    lengths = torch.tensor([len(w) for w in waves])
    x = torch.zeros(len(waves), int(lengths.max()),
                    pin_memory=torch.device(device).type == "cuda")
    for i, w in enumerate(waves):
        v = torch.from_numpy(w)
        if spec.normalize:
            v = (v - v.mean()) / (v.std() + 1e-7)
        x[i, : len(w)] = v
    return x, lengths


def _forward(spec: Any, enc: Any, x: Any, lengths: Any, dev: Any) -> list[Any]:
    import torch

    use_mask = getattr(enc.config, "feat_extract_norm", "layer") == "layer"
    mask = None
    if use_mask:
        mask = (torch.arange(x.shape[1], device=dev)[None, :]
                < lengths.to(dev, non_blocking=True)[:, None]).long()
    autocast = torch.autocast(dev.type, dtype=getattr(torch, spec.precision),
                              enabled=spec.precision != "float32")
    with autocast:
        out = enc(x, attention_mask=mask, output_hidden_states=True)
    states = list(out.hidden_states)
    if spec.layers is not None:
        states = [states[int(i)] for i in spec.layers]
    return states


class _DevicePending(Pending):
    """A batch whose float16 result is being copied into pinned host memory."""

    def __init__(self, host: Any, event: Any, shapes: list[tuple[int, ...]],
                 frames: list[int]) -> None:
        self._host, self._event, self._shapes = host, event, shapes
        self._frames = frames

    def result(self) -> tuple[list[np.ndarray], list[int]]:
        if self._event is not None:
            self._event.synchronize()
        flat = self._host.numpy()
        out, at = [], 0
        for shape in self._shapes:
            size = int(np.prod(shape))
            out.append(flat[at:at + size].reshape(shape))
            at += size
        return out, self._frames


def start_batch(spec: Any, prepared: tuple[Any, Any], device: str) -> Pending:
    """Launch one batch (:func:`prepare_batch`): frames [L, T_i, D] per clip, or pooled
    statistics [S, L, D]."""
    import torch

    dev = torch.device(device)
    enc = load_encoder(spec.model, device)
    with torch.inference_mode():
        x, lengths = prepared
        x = x.to(dev, non_blocking=True)
        states = _forward(spec, enc, x, lengths, dev)
        t = states[0].shape[1]
        n_frames = frame_lengths(enc, lengths).clamp(max=t)
        frames = [int(f) for f in n_frames]
        stats = getattr(spec, "stats", None)
        if stats:
            flat = _pool(states, n_frames.to(dev, non_blocking=True), stats).to(torch.float16)
            shapes = [tuple(flat.shape[1:])] * len(frames)
        else:
            pieces, shapes = [], []
            stacked = torch.stack([s.to(torch.float16) for s in states], 1)  # [B, L, T, D]
            for i, f in enumerate(frames):
                pieces.append(stacked[i, :, :f].reshape(-1))
                shapes.append((stacked.shape[1], f, stacked.shape[3]))
            flat = torch.cat(pieces)
        flat = flat.reshape(-1)
        if dev.type != "cuda":
            return _DevicePending(flat, None, shapes, frames)
        host = torch.empty(flat.shape, dtype=flat.dtype, pin_memory=True)
        host.copy_(flat, non_blocking=True)
        event = torch.cuda.Event()
        event.record()
    return _DevicePending(host, event, shapes, frames)


def _pool(states: list[Any], n_frames: Any, stats: tuple[str, ...]) -> Any:
    """[B, S, L, D] float32 statistics of each clip over its own frames (masked, so padding
    never enters); the standard deviation is the population one, from a second pass."""
    import torch

    h = torch.stack(states, 1).float()  # [B, L, T, D]
    mask = (torch.arange(h.shape[2], device=h.device)[None, :] < n_frames[:, None]).float()
    count = n_frames.clamp_min(1).float()[:, None, None]
    mean = torch.einsum("bltd,bt->bld", h, mask) / count
    out = []
    for stat in stats:
        if stat == "mean":
            out.append(mean)
        else:  # std
            sq = (h - mean[:, :, None, :]).square_()
            out.append((torch.einsum("bltd,bt->bld", sq, mask) / count).sqrt_())
    return torch.stack(out, 1)
