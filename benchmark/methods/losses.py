"""Training losses of science.md e.1 (torch): CE, BCE, KL and class-balanced soft CE.

All take logits [B, K]; targets follow the loss:

* ``ce``: class indices [B] (the consensus label), ``F.cross_entropy``;
* ``bce``: multi-hot bits [B, K] (share > 1/K), ``F.binary_cross_entropy_with_logits``;
* ``kl``: distributions [B, K], ``KL(t || softmax(z))`` with ``batchmean``;
* ``cb_soft_ce``: smoothed distributions [B, K] with class weights ``w`` [K]:
  ``mean_i -omega_i sum_k t_ik log softmax(z_i)_k``, ``omega_i = sum_k w_k t_ik``
  (the released recipe; weights from :func:`serbench.targets.class_balanced_weights`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

LOSSES = ("ce", "bce", "kl", "cb_soft_ce")


def soft_ce(logits: torch.Tensor, targets: torch.Tensor, class_weights: torch.Tensor | None = None
            ) -> torch.Tensor:
    logp = F.log_softmax(logits, dim=-1)
    per = -(targets * logp).sum(-1)
    if class_weights is not None:
        per = per * (targets @ class_weights)
    return per.mean()


def masked_ce(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean CE over the entries with a label (``labels >= 0``); 0 (with a graph) when none has.

    ``logits`` [..., K] and ``labels`` [...]: consensus classes with ties marked -1, or a
    [B, M] matrix of rater answers with -1 where a rater did not rate the clip.
    """
    keep = labels >= 0
    if not keep.any():
        return logits.sum() * 0
    return F.cross_entropy(logits[keep], labels[keep])


def loss_fn(name: str, logits: torch.Tensor, targets: torch.Tensor,
            class_weights: torch.Tensor | None = None) -> torch.Tensor:
    if name == "ce":
        return F.cross_entropy(logits, targets.long())
    if name == "bce":
        return F.binary_cross_entropy_with_logits(logits, targets.to(logits.dtype))
    if name == "kl":
        return F.kl_div(F.log_softmax(logits, dim=-1), targets, reduction="batchmean")
    if name == "cb_soft_ce":
        return soft_ce(logits, targets, class_weights)
    raise ValueError(f"unknown loss {name!r}; expected one of {LOSSES}")


def probabilities(name: str, logits: torch.Tensor) -> torch.Tensor:
    """Class probabilities from logits: softmax, or normalised sigmoids for BCE models."""
    if name == "bce":
        s = torch.sigmoid(logits)
        return s / s.sum(-1, keepdim=True).clamp_min(1e-12)
    return torch.softmax(logits, dim=-1)
