"""Crowd layers (Rodrigues & Pereira, AAAI-18) and their masked multi-annotator loss.

docs/methods.md#c.3, read from the reference code (fmpr/CrowdLayer,
``crowd_layer/crowd_layers.py``); reimplemented in torch, no code copied.
The base network's softmax output ``sigma`` [B, K] goes through one small
per-annotator map; each map's output is treated as that annotator's logits:

=======  =====================================  ==================
kind     annotator r's output                   initialisation
=======  =====================================  ==================
``MW``   ``sigma @ W_r`` (W_r is K x K)          identity
``VW``   ``sigma * w_r``                         ones
``VB``   ``sigma + b_r``                         zeros
``VW+B`` ``sigma * w_r + b_r``                   ones, zeros
``SW``   ``s_r * sigma`` (a scalar)              one
=======  =====================================  ==================

The loss is the softmax cross-entropy of each annotator's logits against that
annotator's answer, over the answers that exist (missing ones are -1 and
masked), summed over annotators and averaged over the batch as in the
reference ``MaskedMultiCrossEntropy`` (which sums over the batch; the mean
only rescales the learning rate).  At test time the crowd layer is removed
and ``sigma`` is the prediction.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

KINDS = ("MW", "VW", "VB", "VW+B", "SW")


class CrowdLayer(nn.Module):
    """Per-annotator maps of the base network's class probabilities."""

    def __init__(self, k: int, n_annotators: int, kind: str = "MW") -> None:
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"crowd layer kind must be one of {KINDS}, got {kind!r}")
        if n_annotators < 1:
            raise ValueError("a crowd layer needs at least one annotator")
        self.kind, self.k, self.m = kind, k, n_annotators
        if kind == "MW":
            self.weight = nn.Parameter(torch.eye(k).repeat(n_annotators, 1, 1))  # [M, K, K]
        elif kind in ("VW", "VW+B"):
            self.weight = nn.Parameter(torch.ones(n_annotators, k))
        elif kind == "SW":
            self.weight = nn.Parameter(torch.ones(n_annotators, 1))
        if kind in ("VB", "VW+B"):
            self.bias = nn.Parameter(torch.zeros(n_annotators, k))

    def forward(self, probs: torch.Tensor) -> torch.Tensor:
        """``probs`` [B, K] -> annotator logits [B, M, K]."""
        if self.kind == "MW":
            return torch.einsum("bk,mkj->bmj", probs, self.weight)
        x = probs[:, None, :]  # [B, 1, K]
        if self.kind in ("VW", "VW+B", "SW"):
            x = x * self.weight[None]
        if self.kind in ("VB", "VW+B"):
            x = x + self.bias[None]
        return x.expand(-1, self.m, -1) if self.kind == "VB" else x


def masked_crowd_loss(crowd_logits: torch.Tensor, answers: torch.Tensor,
                      reduction: str = "sum") -> torch.Tensor:
    """CE(answer, softmax(logits)) over the given answers.

    ``crowd_logits`` [B, M, K]; ``answers`` [B, M] class indices, -1 where missing.
    ``reduction="sum"``: summed over annotators, averaged over the batch (the
    reference); ``"mean"``: averaged over the given answers, so that the term
    weighs like one cross-entropy next to a consensus loss.
    """
    b, m, k = crowd_logits.shape
    answers = answers.long()
    observed = answers >= 0
    ce = F.cross_entropy(crowd_logits.reshape(b * m, k), answers.clamp_min(0).reshape(b * m),
                         reduction="none").reshape(b, m)
    total = (ce * observed).sum()
    if reduction == "sum":
        return total / b
    if reduction == "mean":
        return total / observed.sum().clamp_min(1)
    raise ValueError(f"reduction must be 'sum' or 'mean', got {reduction!r}")
