"""Aggregation rules MR, PR and AR as pure, vectorised functions of vote counts.

Definitions follow docs/methods.md#a.2 (reconstructed from the released label files
and checked against all 11 released IEMOCAP / MSP-IMPROV partitions):

* **PR** (plurality): keep an utterance iff its top vote is unique; target =
  one-hot of that class.
* **MR** (majority): keep iff the top vote is unique *and* holds more than half
  of the votes; target = one-hot.  Which votes form "the votes" is an explicit
  choice: ``"all_votes"`` (in-set plus out-of-set such as "Other"; the
  reading that reproduces the MSP-IMPROV release) or ``"in_set"``.
* **AR** (all-inclusive): keep every utterance with at least one in-set vote;
  target = the vote distribution over the K classes.
* **DS / DS1** (model-based, :mod:`serbench.aggregation`): keep what AR keeps;
  target = the Dawid-Skene (one-coin) posterior fitted to every vote of the task.

All tests are done on integer counts, so ties and the 0.5 boundary are exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from .vocab import MODEL_RULES, RULES, Rule

__all__ = ["RULES", "Rule", "RuleResult", "all_inclusive", "apply_rule", "distribution",
           "majority", "plurality", "unique_top"]

Denominator = Literal["all_votes", "in_set"]


@dataclass(frozen=True)
class RuleResult:
    """What a rule keeps and the targets it gives.

    ``keep`` is a boolean mask over the input utterances; ``targets`` holds one
    row per *kept* utterance (one-hot for MR/PR, the distribution for AR, the
    posterior for DS/DS1, whose ``labels`` are its argmax);
    ``labels`` is the consensus class per kept utterance (``-1`` where an AR
    utterance has a tied top vote and so no single consensus class).
    """

    rule: str
    keep: np.ndarray
    targets: np.ndarray
    labels: np.ndarray

    @property
    def n_kept(self) -> int:
        return int(self.keep.sum())


def _as_counts(counts: np.ndarray) -> np.ndarray:
    counts = np.asarray(counts)
    if counts.ndim != 2:
        raise ValueError(f"vote counts must be [N, K], got shape {counts.shape}")
    if (counts < 0).any():
        raise ValueError("vote counts must be non-negative")
    return counts


def distribution(counts: np.ndarray) -> np.ndarray:
    """Vote shares over the K in-set classes; all-zero rows stay zero."""
    counts = _as_counts(counts).astype(np.float64)
    total = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, total, out=np.zeros_like(counts), where=total > 0)


def unique_top(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mask of rows whose maximum is unique and positive, argmax per row)."""
    counts = _as_counts(counts)
    top = counts.max(axis=1)
    n_top = (counts == top[:, None]).sum(axis=1)
    return (n_top == 1) & (top > 0), counts.argmax(axis=1)


def _one_hot(labels: np.ndarray, k: int) -> np.ndarray:
    out = np.zeros((len(labels), k))
    out[np.arange(len(labels)), labels] = 1.0
    return out


def plurality(counts: np.ndarray) -> RuleResult:
    """PR: unique top vote."""
    counts = _as_counts(counts)
    keep, arg = unique_top(counts)
    labels = arg[keep]
    return RuleResult("PR", keep, _one_hot(labels, counts.shape[1]), labels)


def majority(
    counts: np.ndarray,
    other: np.ndarray | None = None,
    *,
    denominator: Denominator = "all_votes",
) -> RuleResult:
    """MR: unique top vote holding more than half of the votes.

    ``other`` holds each utterance's out-of-set votes; it only matters with
    ``denominator="all_votes"``.  A source that publishes in-set counts only
    cannot tell the two policies apart (pass ``other=None``).
    """
    counts = _as_counts(counts)
    keep, arg = unique_top(counts)
    total = counts.sum(axis=1)
    if denominator == "all_votes":
        if other is not None:
            other = np.asarray(other)
            if other.shape != total.shape:
                raise ValueError(f"other votes must have shape {total.shape}, got {other.shape}")
            total = total + other
    elif denominator != "in_set":
        raise ValueError(f"denominator must be 'all_votes' or 'in_set', got {denominator!r}")
    keep = keep & (2 * counts.max(axis=1) > total)
    labels = arg[keep]
    return RuleResult("MR", keep, _one_hot(labels, counts.shape[1]), labels)


def all_inclusive(counts: np.ndarray) -> RuleResult:
    """AR: every utterance with at least one in-set vote, target = distribution."""
    counts = _as_counts(counts)
    keep = counts.sum(axis=1) > 0
    uniq, arg = unique_top(counts)
    labels = np.where(uniq, arg, -1)[keep]
    return RuleResult("AR", keep, distribution(counts[keep]), labels)


def apply_rule(
    rule: str,
    counts: np.ndarray,
    other: np.ndarray | None = None,
    *,
    denominator: Denominator = "all_votes",
) -> RuleResult:
    """The clips ``rule`` keeps and their targets, from vote counts [N, K].

    MR keeps a clip whose top class has more than half of its votes, PR one whose
    top class is unique, AR every clip with a vote (targets: the vote shares);
    see docs/methods.md#a.1.  DS and DS1 keep every clip with a vote, with the
    posterior of pooled (one-coin) Dawid-Skene fitted to all the counts as targets
    (:mod:`serbench.aggregation`; a task with rater ids fits one confusion matrix per
    rater instead, through :meth:`serbench.tasks.Task.rule`).

    >>> import numpy as np
    >>> counts = np.array([[3, 1, 0], [2, 2, 0], [2, 1, 1]])
    >>> apply_rule("MR", counts).keep.tolist()
    [True, False, False]
    >>> apply_rule("PR", counts).keep.tolist()
    [True, False, True]
    >>> apply_rule("AR", counts).targets[1].tolist()
    [0.5, 0.5, 0.0]
    """
    if rule == "MR":
        return majority(counts, other, denominator=denominator)
    if rule == "PR":
        return plurality(counts)
    if rule == "AR":
        return all_inclusive(counts)
    if rule in MODEL_RULES:
        from .aggregation import model_rule

        return model_rule(rule, _as_counts(counts))[0]
    raise ValueError(f"unknown rule {rule!r}; expected one of {RULES}")
