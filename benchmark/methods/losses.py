"""Training losses of docs/methods.md#e.1 (torch): CE, BCE, KL, class-balanced soft CE and BCE.

All take logits [B, K]; targets follow the loss:

* ``ce``: class indices [B] (the consensus label), ``F.cross_entropy``;
* ``bce``: multi-hot bits [B, K] (share > 1/K), ``F.binary_cross_entropy_with_logits``;
* ``kl``: distributions [B, K], ``KL(t || softmax(z))`` with ``batchmean``;
* ``cb_soft_ce``: smoothed distributions [B, K] with class weights ``w`` [K]:
  ``mean_i -omega_i sum_k t_ik log softmax(z_i)_k``, ``omega_i = sum_k w_k t_ik``
  (the released recipe; weights from :func:`serbench.targets.class_balanced_weights`);
* ``bce_smooth``: BCE on the label-smoothed target itself, not its 1/K bits (the released
  recipe's ``multi-label`` loss, ``BCEWithLogits(z, t)`` on the smoothed ``t``);
* ``cb_bce``: class-balanced BCE, ``mean_ij w_j BCE(z_ij, b_ij)`` on the multi-hot bits with
  the per-emotion factor ``w_j`` of the class-balanced loss (Cui et al., 2019, "Class-Balanced
  Loss Based on Effective Number of Samples"); with the co-occurrence penalty it is the
  IS-2023 "L_P + CBL" (Chou et al., Interspeech 2023, "The Importance of Calibration:
  Rethinking Confidence and Performance of Speech Multi-label Emotion Classifiers").

:data:`TARGETS` says which target each loss trains on, :data:`SIGMOID` which losses score
each class with its own sigmoid (the penalty then uses sigmoid outputs, and the
probabilities are normalised sigmoids), :data:`CLASS_BALANCED` which take class weights.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

LOSSES = ("ce", "bce", "kl", "cb_soft_ce", "bce_smooth", "cb_bce")
#: The training target of each loss: consensus class, 1/K multi-hot bits, or the smoothed vector.
TARGETS: dict[str, str] = {"ce": "hard", "bce": "multi_hot", "cb_bce": "multi_hot",
                           "kl": "smoothed", "cb_soft_ce": "smoothed", "bce_smooth": "smoothed"}
SIGMOID = ("bce", "bce_smooth", "cb_bce")
CLASS_BALANCED = ("cb_soft_ce", "cb_bce")


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


def weighted_bce(logits: torch.Tensor, targets: torch.Tensor,
                 class_weights: torch.Tensor | None = None) -> torch.Tensor:
    """``mean_ij w_j BCE(z_ij, t_ij)``; without weights, torch's BCE-with-logits mean."""
    per = F.binary_cross_entropy_with_logits(logits, targets.to(logits.dtype), reduction="none")
    if class_weights is not None:
        per = per * class_weights.to(per.dtype)
    return per.mean()


def loss_fn(name: str, logits: torch.Tensor, targets: torch.Tensor,
            class_weights: torch.Tensor | None = None) -> torch.Tensor:
    if name == "ce":
        return F.cross_entropy(logits, targets.long())
    if name in ("bce", "bce_smooth"):
        return F.binary_cross_entropy_with_logits(logits, targets.to(logits.dtype))
    if name == "cb_bce":
        return weighted_bce(logits, targets, class_weights)
    if name == "kl":
        return F.kl_div(F.log_softmax(logits, dim=-1), targets, reduction="batchmean")
    if name == "cb_soft_ce":
        return soft_ce(logits, targets, class_weights)
    raise ValueError(f"unknown loss {name!r}; expected one of {LOSSES}")


def probabilities(name: str, logits: torch.Tensor) -> torch.Tensor:
    """Class probabilities from logits: softmax, or normalised sigmoids for BCE models."""
    if name in SIGMOID:
        s = torch.sigmoid(logits)
        return s / s.sum(-1, keepdim=True).clamp_min(1e-12)
    return torch.softmax(logits, dim=-1)
