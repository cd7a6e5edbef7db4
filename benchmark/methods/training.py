"""A small, deterministic training loop shared by the reference baselines.

Mini-batches of variable-length feature sequences are padded and passed with
their lengths; the loss is one of :mod:`serbench.methods.losses`; the model with the
lowest dev loss is kept (the released recipe selects on dev loss); training
stops after ``patience`` epochs without improvement.  Shuffling uses a seeded
generator, so a CPU run is repeatable bit for bit.

What is optimised is an :class:`Objective`: per-clip targets plus a batch
loss.  :class:`SingleHead` covers the four base losses with the optional
co-occurrence penalty; multi-head models (rater fusion, crowd layers) bring
their own objective and reuse the same loop.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ..submission import Data, FitSpec
from ..targets import class_balanced_weights
from .losses import CLASS_BALANCED, TARGETS, probabilities
from .penalty import PenaltyConfig, penalized_loss, training_penalty
from .raters import rater_answers

Collate = Callable[[np.ndarray], tuple[torch.Tensor, torch.Tensor]]
Targets = dict[str, torch.Tensor]


@dataclass(frozen=True)
class TrainConfig:
    loss: str = "cb_soft_ce"
    lr: float = 1e-3
    batch_size: int = 32
    max_epochs: int = 30
    patience: int = 5
    weight_decay: float = 0.0
    #: Co-occurrence penalty (science.md b.2); None or alpha 0 trains the base loss alone.
    penalty: PenaltyConfig | None = None


def targets_for(loss: str, data: Data, spec: FitSpec, rng: np.random.Generator) -> np.ndarray:
    """The training target of each loss (science.md e.1; :data:`serbench.losses.TARGETS`)."""
    if TARGETS.get(loss) == "hard":
        return data.hard(rng)  # consensus class; tied AR clips get a random top class
    if TARGETS.get(loss) == "multi_hot":
        return data.multi_hot().astype(np.float32)
    return data.smoothed(spec.smoothing).astype(np.float32)  # kl, cb_soft_ce, bce_smooth


class Objective:
    """What a training run optimises: per-clip targets and a loss on a batch of them."""

    def targets(self, data: Data, rng: np.random.Generator) -> Targets:
        """Tensors with one row per clip of ``data`` (indexed by the loop per batch)."""
        raise NotImplementedError

    def loss(self, output: torch.Tensor, batch: Targets) -> torch.Tensor:
        raise NotImplementedError


class SingleHead(Objective):
    """One of the base losses on one output, optionally with the co-occurrence penalty.

    The class-balanced weights come from the training targets and the penalty
    matrix from the training split's ratings, both computed here once.
    """

    def __init__(self, loss: str, train: Data, spec: FitSpec,
                 penalty: PenaltyConfig | None = None) -> None:
        self.name = loss
        self.spec = spec
        self.device = torch.device(spec.device)
        self.weights = None
        if loss in CLASS_BALANCED:
            self.weights = torch.as_tensor(class_balanced_weights(train.smoothed(spec.smoothing)),
                                           dtype=torch.float32, device=self.device)
        self.penalty_cfg = penalty if penalty is not None and penalty.alpha > 0 else None
        self.penalty = None
        if self.penalty_cfg is not None:
            ratings = train.split_ratings if train.split_ratings is not None else train.ratings
            self.penalty = torch.as_tensor(
                training_penalty(ratings, spec.classes, self.penalty_cfg),  # type: ignore[arg-type]
                dtype=torch.float32, device=self.device)

    def targets(self, data: Data, rng: np.random.Generator) -> Targets:
        return {"y": torch.as_tensor(targets_for(self.name, data, self.spec, rng))}

    def loss(self, output: torch.Tensor, batch: Targets) -> torch.Tensor:
        return penalized_loss(self.name, output.float(), batch["y"], self.penalty,
                              self.penalty_cfg, self.weights)


class RaterObjective(Objective):
    """Targets of rater-aware models: consensus class (-1 when tied), smoothed distribution,
    and the kept raters' answers [N, M] (-1 where a rater did not rate the clip)."""

    def __init__(self, spec: FitSpec, raters: tuple[str, ...]) -> None:
        self.spec = spec
        self.raters = raters

    def targets(self, data: Data, rng: np.random.Generator) -> Targets:
        answers = rater_answers(data.ids, data.ratings, self.spec.classes, self.raters)
        return {"hard": torch.as_tensor(data.labels, dtype=torch.long),
                "soft": torch.as_tensor(data.smoothed(self.spec.smoothing), dtype=torch.float32),
                "raters": torch.as_tensor(answers.answers)}


def _autocast(spec: FitSpec):
    if spec.amp_dtype and spec.device.startswith("cuda"):
        return torch.autocast("cuda", dtype=getattr(torch, spec.amp_dtype))
    return torch.autocast("cpu", enabled=False)


def _rows(targets: Targets, idx: np.ndarray, device: torch.device) -> Targets:
    index = torch.as_tensor(idx)
    return {name: t[index].to(device) for name, t in targets.items()}


def fit(model: torch.nn.Module, collate: Collate, train: Data, dev: Data, spec: FitSpec,
        cfg: TrainConfig, objective: Objective | None = None) -> dict[str, float]:
    """Train ``model`` in place; returns the best dev loss and the epoch it was reached.

    ``objective`` defaults to :class:`SingleHead` with ``cfg.loss`` and ``cfg.penalty``.
    """
    device = torch.device(spec.device)
    model.to(device)
    objective = objective or SingleHead(cfg.loss, train, spec, cfg.penalty)
    rng = np.random.default_rng(spec.seed)
    y_train = objective.targets(train, rng)
    y_dev = objective.targets(dev, np.random.default_rng(spec.seed + 1))
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scaler = torch.amp.GradScaler("cuda", enabled=spec.amp_dtype == "float16")
    best, best_state, best_epoch, waited = float("inf"), None, 0, 0
    n = len(train)
    for epoch in range(1, cfg.max_epochs + 1):
        model.train()
        order = rng.permutation(n)
        for start in range(0, n, cfg.batch_size):
            idx = order[start:start + cfg.batch_size]
            if len(idx) < 2:  # BatchNorm needs two samples; drop a last singleton
                continue
            x, lengths = collate(train.ids[idx])
            with _autocast(spec):
                output = model(x.to(device), lengths.to(device))
                loss = objective.loss(output, _rows(y_train, idx, device))
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        dev_loss = evaluate_loss(model, collate, dev, y_dev, objective, spec)
        if dev_loss < best - 1e-6:
            best, best_epoch, waited = dev_loss, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            waited += 1
        spec.progress(epoch, cfg.max_epochs, f"dev loss {dev_loss:.4f} (best {best:.4f})")
        if waited >= cfg.patience:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    return {"best_dev_loss": best, "best_epoch": best_epoch}


@torch.no_grad()
def evaluate_loss(model: torch.nn.Module, collate: Collate, data: Data, y: Targets,
                  objective: Objective, spec: FitSpec) -> float:
    if len(data) == 0:
        return float("nan")
    model.eval()
    device = torch.device(spec.device)
    total, count = 0.0, 0
    for start in range(0, len(data), 64):
        idx = np.arange(start, min(start + 64, len(data)))
        x, lengths = collate(data.ids[idx])
        with _autocast(spec):
            output = model(x.to(device), lengths.to(device))
        total += float(objective.loss(output, _rows(y, idx, device))) * len(idx)
        count += len(idx)
    return total / count


@torch.no_grad()
def outputs(model: torch.nn.Module, collate: Collate, data: Data, spec: FitSpec,
            batch_size: int = 64) -> torch.Tensor:
    """The model's raw output for every clip of ``data`` (eval mode, on the CPU, float32)."""
    model.eval()
    device = torch.device(spec.device)
    parts = []
    for start in range(0, len(data), batch_size):
        x, lengths = collate(data.ids[start:start + batch_size])
        with _autocast(spec):
            parts.append(model(x.to(device), lengths.to(device)).float().cpu())
    return torch.cat(parts)


def predict(model: torch.nn.Module, collate: Collate, data: Data, loss: str, spec: FitSpec
            ) -> np.ndarray:
    logits = outputs(model, collate, data, spec)
    return probabilities(loss, logits).numpy().astype(np.float64)


def pad(arrays: list[np.ndarray], time_axis: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack variable-length arrays along a new batch axis, zero-padding the time axis."""
    lengths = torch.tensor([a.shape[time_axis] for a in arrays])
    longest = int(lengths.max())
    shape = list(arrays[0].shape)
    shape[time_axis] = longest
    out = np.zeros([len(arrays), *shape], dtype=np.float32)
    for i, a in enumerate(arrays):
        sl = [slice(None)] * a.ndim
        sl[time_axis] = slice(0, a.shape[time_axis])
        out[(i, *sl)] = a
    return torch.from_numpy(out), lengths


def masked_mean(x: torch.Tensor, lengths: torch.Tensor, time_dim: int = 1) -> torch.Tensor:
    """Mean over the valid frames only (padding excluded)."""
    t = x.shape[time_dim]
    mask = (torch.arange(t, device=x.device)[None, :] < lengths[:, None]).to(x.dtype)
    shape = [mask.shape[0]] + [1] * (x.dim() - 1)
    shape[time_dim] = t
    mask = mask.view(shape)
    denom = lengths.clamp_min(1).view(-1, *[1] * (x.dim() - 2)).to(x.dtype)
    return (x * mask).sum(time_dim) / denom
