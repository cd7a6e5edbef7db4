"""Feature specs: what to compute from a waveform, and a stable key for the cache."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np


class Pending:
    """Features of one batch whose computation has been started (see :meth:`FeatureSpec.start`).

    ``result()`` waits for them and returns ``(arrays, frames)``: one array per
    clip and the number of time frames each was computed from.
    """

    def __init__(self, arrays: list[np.ndarray], frames: list[int]) -> None:
        self._arrays, self._frames = arrays, frames

    def result(self) -> tuple[list[np.ndarray], list[int]]:
        return self._arrays, self._frames


class FeatureSpec:
    """Base class: ``sample_rate``, ``key()`` and ``extract(waves, device)``.

    The cache calls :meth:`check` once before extracting anything, then per
    batch :meth:`prepare` on the decoding thread (the CPU work that needs no
    device: normalising, padding, pinning) and :meth:`start_prepared` on the
    thread that drives the device; ``start`` may return before the work is
    done (a GPU spec launches its kernels and copies, and the cache's writer
    thread waits for them), so decoding, the forward pass and writing overlap.
    ``start(waves)`` is ``start_prepared(prepare(waves))``.
    """

    sample_rate: int = 16000
    #: Seconds of audio per batch budget (length-bucketed batching of extraction).
    batch_seconds: float = 64.0

    def check(self) -> None:
        """Refuse a spec that cannot work (bad layer index, unsupported encoder) up front."""

    def start(self, waves: list[np.ndarray], device: str = "cpu") -> Pending:
        """Begin the features of one batch; the default computes them here and now."""
        arrays = self.extract(waves, device)
        return Pending(arrays, [int(a.shape[-2]) if a.ndim >= 2 else 1 for a in arrays])

    def prepare(self, waves: list[np.ndarray], device: str = "cpu") -> Any:
        """A batch's work that needs no device, done ahead on the decoding thread (default:
        none; the waves as they are)."""
        return waves

    def start_prepared(self, prepared: Any, device: str = "cpu") -> Pending:
        """:meth:`start` of what :meth:`prepare` returned."""
        return self.start(prepared, device)

    def params(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]

    def key(self) -> str:
        blob = json.dumps({"kind": type(self).__name__, **self.params()}, sort_keys=True)
        return f"{type(self).__name__.lower()}-{hashlib.sha256(blob.encode()).hexdigest()[:12]}"

    def extract(self, waves: list[np.ndarray], device: str = "cpu") -> list[np.ndarray]:
        raise NotImplementedError


@dataclass(frozen=True)
class LogMel(FeatureSpec):
    """Log-mel filterbank energies [T, n_mels] (transformers' audio_utils, Slaney mel)."""

    n_mels: int = 40
    win_ms: float = 25.0
    hop_ms: float = 10.0
    sample_rate: int = 16000

    def extract(self, waves: list[np.ndarray], device: str = "cpu") -> list[np.ndarray]:
        from transformers.audio_utils import mel_filter_bank, spectrogram, window_function

        win = int(self.sample_rate * self.win_ms / 1000)
        hop = int(self.sample_rate * self.hop_ms / 1000)
        n_fft = 1 << (win - 1).bit_length()
        mel = mel_filter_bank(num_frequency_bins=n_fft // 2 + 1, num_mel_filters=self.n_mels,
                              min_frequency=20.0, max_frequency=self.sample_rate / 2,
                              sampling_rate=self.sample_rate, norm="slaney", mel_scale="slaney")
        window = window_function(win, "hann")
        out = []
        for w in waves:
            if len(w) < win:
                w = np.pad(w, (0, win - len(w)))
            spec = spectrogram(w, window, frame_length=win, hop_length=hop, fft_length=n_fft,
                               power=2.0, mel_filters=mel, log_mel="log", mel_floor=1e-10,
                               center=False)
            out.append(spec.T.astype(np.float32))  # [T, n_mels]
        return out


#: Forward-pass precisions of the SSL specs (part of their cache key).
PRECISIONS = ("float32", "bfloat16", "float16")


@dataclass(frozen=True)
class SSLHiddenStates(FeatureSpec):
    """Hidden states of a frozen ``transformers`` audio encoder: [L, T, D] (float16).

    ``model`` is a hub id or a local folder; ``layers`` None keeps every layer
    (the CNN output projection plus each transformer layer, as
    ``output_hidden_states`` gives them), or a tuple of layer indices.
    ``precision`` is the forward pass's: ``float32``, or ``bfloat16`` /
    ``float16`` autocast (faster on a GPU); it is part of the cache key, so
    features of different precisions never mix.  The states are stored as
    float16 whatever the forward precision.
    """

    model: str = "facebook/wav2vec2-base"
    layers: tuple[int, ...] | None = None
    sample_rate: int = 16000
    batch_seconds: float = 64.0
    normalize: bool = True
    precision: str = "float32"
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def params(self) -> dict[str, Any]:
        return {"model": self.model, "layers": self.layers, "sample_rate": self.sample_rate,
                "normalize": self.normalize, "precision": self.precision}

    def check(self) -> None:
        from .ssl import check_spec

        check_spec(self)

    def start(self, waves: list[np.ndarray], device: str = "cpu") -> Pending:
        return self.start_prepared(self.prepare(waves, device), device)

    def prepare(self, waves: list[np.ndarray], device: str = "cpu") -> Any:
        from .ssl import prepare_batch

        return prepare_batch(self, waves, device)

    def start_prepared(self, prepared: Any, device: str = "cpu") -> Pending:
        from .ssl import start_batch

        return start_batch(self, prepared, device)

    def extract(self, waves: list[np.ndarray], device: str = "cpu") -> list[np.ndarray]:
        return self.start(waves, device).result()[0]


#: Statistics a pooled spec can keep per layer.
POOL_STATS = ("mean", "std")


@dataclass(frozen=True)
class SSLPooled(SSLHiddenStates):
    """Per-layer statistics of a frozen encoder's hidden states over each clip: [S, L, D].

    The statistics (``stats``: ``mean`` and optionally ``std``, the population
    standard deviation) are computed on the device inside the forward batch,
    each clip over its own frames only, in float32, and stored as float16: a
    few KB to a few hundred KB per clip instead of the frames' megabytes.  The
    cache records each clip's number of frames (``FeatureStore.frames``).
    """

    stats: tuple[str, ...] = ("mean",)

    def params(self) -> dict[str, Any]:
        return {**super().params(), "stats": list(self.stats)}


@dataclass(frozen=True)
class EGeMAPS(FeatureSpec):
    """openSMILE eGeMAPSv02 low-level descriptors [T, 25] (needs the ``opensmile`` package)."""

    sample_rate: int = 16000

    def extract(self, waves: list[np.ndarray], device: str = "cpu") -> list[np.ndarray]:
        try:
            import opensmile
        except ImportError as exc:
            from ..errors import InputError

            raise InputError("eGeMAPS features need the opensmile package",
                             fix="pip install 'serbench[egemaps]'") from exc
        smile = opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02,
                                feature_level=opensmile.FeatureLevel.LowLevelDescriptors)
        return [smile.process_signal(w, self.sample_rate).to_numpy(dtype=np.float32)
                for w in waves]
