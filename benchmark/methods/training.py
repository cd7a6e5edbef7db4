"""A small, deterministic training loop shared by the reference baselines.

Mini-batches of variable-length feature sequences are padded and passed with
their lengths; the loss is one of :mod:`serbench.methods.losses`; the model with the
lowest dev loss is kept (the released recipe selects on dev loss); training
stops after ``patience`` epochs without improvement.  Shuffling uses a seeded
generator, so a CPU run is repeatable bit for bit.

Batching (:func:`batches`): ``random`` (seeded random order, the default) or
``bucketed``: clips of similar length together (lengths jittered by up to
10 % before sorting, so batches differ between epochs), the batch order
shuffled, and optionally at most ``batch_seconds`` of padded length per
batch.  Bucketing pads little, which on a GPU is most of the speed of
fine-tuning on raw audio (Ott et al., 2019, "fairseq", use the same sorted,
batch-shuffled scheme).

On a GPU the next batches are collated, pinned and copied on a background
thread while the current one trains, the targets stay on the device, the dev
loss is summed on the device (one synchronisation per epoch) and the best
state is a device-side copy.  The loss and every softmax over classes run in
float32 outside autocast.  An out-of-memory error fails the cell with a hint.

What is optimised is an :class:`Objective`: per-clip targets plus a batch
loss.  :class:`SingleHead` covers the four base losses with the optional
co-occurrence penalty; multi-head models (rater fusion, crowd layers) bring
their own objective and reuse the same loop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..batching import pack
from ..errors import InputError
from ..submission import Data, FitSpec
from ..targets import class_balanced_weights
from .losses import CLASS_BALANCED, TARGETS, probabilities
from .penalty import PenaltyConfig, penalized_loss, training_penalty
from .raters import rater_answers

Collate = Callable[[np.ndarray], tuple[torch.Tensor, torch.Tensor]]
Targets = dict[str, torch.Tensor]
#: Clip ids -> their lengths (in the unit of ``TrainConfig.batch_seconds``, e.g. seconds).
Lengths = Callable[[np.ndarray], np.ndarray]
BATCHING = ("random", "bucketed")
#: Relative jitter of the lengths before sorting them into buckets.
BUCKET_JITTER = 0.1
#: Batches prepared ahead of the one training (GPU only).
PREFETCH = 2
EVAL_BATCH = 64


@dataclass(frozen=True)
class TrainConfig:
    loss: str = "cb_soft_ce"
    lr: float = 1e-3
    batch_size: int = 32
    max_epochs: int = 30
    patience: int = 5
    weight_decay: float = 0.0
    #: Co-occurrence penalty (docs/methods.md); None or alpha 0 trains the base loss alone.
    penalty: PenaltyConfig | None = None
    #: ``random`` or ``bucketed`` (see :func:`batches`; bucketing needs the clips' lengths).
    batching: str = "random"
    #: Cap on a batch's padded length (its size times its longest clip), or None.
    batch_seconds: float | None = None


def batches(n: int, batch_size: int, rng: np.random.Generator, *, policy: str = "random",
            lengths: np.ndarray | None = None, cap: float | None = None,
            ids: np.ndarray | None = None) -> list[np.ndarray]:
    """One epoch's batches of indices into ``range(n)``.

    ``random``: a seeded permutation cut into ``batch_size`` pieces (one draw
    of ``rng``: the order older serbench versions used, so their results
    regenerate).  ``bucketed``: indices sorted by length (times a random
    factor in 1 +- ``BUCKET_JITTER``), cut into batches of at most
    ``batch_size`` clips and, with ``cap``, at most ``cap`` of padded length,
    then shuffled.  A clip longer than ``cap`` is an error that names it.
    """
    if policy not in BATCHING:
        raise InputError(f"unknown batching {policy!r}", fix=f"use one of {', '.join(BATCHING)}")
    if policy == "random" or lengths is None:
        order = rng.permutation(n)
        return [order[s:s + batch_size] for s in range(0, n, batch_size)]
    lengths = np.asarray(lengths, dtype=float)
    if cap is not None and n and lengths.max() > cap:
        i = int(lengths.argmax())
        name = str(ids[i]) if ids is not None else f"#{i}"
        raise InputError(f"clip {name} is {lengths[i]:.2f} long, more than the batch cap "
                         f"batch_seconds={cap:g}",
                         fix="raise batch_seconds, or cut clips shorter with max_seconds")
    order = np.argsort(lengths * (1 + rng.uniform(-BUCKET_JITTER, BUCKET_JITTER, n)),
                       kind="stable")
    out = pack(order, lengths, max_items=batch_size, cap=cap)
    return [out[k] for k in rng.permutation(len(out))]


def targets_for(loss: str, data: Data, spec: FitSpec, rng: np.random.Generator) -> np.ndarray:
    """The training target of each loss.

    See docs/methods.md#e.1 and :data:`serbench.methods.losses.TARGETS`.
    """
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
                training_penalty(ratings, spec.classes, self.penalty_cfg),
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
        answers = rater_answers(list(data.ids), data.ratings, self.spec.classes, self.raters)
        return {"hard": torch.as_tensor(data.labels, dtype=torch.long),
                "soft": torch.as_tensor(data.smoothed(self.spec.smoothing), dtype=torch.float32),
                "raters": torch.as_tensor(answers.answers)}


def _autocast(spec: FitSpec) -> Any:
    if spec.amp_dtype and spec.device.startswith("cuda"):
        return torch.autocast("cuda", dtype=getattr(torch, spec.amp_dtype))
    return torch.autocast("cpu", enabled=False)


def _float(output: Any) -> Any:
    """The model's output in float32 (tensors inside tuples, lists and dicts too), so the loss
    and every softmax over classes run in float32 whatever the autocast precision."""
    if isinstance(output, torch.Tensor):
        return output.float() if output.is_floating_point() else output
    if isinstance(output, (tuple, list)):
        return type(output)(_float(o) for o in output)
    if isinstance(output, dict):
        return {k: _float(v) for k, v in output.items()}
    return output


def index_on(idx: Any, device: torch.device) -> torch.Tensor:
    """Row indices as an int64 tensor on ``device``, without a host-device synchronisation:
    on a GPU they are copied from pinned memory, asynchronously (a blocking copy would make
    the host wait for every kernel queued so far, once per batch, so the next batch's work
    could not be queued while this one computes).

    >>> index_on(np.array([2, 0]), torch.device("cpu"))
    tensor([2, 0])
    """
    index = torch.as_tensor(np.asarray(idx, dtype=np.int64))
    if device.type == "cuda":
        return index.pin_memory().to(device, non_blocking=True)
    return index


def _rows(targets: Targets, idx: np.ndarray, device: torch.device) -> Targets:
    if not targets:
        return {}
    index = index_on(idx, next(iter(targets.values())).device)
    return {name: t.index_select(0, index).to(device) for name, t in targets.items()}


def _on(targets: Targets, device: torch.device) -> Targets:
    return {name: t.to(device) for name, t in targets.items()}


def _loaded(collate: Collate, ids: np.ndarray, parts: list[np.ndarray], device: torch.device
            ) -> Iterator[tuple[np.ndarray, torch.Tensor, torch.Tensor]]:
    """``(indices, x, lengths)`` of each batch on ``device``.

    On a GPU a background thread collates the next ``PREFETCH`` batches into
    pinned memory and queues their copies while the current batch trains,
    unless the first batch shows that the collate builds its batches on the GPU
    already (pooled features held there); on the CPU batches are collated in
    line (a thread only competes for the cores).
    """
    on_host = []

    def load(idx: np.ndarray) -> tuple[np.ndarray, torch.Tensor, torch.Tensor]:
        x, lengths = collate(ids[idx])
        if device.type == "cuda":
            if x.device.type == "cpu":
                on_host.append(True)
                x = x.pin_memory().to(device, non_blocking=True)
            lengths = lengths.to(device, non_blocking=True)
        return idx, x, lengths

    if device.type != "cuda" or not parts:
        for idx in parts:
            yield load(idx)
        return
    yield load(parts[0])
    if not on_host:  # the collate indexes tensors already on the GPU: a thread would only
        for idx in parts[1:]:  # add a hand-over per batch
            yield load(idx)
        return
    from ..prefetch import ahead

    yield from ahead(parts[1:], load, PREFETCH, "collate")


class OutOfMemory(RuntimeError):
    """The GPU ran out of memory in a cell (the cell fails; the run goes on)."""


def fit(model: torch.nn.Module, collate: Collate, train: Data, dev: Data, spec: FitSpec,
        cfg: TrainConfig, objective: Objective | None = None,
        lengths: Lengths | None = None) -> dict[str, Any]:
    """Train ``model`` in place; returns the best dev loss and the epoch it was reached.

    ``objective`` defaults to :class:`SingleHead` with ``cfg.loss`` and
    ``cfg.penalty``.  ``lengths`` (ids -> lengths) lets ``cfg.batching =
    "bucketed"`` group clips of similar length; without it batches are random.
    A GPU out-of-memory error is raised as :class:`OutOfMemory` with a hint.
    """
    device = torch.device(spec.device)
    oom = None
    try:
        return _fit(model, collate, train, dev, spec, cfg, objective, lengths, device)
    except torch.cuda.OutOfMemoryError as exc:  # handled below, once the frames are released
        oom = str(exc).splitlines()[0] if str(exc) else "CUDA out of memory"
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    raise OutOfMemory(f"the GPU ran out of memory while training ({oom}); use a smaller "
                      f"batch_size (now {cfg.batch_size}), a batch_seconds cap (now "
                      f"{cfg.batch_seconds}) or shorter clips (max_seconds)")


def _fit(model: torch.nn.Module, collate: Collate, train: Data, dev: Data, spec: FitSpec,
         cfg: TrainConfig, objective: Objective | None, lengths: Lengths | None,
         device: torch.device) -> dict[str, Any]:
    model.to(device)
    objective = objective or SingleHead(cfg.loss, train, spec, cfg.penalty)
    rng = np.random.default_rng(spec.seed)
    y_train = _on(objective.targets(train, rng), device)
    y_dev = _on(objective.targets(dev, np.random.default_rng(spec.seed + 1)), device)
    train_len = None if lengths is None or cfg.batching == "random" else lengths(train.ids)
    dev_parts = eval_batches(len(dev), None if lengths is None else lengths(dev.ids),
                             cfg.batch_seconds)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scaler = torch.amp.GradScaler("cuda", enabled=spec.amp_dtype == "float16")
    best, best_state, best_epoch, waited = float("inf"), None, 0, 0
    n = len(train)
    for epoch in range(1, cfg.max_epochs + 1):
        model.train()
        parts = batches(n, cfg.batch_size, rng, policy=cfg.batching, lengths=train_len,
                        cap=cfg.batch_seconds, ids=train.ids)
        parts = [p for p in parts if len(p) >= 2]  # BatchNorm needs two samples
        for idx, x, lens in _loaded(collate, train.ids, parts, device):
            with _autocast(spec):
                output = model(x, lens)
            loss = objective.loss(_float(output), _rows(y_train, idx, device))
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        dev_loss = _dev_loss(model, collate, dev, y_dev, objective, spec, dev_parts)
        if dev_loss < best - 1e-6:
            best, best_epoch, waited = dev_loss, epoch, 0
            # A copy where the weights live (on the GPU: no host round trip).
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            waited += 1
        spec.progress(epoch, cfg.max_epochs, f"dev loss {dev_loss:.4f} (best {best:.4f})")
        if waited >= cfg.patience:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    return {"best_dev_loss": best, "best_epoch": best_epoch, "batching": cfg.batching}


def eval_batches(n: int, lengths: np.ndarray | None, cap: float | None,
                 size: int = EVAL_BATCH) -> list[np.ndarray]:
    """Evaluation batches: in order, or sorted by length (and capped) when lengths are known."""
    if lengths is None:
        return [np.arange(s, min(s + size, n)) for s in range(0, n, size)]
    order = np.argsort(np.asarray(lengths, dtype=float), kind="stable")
    out: list[np.ndarray] = []
    current: list[int] = []
    for i in order:
        longest = float(lengths[i])  # sorted: the newest clip is the longest
        if current and (len(current) >= size
                        or (cap is not None and longest * (len(current) + 1) > 2 * cap)):
            out.append(np.array(current))
            current = []
        current.append(int(i))
    if current:
        out.append(np.array(current))
    return out


@torch.no_grad()
def _dev_loss(model: torch.nn.Module, collate: Collate, data: Data, y: Targets,
              objective: Objective, spec: FitSpec, parts: list[np.ndarray]) -> float:
    """Mean dev loss, summed on the device and read back once."""
    if len(data) == 0:
        return float("nan")
    model.eval()
    device = torch.device(spec.device)
    # float64, batch by batch, as serbench always summed it (records regenerate bit for bit)
    total = torch.zeros((), dtype=torch.float64, device=device)
    for idx, x, lengths in _loaded(collate, data.ids, parts, device):
        with _autocast(spec):
            output = model(x, lengths)
        total += objective.loss(_float(output), _rows(y, idx, device)).double() * len(idx)
    return float(total) / len(data)


@torch.no_grad()
def evaluate_loss(model: torch.nn.Module, collate: Collate, data: Data, y: Targets,
                  objective: Objective, spec: FitSpec) -> float:
    return _dev_loss(model, collate, data, y, objective, spec, eval_batches(len(data), None, None))


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
            out = model(x.to(device), lengths.to(device))
        parts.append(out.float().cpu())
    return torch.cat(parts)


def predict(model: torch.nn.Module, collate: Collate, data: Data, loss: str, spec: FitSpec
            ) -> np.ndarray:
    logits = outputs(model, collate, data, spec)
    return probabilities(loss, logits).numpy().astype(np.float64)


def pad(arrays: list[np.ndarray], time_axis: int = 0, multiple: int = 1
        ) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack variable-length arrays along a new batch axis, zero-padding the time axis.

    ``multiple`` > 1 rounds the padded length up to a multiple of it: a GPU then
    sees a bounded set of shapes, and cuDNN / cuBLAS reuse the kernel plans
    they built for each instead of planning every batch anew.
    """
    lengths = torch.tensor([a.shape[time_axis] for a in arrays])
    longest = -(-int(lengths.max()) // multiple) * multiple
    shape = list(arrays[0].shape)
    shape[time_axis] = longest
    out = np.zeros([len(arrays), *shape], dtype=np.float32)
    for i, a in enumerate(arrays):
        sl: list[Any] = [slice(None)] * a.ndim
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
