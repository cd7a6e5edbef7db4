"""The co-occurrence penalty loss (docs/methods.md#b.2), in torch, usable by any submission.

The paper's exact equation is not public (docs/methods.md#b.3), so this is the parameterised
family docs/methods.md#b.2 describes, every reading behind a flag:

* the penalty matrix ``P`` comes from :mod:`serbench.methods.cooccurrence`, built from
  the *training* ratings only (:func:`training_penalty`);
* ``form="pairwise"`` (default): ``L_P = mean_i sum_jz P_jz t_ij yhat_iz``, the
  expected penalty of the predicted mass ``yhat`` given the target classes
  ``t``: mass on a class that rarely co-occurs with a target class costs more;
* ``form="kl_literal"``: ``L_P = mean_i sum_j (sum_z P_jz) t_ij log(t_ij / yhat_ij)``,
  the KLD form as transcribed from the dissertation (``z`` appears only in P);
* ``combine="convex"``: ``(1 - alpha) L_base + alpha L_P``; ``"additive"``:
  ``L_base + alpha L_P``; default alpha 0.2 (the value the IS-2023 paper used);
* ``yhat`` is ``sigmoid(z)`` for the BCE base loss, ``softmax(z)`` otherwise; the
  target ``t`` is the base loss's own target (one-hot of the class for CE,
  multi-hot for BCE, the smoothed distribution for KL and CB soft CE);
* scale (serbench's choice): torch's BCE averages over the K outputs while the
  penalty sums over them, so with the BCE base the penalty is divided by K to
  put both on the per-output scale.  Without this, alpha 0.2 makes the
  penalty about K times heavier than intended and the demo's BCE model
  collapsed to a constant prediction (macro-F1 0.329 -> 0.150, measured).

With ``alpha = 0`` every combination is exactly the base loss.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError, SerbenchWarning
from ..ratings import PRIMARY, SECONDARY
from .cooccurrence import MODES, NORMS, cooccurrence, off_diagonal_mass, penalty_matrix
from .losses import SIGMOID, loss_fn

Form = Literal["pairwise", "kl_literal"]
Combine = Literal["convex", "additive"]
FORMS = ("pairwise", "kl_literal")
COMBINES = ("convex", "additive")


@dataclass(frozen=True)
class PenaltyConfig:
    """Every switch of the penalty loss; ``alpha = 0`` turns it off."""

    alpha: float = 0.2
    form: Form = "pairwise"
    combine: Combine = "convex"
    mode: str = "across_rater"
    norm: str = "global_max"

    def __post_init__(self) -> None:
        if self.form not in FORMS:
            raise ValueError(f"penalty form must be one of {FORMS}, got {self.form!r}")
        if self.combine not in COMBINES:
            raise ValueError(f"penalty combine must be one of {COMBINES}, got {self.combine!r}")
        if self.mode not in MODES:
            raise ValueError(f"co-occurrence mode must be one of {MODES}, got {self.mode!r}")
        if self.norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {self.norm!r}")
        if not (self.alpha >= 0 and np.isfinite(self.alpha)):
            raise ValueError(f"penalty alpha must be a finite number >= 0, got {self.alpha!r}")
        if self.combine == "convex" and self.alpha > 1:
            raise ValueError("a convex combination needs alpha in [0, 1]; use combine='additive'")


class EmptyCooccurrence(SerbenchWarning):
    """The training ratings never put two different classes on one clip."""


def training_penalty(ratings: pd.DataFrame, classes: Sequence[str], cfg: PenaltyConfig
                     ) -> np.ndarray:
    """``P`` [K, K] from the ratings of training clips (pass nothing else).

    ``across_rater`` and ``processed_multihot`` count the primary answers;
    ``within_rater`` counts the secondary (multi-choice) answers, the only ones
    where one rater can pick two classes; ``both`` adds the two.
    """
    if ratings is None or len(ratings) == 0:
        raise InputError("the penalty loss needs the training clips' ratings, and there are none",
                         fix="run it through the serbench runner, which passes them")
    has_secondary = bool((ratings["question"] == SECONDARY).any())
    if cfg.mode in ("within_rater", "both") and not has_secondary:
        raise InputError(
            f"co-occurrence mode {cfg.mode!r} counts classes one rater chose together, "
            "but this task has no multi-choice (secondary) answers",
            fix="use mode='across_rater' or 'processed_multihot'")
    if cfg.mode == "within_rater":
        c = cooccurrence(ratings, classes, mode="within_rater", question=SECONDARY)
    elif cfg.mode == "both":
        c = cooccurrence(ratings, classes, mode="across_rater", question=PRIMARY) \
            + cooccurrence(ratings, classes, mode="within_rater", question=SECONDARY)
    else:
        c = cooccurrence(ratings, classes, mode=cfg.mode, question=PRIMARY)  # type: ignore
    if off_diagonal_mass(c) == 0:
        warnings.warn(EmptyCooccurrence(
            f"the training co-occurrence matrix (mode {cfg.mode!r}) has no pair of different "
            "classes (single-label data, or one vote per clip): the penalty is 1 between every "
            "pair of classes, a uniform extra term, not a co-occurrence penalty"), stacklevel=2)
    return penalty_matrix(c, cfg.norm)  # type: ignore[arg-type]


def _log_probs(logits: torch.Tensor, activation: str) -> torch.Tensor:
    if activation == "sigmoid":
        return F.logsigmoid(logits)
    if activation == "softmax":
        return F.log_softmax(logits, dim=-1)
    raise ValueError(f"activation must be 'softmax' or 'sigmoid', got {activation!r}")


def penalty_term(logits: torch.Tensor, targets: torch.Tensor, penalty: torch.Tensor, *,
                 activation: str = "softmax", form: Form = "pairwise") -> torch.Tensor:
    """The penalty ``L_P`` (batch mean) for logits [B, K], targets [B, K], P [K, K]."""
    logp = _log_probs(logits, activation)
    t = targets.to(logp.dtype)
    p = penalty.to(logp.dtype)
    if form == "pairwise":
        return ((t @ p) * logp.exp()).sum(-1).mean()
    if form == "kl_literal":
        # t log t - t log yhat, with 0 log 0 = 0
        kl = torch.xlogy(t, t) - t * logp
        return (kl * p.sum(1)).sum(-1).mean()
    raise ValueError(f"penalty form must be one of {FORMS}, got {form!r}")


def penalty_targets(loss: str, targets: torch.Tensor, k: int) -> torch.Tensor:
    """The base loss's target as a [B, K] matrix (one-hot for CE's class indices)."""
    return F.one_hot(targets.long(), k) if loss == "ce" else targets


def penalized_loss(loss: str, logits: torch.Tensor, targets: torch.Tensor,
                   penalty: torch.Tensor | None, cfg: PenaltyConfig | None,
                   class_weights: torch.Tensor | None = None) -> torch.Tensor:
    """Base loss (:func:`serbench.methods.losses.loss_fn`) combined with the penalty by ``cfg``."""
    base = loss_fn(loss, logits, targets, class_weights)
    if cfg is None or penalty is None or cfg.alpha == 0:
        return base
    t = penalty_targets(loss, targets, logits.shape[-1]).to(logits.dtype)
    sigmoid = loss in SIGMOID
    term = penalty_term(logits, t, penalty, activation="sigmoid" if sigmoid else "softmax",
                        form=cfg.form)
    if sigmoid:  # BCE is a mean over the K outputs; so is its penalty
        term = term / logits.shape[-1]
    if cfg.combine == "convex":
        return (1 - cfg.alpha) * base + cfg.alpha * term
    return base + cfg.alpha * term


class CooccurrencePenaltyLoss(nn.Module):
    """``nn.Module`` form: ``CooccurrencePenaltyLoss("kl", P, PenaltyConfig(alpha=0.2))(z, t)``."""

    def __init__(self, loss: str, penalty: np.ndarray | torch.Tensor, cfg: PenaltyConfig,
                 class_weights: np.ndarray | torch.Tensor | None = None) -> None:
        super().__init__()
        self.loss = loss
        self.cfg = cfg
        self.register_buffer("penalty", torch.as_tensor(np.asarray(penalty), dtype=torch.float32))
        self.register_buffer("class_weights", None if class_weights is None else
                             torch.as_tensor(np.asarray(class_weights), dtype=torch.float32))

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        penalty: torch.Tensor = self.penalty  # type: ignore[assignment]
        cw: torch.Tensor | None = self.class_weights  # type: ignore[assignment]
        weights = None if cw is None else cw.to(logits.dtype)
        return penalized_loss(self.loss, logits, targets, penalty.to(logits.dtype), self.cfg,
                              weights)
