"""BLSTM-FC: a recurrent baseline on frame-level acoustic features.

The rater-modelling chapter's BLSTM-FC configuration is not public
(docs/methods.md#e.3, [UNKNOWN]); these defaults are serbench's own choice:
per-dimension z-normalisation with training-set statistics, a 2-layer BLSTM,
masked mean pooling, FC(64)-ReLU-Dropout(0.5), FC(K); Adam 1e-3, batch 32, at
most 15 epochs with selection on dev loss and early stopping (patience 4); every
4th frame of 10 ms features (a 40 ms step) keeps CPU training of the demo grid
within minutes.  Features: log-mel filterbanks (default) or openSMILE
eGeMAPS low-level descriptors (``feature="egemaps"``).

Losses: ``loss`` is ``ce``, ``bce``, ``kl`` or ``cb_soft_ce`` (default, the
released recipe); ``penalty_alpha > 0`` adds the co-occurrence penalty of
docs/methods.md#b.2 (``penalty_form``, ``penalty_combine``, ``cooc_mode``,
``cooc_norm``; see :mod:`serbench.methods.penalty`), with the matrix counted on the
fold's training ratings.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from serbench.features import EGeMAPS, LogMel
from serbench.features import normalise as norm
from serbench.methods import temperature, training
from serbench.methods.losses import LOSSES, SIGMOID, probabilities
from serbench.methods.penalty import PenaltyConfig
from serbench.submission import Data, FitSpec, Submission


def head(dim: int, fc: int, dropout: float, k: int) -> nn.Sequential:
    """FC(fc)-ReLU-Dropout-FC(k), the classifier on the pooled BLSTM state."""
    return nn.Sequential(nn.Linear(dim, fc), nn.ReLU(), nn.Dropout(dropout), nn.Linear(fc, k))


class BlstmNet(nn.Module):
    def __init__(self, dim: int, k: int, hidden: int, layers: int, fc: int, dropout: float,
                 pooling: str) -> None:
        super().__init__()
        self.lstm = nn.LSTM(dim, hidden, num_layers=layers, batch_first=True, bidirectional=True)
        self.head = head((4 if pooling == "meanstd" else 2) * hidden, fc, dropout, k)
        self.pooling = pooling

    def encode(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Pooled BLSTM state [B, 2 * hidden]."""
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, (h, _) = self.lstm(packed)
        if self.pooling == "last":
            return torch.cat([h[-2], h[-1]], dim=-1)
        out, _ = pad_packed_sequence(out, batch_first=True)
        mean = training.masked_mean(out, lengths.to(out.device))
        if self.pooling == "meanstd":  # statistics pooling: mean and std over valid frames
            sq = training.masked_mean(out * out, lengths.to(out.device))
            return torch.cat([mean, (sq - mean * mean).clamp_min(1e-6).sqrt()], dim=-1)
        return mean

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.head(self.encode(x, lengths))


def temperature_kinds() -> tuple[str, ...]:
    return temperature.KINDS


class BlstmFc(Submission):
    """2-layer BLSTM -> pooling -> FC(64)-ReLU-Dropout -> FC(K)."""

    name = "blstm-fc"
    version = "1.0"

    def __init__(self, feature: str = "logmel", hidden: int = 64, layers: int = 2, fc: int = 64,
                 dropout: float = 0.5, pooling: str = "mean", loss: str = "cb_soft_ce",
                 lr: float = 1e-3, batch_size: int = 32, max_epochs: int = 15, patience: int = 4,
                 frame_step: int = 4, penalty_alpha: float = 0.0,
                 penalty_form: str = "pairwise", penalty_combine: str = "convex",
                 cooc_mode: str = "across_rater", cooc_norm: str = "global_max",
                 normalisation: str = "global", group_column: str = "speaker_id",
                 temperature: str = "none", weight_decay: float = 0.0) -> None:
        super().__init__(feature=feature, hidden=hidden, layers=layers, fc=fc, dropout=dropout,
                         pooling=pooling, loss=loss, lr=lr, batch_size=batch_size,
                         max_epochs=max_epochs, patience=patience, frame_step=frame_step,
                         penalty_alpha=penalty_alpha, penalty_form=penalty_form,
                         penalty_combine=penalty_combine, cooc_mode=cooc_mode,
                         cooc_norm=cooc_norm, normalisation=normalisation,
                         group_column=group_column, temperature=temperature,
                         weight_decay=weight_decay, transductive=normalisation == "group")
        if feature not in ("logmel", "egemaps"):
            raise ValueError("feature must be 'logmel' or 'egemaps'")
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {', '.join(LOSSES)}")
        if pooling not in ("mean", "last", "meanstd"):
            raise ValueError("pooling must be 'mean', 'last' or 'meanstd'")
        if normalisation not in ("global", "group"):
            raise ValueError("normalisation must be 'global' or 'group'")
        norm.check_normalisation(normalisation, group_column)
        if temperature not in temperature_kinds():
            raise ValueError(f"temperature must be one of {temperature_kinds()}")
        if temperature == "per_emotion" and loss not in SIGMOID:
            raise ValueError("per-emotion temperatures calibrate sigmoid outputs: use a BCE "
                             f"loss ({', '.join(SIGMOID)}) or temperature='single'")
        penalty = PenaltyConfig(alpha=penalty_alpha, form=penalty_form,  # type: ignore[arg-type]
                                combine=penalty_combine, mode=cooc_mode,  # type: ignore[arg-type]
                                norm=cooc_norm)
        self.cfg = training.TrainConfig(loss=loss, lr=lr, batch_size=batch_size,
                                        max_epochs=max_epochs, patience=patience,
                                        weight_decay=weight_decay, penalty=penalty)
        self.c = self._config

    def feature_spec(self):
        return LogMel() if self.c["feature"] == "logmel" else EGeMAPS()

    def _collate(self, store):
        step = self.c["frame_step"]

        def collate(ids: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
            feats = [(store[u][::step] - m) / s for u, (m, s) in zip(ids, self._moments(ids),
                                                                      strict=True)]
            return training.pad(feats)

        return collate

    def _moments(self, ids: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """The (mean, std) each clip is normalised with: the training frames' (``global``), or
        its speaker's / session's own frames' (``group``, transductive on test groups)."""
        if self.c["normalisation"] == "global":
            return [(self.mean, self.std)] * len(ids)
        column = self.c["group_column"]
        g = norm.group_of(self.groups, ids, column, task=f"task {self.spec.task}")
        new = [h for h in dict.fromkeys(g) if h not in self.group_stats]
        if new:
            for h, (m, s) in norm.group_moments(self.store, self.groups, column, new).items():
                self.group_stats[h] = (m.astype(np.float32), (s + 1e-5).astype(np.float32))
        return [self.group_stats[h] for h in g]

    def normalise_on(self, train: Data) -> int:
        """Per-dimension mean and std of the training frames; returns the feature size."""
        frames = np.concatenate([train.features[u] for u in train.ids])
        self.mean = frames.mean(axis=0).astype(np.float32)
        self.std = (frames.std(axis=0) + 1e-5).astype(np.float32)
        self.store, self.groups = train.features, train.groups
        self.group_stats: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        return frames.shape[1]

    def prepare_fit(self, train: Data, spec: FitSpec) -> int:
        """Seed, keep the spec, normalise on the training frames, build the collator; -> dim."""
        torch.manual_seed(spec.seed)
        self.spec = spec
        dim = self.normalise_on(train)
        self.collate = self._collate(train.features)
        return dim

    def fit(self, train: Data, dev: Data, spec: FitSpec) -> None:
        dim = self.prepare_fit(train, spec)
        self.model = BlstmNet(dim, spec.k, self.c["hidden"], self.c["layers"],
                              self.c["fc"], self.c["dropout"], self.c["pooling"])
        self.summary = training.fit(self.model, self.collate, train, dev, spec, self.cfg)
        self.temperatures = self.fit_temperature(dev)

    def fit_temperature(self, dev: Data) -> np.ndarray:
        """Temperatures fitted on the dev split (:mod:`serbench.methods.temperature`); 1 if off."""
        kind = self.c["temperature"]
        if kind == "none" or len(dev) == 0:
            return np.ones(1)
        logits = training.outputs(self.model, self.collate, dev, self.spec).numpy()
        target = dev.multi_hot() if kind == "per_emotion" else dev.targets
        return temperature.fit_temperatures(logits, target, kind)  # type: ignore[arg-type]

    def predict_proba(self, batch: Data) -> np.ndarray:
        logits = training.outputs(self.model, self.collate, batch, self.spec)
        logits = logits / torch.as_tensor(self.temperatures, dtype=logits.dtype)
        return probabilities(self.cfg.loss, logits).numpy().astype(np.float64)

    def checkpoint(self) -> dict[str, torch.Tensor]:
        return {"mean": torch.from_numpy(self.mean), "std": torch.from_numpy(self.std),
                "temperatures": torch.as_tensor(self.temperatures, dtype=torch.float64),
                **{f"model.{k}": v for k, v in self.model.state_dict().items()}}

    def restore(self, tensors: dict[str, torch.Tensor], spec: FitSpec, features) -> None:
        self.spec = spec
        self.mean, self.std = tensors["mean"].numpy(), tensors["std"].numpy()
        self.temperatures = (tensors["temperatures"].numpy() if "temperatures" in tensors
                             else np.ones(1))
        self.store, self.groups, self.group_stats = features, None, {}
        self.collate = self._collate(features)
        self.model = BlstmNet(len(self.mean), spec.k, self.c["hidden"], self.c["layers"],
                              self.c["fc"], self.c["dropout"], self.c["pooling"])
        self.model.load_state_dict({k[len("model."):]: v for k, v in tensors.items()
                                    if k.startswith("model.")}, strict=True)
        self.model.to(spec.device).eval()
