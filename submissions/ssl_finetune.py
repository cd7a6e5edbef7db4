"""ssl-finetune: the released fine-tuning recipe (docs/methods.md), for users with a GPU.

The encoder (default ``facebook/wav2vec2-large-robust``) is loaded with
``transformers``, trimmed to its first ``keep_layers`` transformer layers (12,
"wav2vec2-L-robust-12"), its CNN feature encoder frozen; waveforms are
normalised with the training set's global mean and standard deviation and cut
at 12 s; the last hidden state is mean-pooled (masked by default; the released
unmasked mean with ``pooling="unmasked_mean"``) into the released
2x1024 BatchNorm/ReLU/dropout head.  Adam 1e-4 on everything, batch 32,
selection on dev loss; bf16/fp16 autocast on GPU.  The released recipe runs 50
epochs with 10 used by IS-2023; ``max_epochs`` defaults to 10.

Batches are length-bucketed by default (``batching="bucketed"``: clips of
similar length together, batch order shuffled, seeded; ``"random"`` gives the
released recipe's random batches), optionally capped at ``batch_seconds`` of
padded audio per batch; both are recorded in the configuration.  On a GPU
batches are padded to a multiple of ``pad_seconds`` (0.25 s), so the shapes
repeat and cuDNN's per-shape kernel plans are reused (masked: no effect on the
pooled output of a layer-norm encoder such as large-robust).

``penalty_alpha > 0`` adds the co-occurrence penalty of :mod:`serbench.methods.penalty`
(``penalty`` holds its other options, e.g. ``{"form": "kl_literal", "mode": "both"}``).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from serbench import audio
from serbench.methods import training
from serbench.methods.penalty import PenaltyConfig
from serbench.params import check_range, check_training
from serbench.submission import Data, FitSpec, Submission

from .ssl_mlp import released_head


class FineTuneNet(nn.Module):
    def __init__(self, encoder: nn.Module, k: int, hidden: int, dropout: float,
                 pooling: str) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = released_head(encoder.config.hidden_size, k, hidden, 2, dropout)
        self.pooling = pooling
        self.use_mask = getattr(encoder.config, "feat_extract_norm", "layer") == "layer"

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        mask = (torch.arange(x.shape[1], device=x.device)[None, :] < lengths[:, None]).long()
        h = self.encoder(x, attention_mask=mask if self.use_mask else None).last_hidden_state
        frames = self.encoder._get_feat_extract_output_lengths(lengths).clamp(max=h.shape[1])
        if self.pooling == "unmasked_mean":
            pooled = h.mean(dim=1)
        else:
            pooled = training.masked_mean(h, frames)
        return self.head(pooled)


class SslFinetune(Submission):
    """Fine-tune a trimmed SSL encoder with the released head and loss."""

    name = "ssl-finetune"
    version = "1.0"

    def __init__(self, model: str = "facebook/wav2vec2-large-robust", keep_layers: int = 12,
                 freeze_cnn: bool = True, pooling: str = "mean", hidden: int = 1024,
                 dropout: float = 0.5, loss: str = "cb_soft_ce", lr: float = 1e-4,
                 batch_size: int = 32, max_epochs: int = 10, patience: int = 3,
                 max_seconds: float = 12.0, penalty_alpha: float = 0.0,
                 penalty: dict | None = None, batching: str = "bucketed",
                 batch_seconds: float | None = None, pad_seconds: float = 0.25) -> None:
        super().__init__(model=model, keep_layers=keep_layers, freeze_cnn=freeze_cnn,
                         pooling=pooling, hidden=hidden, dropout=dropout, loss=loss, lr=lr,
                         batch_size=batch_size, max_epochs=max_epochs, patience=patience,
                         max_seconds=max_seconds,
                         penalty_alpha=penalty_alpha, penalty=penalty, batching=batching,
                         batch_seconds=batch_seconds, pad_seconds=pad_seconds)
        check_training(sizes={"keep_layers": keep_layers, "hidden": hidden,
                              "batch_size": batch_size, "max_epochs": max_epochs},
                       dropout=dropout, lr=lr, patience=patience, penalty_alpha=penalty_alpha)
        check_range("max_seconds", max_seconds, low=0, open_low=True, none=True)
        check_range("batch_seconds", batch_seconds, low=0, open_low=True, none=True)
        check_range("pad_seconds", pad_seconds, low=0)
        self.c = self._config
        self.cfg = training.TrainConfig(loss=loss, lr=lr, batch_size=batch_size,
                                        max_epochs=max_epochs, patience=patience,
                                        penalty=PenaltyConfig(alpha=penalty_alpha,
                                                              **(penalty or {})),
                                        batching=batching, batch_seconds=batch_seconds)
        self._waves: dict[str, np.ndarray] = {}
        self._multiple = 1

    def _load(self, data: Data) -> None:
        for u, path in zip(data.ids, data.audio_paths, strict=True):
            if u not in self._waves:
                self._waves[u] = audio.load(path, 16000, self.c["max_seconds"])

    def _collate(self, ids: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        return training.pad([(self._waves[u] - self.mu) / self.sigma for u in ids],
                            multiple=self._multiple)

    def _seconds(self, ids: np.ndarray) -> np.ndarray:
        """Each clip's length in seconds after the ``max_seconds`` cut (for bucketing)."""
        return np.array([len(self._waves[u]) / 16000 for u in ids])

    def fit(self, train: Data, dev: Data, spec: FitSpec) -> None:
        from transformers import AutoModel

        torch.manual_seed(spec.seed)
        if spec.device.startswith("cuda") and self.c["pad_seconds"]:
            self._multiple = max(1, round(self.c["pad_seconds"] * 16000))
        self._load(train)
        self._load(dev)
        samples = np.concatenate([self._waves[u] for u in train.ids])
        self.mu, self.sigma = float(samples.mean()), float(samples.std() + 1e-7)
        encoder = AutoModel.from_pretrained(self.c["model"])
        n = self.c["keep_layers"]
        if n and n < len(encoder.encoder.layers):
            encoder.encoder.layers = encoder.encoder.layers[:n]
            encoder.config.num_hidden_layers = n
        if self.c["freeze_cnn"] and hasattr(encoder, "freeze_feature_encoder"):
            encoder.freeze_feature_encoder()
        self.model = FineTuneNet(encoder, spec.k, self.c["hidden"], self.c["dropout"],
                                 self.c["pooling"])
        self.spec = spec
        self.summary = training.fit(self.model, self._collate, train, dev, spec, self.cfg,
                                    lengths=self._seconds)

    def predict_proba(self, batch: Data) -> np.ndarray:
        self._load(batch)
        return training.predict(self.model, self._collate, batch, self.cfg.loss, self.spec)
