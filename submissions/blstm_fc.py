"""BLSTM-FC: a recurrent baseline on frame-level acoustic features.

The rater-modelling chapter's BLSTM-FC configuration is not public
(docs/methods.md#e.3, [UNKNOWN]); these defaults are serbench's own choice:
per-dimension z-normalisation with training-set statistics, a 2-layer BLSTM,
masked mean pooling, FC(64)-ReLU-Dropout(0.5), FC(K); Adam 1e-3, batch 32, at
most 15 epochs with selection on dev loss and early stopping (patience 4); every
4th frame of 10 ms features (a 40 ms step) keeps CPU training of the demo grid
within minutes.  Features: log-mel filterbanks (default) or openSMILE
eGeMAPS low-level descriptors (``feature="egemaps"``).

Options for real speech (all off by default, so older records regenerate; see
docs/methods.md, "Making blstm-fc competitive on EmoDB"): ``frame_pool`` (``skip``,
``mean`` or ``stack`` the ``frame_step`` frames of a block), ``input_stats`` (the head also
sees the mean and sd of the input frames), ``centre`` (the BLSTM sees clip-centred frames),
``ensemble`` (mean logits of n networks from different seeds), ``pooling="attention"``,
and the training-only augmentations ``input_noise`` and ``crop``.  On EmoDB (eGeMAPS LLDs,
10 folds x 3 seeds) the named configuration ``frame_pool="stack", frame_step=4,
input_stats=true, ensemble=3, hidden=32, layers=1, pooling="meanstd"`` with per-speaker
normalisation matches the eGeMAPS-functionals SVM.

Losses: ``loss`` is ``ce``, ``bce``, ``kl`` or ``cb_soft_ce`` (default, the
released recipe); ``penalty_alpha > 0`` adds the co-occurrence penalty of
docs/methods.md#b.2 (``penalty_form``, ``penalty_combine``, ``cooc_mode``,
``cooc_norm``; see :mod:`serbench.methods.penalty`), with the matrix counted on the
fold's training ratings.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from serbench.features import EGeMAPS, LogMel
from serbench.features import normalise as norm
from serbench.methods import temperature, training
from serbench.methods.losses import LOSSES, SIGMOID, probabilities
from serbench.methods.penalty import PenaltyConfig
from serbench.params import check_training
from serbench.submission import Data, FitSpec, Submission


def head(dim: int, fc: int, dropout: float, k: int) -> nn.Sequential:
    """FC(fc)-ReLU-Dropout-FC(k), the classifier on the pooled BLSTM state."""
    return nn.Sequential(nn.Linear(dim, fc), nn.ReLU(), nn.Dropout(dropout), nn.Linear(fc, k))


POOLINGS = ("mean", "last", "meanstd", "attention")
FRAME_POOLS = ("skip", "mean", "stack")


def reduce_frames(x: np.ndarray, step: int, how: str) -> np.ndarray:
    """Frames [T, D] at a ``step`` times lower rate.

    ``skip`` keeps every ``step``-th frame (frames 0, step, 2 step, ...); ``mean``
    averages each block of ``step`` consecutive frames (the last block may be
    shorter), so no frame is thrown away; ``stack`` concatenates each block's
    frames into one [step * D] vector (a short last block is zero-padded), as
    in the frame stacking of Sak et al. (2015), "Fast and accurate recurrent
    neural network acoustic models for speech recognition".
    """
    if step <= 1:
        return x
    if how == "skip":
        return x[::step]
    t, d = x.shape
    blocks = -(-t // step)
    if how == "mean":
        sums = np.add.reduceat(x, np.arange(0, t, step), axis=0) if t else x[:0]
        counts = np.minimum(step, t - np.arange(0, t, step))[:, None]
        return (sums / counts).astype(x.dtype)
    padded = np.zeros((blocks * step, d), dtype=x.dtype)
    padded[:t] = x
    return padded.reshape(blocks, step * d)


def random_crops(x: torch.Tensor, lengths: torch.Tensor, shortest: float,
                 generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One random contiguous crop per sequence, at least ``shortest`` of its length (in (0, 1]).

    Each sequence keeps ``round(u * T_i)`` frames (u uniform in [shortest, 1], at least
    one frame) from a uniform start, moved to the front of its row; the rest is zero padding.
    """
    b, t = x.shape[0], x.shape[1]
    u = shortest + (1 - shortest) * torch.rand(b, generator=generator)
    keep = (u * lengths.float()).round().long().clamp(1).minimum(lengths)
    start = (torch.rand(b, generator=generator) * (lengths - keep + 1).float()).long()
    index = (start[:, None] + torch.arange(t)[None, :]).clamp(max=t - 1)
    out = torch.gather(x, 1, index.to(x.device)[..., None].expand(-1, -1, x.shape[2]))
    mask = torch.arange(t)[None, :] < keep[:, None]
    return out * mask.to(out.device)[..., None].to(out.dtype), keep


def mean_std(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Mean and standard deviation over each sequence's valid frames: [B, T, D] -> [B, 2 D]."""
    lengths = lengths.to(x.device)
    mean = training.masked_mean(x, lengths)
    sq = training.masked_mean(x * x, lengths)
    return torch.cat([mean, (sq - mean * mean).clamp_min(1e-6).sqrt()], dim=-1)


class BlstmNet(nn.Module):
    """BLSTM -> pooling -> FC head.

    ``input_noise`` (std of Gaussian noise added to the normalised inputs) and ``crop``
    (random crops of at least that fraction of each clip) are training-time
    augmentations only; evaluation sees the whole clip, noise-free.  ``input_stats``
    also feeds the head the mean and standard deviation of the input frames (a skip
    connection: the simplest functionals of the same low-level descriptors); with it,
    ``centre`` subtracts each clip's own mean from the frames the BLSTM sees, so that the
    recurrent path models the contours and the levels reach the head through the statistics.
    """

    def __init__(self, dim: int, k: int, hidden: int, layers: int, fc: int, dropout: float,
                 pooling: str, input_noise: float = 0.0, crop: float = 1.0,
                 input_stats: bool = False, centre: bool = False, ensemble: int = 1) -> None:
        super().__init__()
        if centre and not input_stats:
            raise ValueError("centre needs input_stats (the clip means would be lost)")
        self.centre = centre
        self.lstm = nn.LSTM(dim, hidden, num_layers=layers, batch_first=True, bidirectional=True)
        pooled = (4 if pooling == "meanstd" else 2) * hidden
        self.head = head(pooled + (2 * dim if input_stats else 0), fc, dropout, k)
        self.input_stats = input_stats
        self.pooling = pooling
        self.input_noise, self.crop = input_noise, crop
        if pooling == "attention":  # additive attention over frames (one score per frame)
            self.score = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.Tanh(),
                                       nn.Linear(hidden, 1))

    def augment(self, x: torch.Tensor, lengths: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Training only: random crops, then Gaussian input noise (padding stays zero)."""
        if self.crop < 1:
            x, lengths = random_crops(x, lengths.cpu(), self.crop)
        if self.input_noise > 0:
            t = torch.arange(x.shape[1], device=x.device)
            mask = (t[None, :] < lengths.to(x.device)[:, None]).to(x.dtype)
            x = x + self.input_noise * torch.randn_like(x) * mask[..., None]
        return x, lengths

    def encode(self, x: torch.Tensor, lengths: torch.Tensor, augment: bool = True
               ) -> torch.Tensor:
        """Pooled BLSTM state [B, 2 * hidden] ([B, 4 * hidden] for ``meanstd``)."""
        if self.training and augment:
            x, lengths = self.augment(x, lengths)
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, (h, _) = self.lstm(packed)
        if self.pooling == "last":
            return torch.cat([h[-2], h[-1]], dim=-1)
        out, _ = pad_packed_sequence(out, batch_first=True)
        if self.pooling == "attention":
            valid = torch.arange(out.shape[1], device=out.device)[None, :] < \
                lengths.to(out.device)[:, None]
            scores = self.score(out).squeeze(-1).masked_fill(~valid, float("-inf"))
            return (torch.softmax(scores, dim=1)[..., None] * out).sum(1)
        if self.pooling == "meanstd":  # statistics pooling: mean and std over valid frames
            return mean_std(out, lengths)
        return training.masked_mean(out, lengths.to(out.device))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        if not self.input_stats:
            return self.head(self.encode(x, lengths))
        if self.training:  # the same crop and noise for the BLSTM and the input statistics
            x, lengths = self.augment(x, lengths)
        stats = mean_std(x, lengths)
        if self.centre:  # the BLSTM sees the frames around the clip's own mean
            valid = torch.arange(x.shape[1], device=x.device)[None, :] < \
                lengths.to(x.device)[:, None]
            x = (x - stats[:, None, :x.shape[2]]) * valid[..., None].to(x.dtype)
        return self.head(torch.cat([self.encode(x, lengths, augment=False), stats], dim=-1))


#: Seed offset between ensemble members (member i trains with seed + i * step).
ENSEMBLE_SEED_STEP = 7919


class Ensemble(nn.Module):
    """Networks trained alike from different seeds; the output is the mean of their logits
    (a geometric mean of their softmax outputs, renormalised).  Averaging a few independently
    trained networks lowers the variance that one initialisation and one dev-selected epoch
    leave (Lakshminarayanan et al., 2017, "Simple and scalable predictive uncertainty
    estimation using deep ensembles")."""

    def __init__(self, members: list[BlstmNet]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return torch.stack([m(x, lengths) for m in self.members]).mean(0)


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
                 temperature: str = "none", weight_decay: float = 0.0,
                 frame_pool: str = "skip", input_noise: float = 0.0, crop: float = 1.0,
                 input_stats: bool = False, centre: bool = False, ensemble: int = 1) -> None:
        super().__init__(feature=feature, hidden=hidden, layers=layers, fc=fc, dropout=dropout,
                         pooling=pooling, loss=loss, lr=lr, batch_size=batch_size,
                         max_epochs=max_epochs, patience=patience, frame_step=frame_step,
                         penalty_alpha=penalty_alpha, penalty_form=penalty_form,
                         penalty_combine=penalty_combine, cooc_mode=cooc_mode,
                         cooc_norm=cooc_norm, normalisation=normalisation,
                         group_column=group_column, temperature=temperature,
                         weight_decay=weight_decay, frame_pool=frame_pool,
                         input_noise=input_noise, crop=crop, input_stats=input_stats,
                         centre=centre, ensemble=ensemble,
                         transductive=normalisation == "group")
        if feature not in ("logmel", "egemaps"):
            raise ValueError("feature must be 'logmel' or 'egemaps'")
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {', '.join(LOSSES)}")
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}")
        if frame_pool not in FRAME_POOLS:
            raise ValueError(f"frame_pool must be one of {', '.join(FRAME_POOLS)}")
        check_training(sizes={"hidden": hidden, "layers": layers, "fc": fc,
                              "batch_size": batch_size, "max_epochs": max_epochs},
                       dropout=dropout, lr=lr, patience=patience, weight_decay=weight_decay,
                       penalty_alpha=penalty_alpha)
        if frame_step < 1:
            raise ValueError("frame_step must be at least 1")
        if input_noise < 0:
            raise ValueError("input_noise is a standard deviation: 0 or more")
        if ensemble < 1:
            raise ValueError("ensemble is a number of networks: 1 or more")
        if centre and not input_stats:
            raise ValueError("centre needs input_stats=true (the clip means would be lost)")
        if not 0 < crop <= 1:
            raise ValueError("crop is the shortest fraction of a clip kept: in (0, 1]")
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
        step, how = self.c["frame_step"], self.c["frame_pool"]

        def collate(ids: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
            if how == "skip":  # normalise the kept frames only (as serbench always did)
                feats = [(store[u][::step] - m) / s
                         for u, (m, s) in zip(ids, self._moments(ids), strict=True)]
            else:
                feats = [reduce_frames((store[u] - m) / s, step, how)
                         for u, (m, s) in zip(ids, self._moments(ids), strict=True)]
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

    def input_dim(self, dim: int) -> int:
        """The BLSTM's input size: ``dim`` features per frame, times ``frame_step`` if stacked."""
        return dim * self.c["frame_step"] if self.c["frame_pool"] == "stack" else dim

    def net(self, dim: int, k: int) -> BlstmNet:
        """The configured network for ``dim`` features per (10 ms) frame and ``k`` classes."""
        c = self.c
        return BlstmNet(self.input_dim(dim), k, c["hidden"], c["layers"], c["fc"], c["dropout"],
                        c["pooling"], input_noise=c["input_noise"], crop=c["crop"],
                        input_stats=c["input_stats"], centre=c["centre"])

    def fit(self, train: Data, dev: Data, spec: FitSpec) -> None:
        dim = self.prepare_fit(train, spec)
        n = self.c["ensemble"]
        self.model: nn.Module
        if n == 1:
            self.model = self.net(dim, spec.k)
            self.summary = training.fit(self.model, self.collate, train, dev, spec, self.cfg)
        else:  # member i: its own initialisation and batch order, its own dev selection
            members, summaries = [], []
            for i in range(n):
                member_spec = replace(spec, seed=spec.seed + ENSEMBLE_SEED_STEP * i)
                torch.manual_seed(member_spec.seed)
                members.append(self.net(dim, spec.k))
                summaries.append(training.fit(members[-1], self.collate, train, dev,
                                              member_spec, self.cfg))
            self.model = Ensemble(members)
            self.summary = {"members": summaries}
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
        n = self.c["ensemble"]
        nets = [self.net(len(self.mean), spec.k) for _ in range(n)]
        self.model = nets[0] if n == 1 else Ensemble(nets)
        self.model.load_state_dict({k[len("model."):]: v for k, v in tensors.items()
                                    if k.startswith("model.")}, strict=True)
        self.model.to(spec.device).eval()
