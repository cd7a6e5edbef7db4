"""Co-occurrence and penalty matrices of the co-occurrence penalty loss.

docs/methods.md#b.2 (a parameterised family covering the plausible readings of the
paper; the paper's exact choice is unknown).  Always build them from the
*training* split's ratings only: test ratings must not leak into training.

Counting modes over the K in-set classes, for utterance ``i`` and rater ``r``
with answer bits ``a_ir`` (1 for each class the rater chose):

* ``across_rater``: ordered pairs of *different* raters on the same utterance,
  ``C = sum_i (n_i n_i^T - sum_r a_ir a_ir^T)`` with ``n_i = sum_r a_ir``;
* ``within_rater``: classes chosen together by one rater,
  ``C = sum_i sum_r a_ir a_ir^T`` (only informative for multi-choice answers);
* ``both``: their sum;
* ``processed_multihot``: ``C = sum_i b_i b_i^T`` with ``b_i = [y_i > 1/K]``.

Diagonals are counted too; the penalty forces its own diagonal to zero.

Normalisations (``norm``): ``global_max`` and ``row`` (docs/methods.md#b.2) mostly
encode how frequent each class is: two frequent classes co-occur often by
chance.  ``lift`` and ``pmi`` correct for that by comparing each pair's count
with what the marginals alone predict, ``C_jz T / (m_j m_z)`` with
``m_j = sum_z C_jz`` and ``T = sum_jz C_jz`` (Church & Hanks, 1990, "Word
association norms, mutual information, and lexicography"); ``pmi`` uses the
normalised PMI of Bouma (2009, "Normalized (pointwise) mutual information in
collocation extraction"), which lies in [-1, 1] (-1: never together, 0:
independent, 1: only together), mapped to ``P = (1 - npmi) / 2``.

:func:`off_diagonal_mass` tells whether a matrix holds any pair of
*different* classes at all: with one label per clip (EmoDB) or one vote per
clip, it holds none, and every penalty is then a uniform extra term.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from ..errors import InputError
from ..ratings import PRIMARY
from ..rules import distribution
from ..targets import multi_hot

if TYPE_CHECKING:
    from ..tasks.task import Task

Mode = Literal["across_rater", "within_rater", "both", "processed_multihot"]
Norm = Literal["global_max", "row", "lift", "pmi"]
NORMS = ("global_max", "row", "lift", "pmi")
MODES = ("across_rater", "within_rater", "both", "processed_multihot")


def cooccurrence_from_answers(answers: np.ndarray, utterance: np.ndarray, mode: Mode) -> np.ndarray:
    """Co-occurrence counts from per-(utterance, rater) answer bits.

    ``answers`` is [M, K] (one row per rater's answer to one utterance, 0/1 per
    class) and ``utterance`` [M] gives the utterance index of each row.
    """
    answers = np.asarray(answers, dtype=np.int64)
    utterance = np.asarray(utterance)
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    _, inverse = np.unique(utterance, return_inverse=True)
    n = np.zeros((inverse.max() + 1 if len(inverse) else 0, answers.shape[1]), dtype=np.int64)
    np.add.at(n, inverse, answers)
    within = answers.T @ answers
    if mode == "processed_multihot":
        b = multi_hot(distribution(n)).astype(np.int64)
        return b.T @ b
    across = n.T @ n - within
    if mode == "across_rater":
        return across
    if mode == "within_rater":
        return within
    return across + within


def cooccurrence(
    ratings: pd.DataFrame,
    classes: Sequence[str],
    *,
    mode: Mode = "across_rater",
    question: str = PRIMARY,
    utterance_ids: Sequence[str] | None = None,
) -> np.ndarray:
    """Co-occurrence counts [K, K] from a ratings table (restricted to ``utterance_ids``).

    Rows with a null rater id are single votes from unknown raters: on a
    primary (single-choice) question each one is its own rater, so every mode
    is still defined; on a secondary question the within-rater structure is
    lost, and the modes that need it are refused.
    """
    classes = list(classes)
    part = ratings[(ratings["question"] == question) & ratings["mapped_class"].isin(classes)]
    if utterance_ids is not None:
        part = part[part["utterance_id"].isin(list(utterance_ids))]
    if len(part) == 0:
        return np.zeros((len(classes), len(classes)), dtype=np.int64)
    anonymous = part["rater_id"].isna().to_numpy()
    if anonymous.any() and question != PRIMARY and mode != "processed_multihot":
        raise InputError(
            f"co-occurrence mode {mode!r} on {question} answers needs rater ids, "
            "but this source has vote counts only",
            file=str(part["source"].iloc[0]),
            fix="prepare the task from a source with per-rater answers, or use "
            "mode='processed_multihot'",
        )
    rater = part["rater_id"].astype(object).to_numpy().copy()
    rater[anonymous] = [f"<anonymous vote {i}>" for i in range(int(anonymous.sum()))]
    key = pd.MultiIndex.from_arrays([part["utterance_id"].astype(str).to_numpy(), rater])
    codes, uniques = pd.factorize(key)
    cls = pd.Categorical(part["mapped_class"].astype(str), categories=classes).codes
    answers = np.zeros((len(uniques), len(classes)), dtype=np.int64)
    np.add.at(answers, (codes, cls), 1)
    answers = np.minimum(answers, 1)
    utt = np.asarray(uniques.get_level_values(0))
    return cooccurrence_from_answers(answers, utt, mode)


def off_diagonal_mass(c: np.ndarray) -> float:
    """Total count of pairs of different classes (0: the matrix says nothing about pairs)."""
    c = np.asarray(c, dtype=np.float64)
    return float(c.sum() - np.trace(c))


def lift(c: np.ndarray) -> np.ndarray:
    """``C_jz T / (m_j m_z)`` (0 where a class never occurs); 1 means "as often as chance"."""
    c = np.asarray(c, dtype=np.float64)
    m = c.sum(axis=1)
    expected = np.outer(m, m) / c.sum() if c.sum() > 0 else np.zeros_like(c)
    return np.divide(c, expected, out=np.zeros_like(c), where=expected > 0)


def npmi(c: np.ndarray) -> np.ndarray:
    """Normalised PMI ``log(p_jz / (p_j p_z)) / -log p_jz`` in [-1, 1]; -1 where ``C_jz = 0``.

    ``p_jz = C_jz / T`` and ``p_j = m_j / T``.  A pair that is the whole matrix
    (``p_jz = 1``) gets 1.
    """
    c = np.asarray(c, dtype=np.float64)
    total = c.sum()
    out = np.full(c.shape, -1.0)
    if total <= 0:
        return out
    p = c / total
    pj = p.sum(axis=1)
    seen = p > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        pmi = np.log(p) - np.log(np.outer(pj, pj))
        h = -np.log(p)
        ratio = np.where(h > 0, pmi / np.where(h > 0, h, 1.0), 1.0)
    out[seen] = ratio[seen]
    return np.clip(out, -1.0, 1.0)


def penalty_matrix(c: np.ndarray, norm: Norm = "global_max") -> np.ndarray:
    """``P = 1 - normalised C`` with a zero diagonal.

    ``global_max`` divides by the largest off-diagonal count; ``row`` divides
    each row by its sum (diagonal included); ``lift`` divides the lift by its
    largest off-diagonal value; ``pmi`` maps the normalised PMI to
    ``(1 - npmi) / 2``.  Pairs that never co-occur get the full penalty 1; the
    most frequent (``global_max``) or most associated (``lift``) pair gets 0.
    """
    c = np.asarray(c, dtype=np.float64)
    k = c.shape[0]
    if c.shape != (k, k):
        raise ValueError(f"co-occurrence must be square, got {c.shape}")
    off = ~np.eye(k, dtype=bool)
    if norm == "global_max":
        top = c[off].max() if k > 1 else 0.0
        chat = c / top if top > 0 else np.zeros_like(c)
    elif norm == "row":
        rows = c.sum(axis=1, keepdims=True)
        chat = np.divide(c, rows, out=np.zeros_like(c), where=rows > 0)
    elif norm == "lift":
        lf = lift(c)
        top = lf[off].max() if k > 1 else 0.0
        chat = lf / top if top > 0 else np.zeros_like(c)
    elif norm == "pmi":
        chat = (1.0 + npmi(c)) / 2.0
    else:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    p = 1.0 - chat
    p[~off] = 0.0
    return p


def fold_cooccurrence(task: Task, fold: int, *, mode: str = "across_rater") -> np.ndarray:
    """Co-occurrence counts from the ratings of fold ``fold``'s training clips only.

    Training clips are those of the AR training split (every rated clip), so
    the matrix never sees a dev or test rating (docs/methods.md#b.2).
    """
    train = task.split(fold, "train", "AR").ids
    return cooccurrence(task.ratings, task.spec.classes, mode=mode,  # type: ignore[arg-type]
                        question=task.spec.question, utterance_ids=list(train))


def fold_penalty_matrix(task: Task, fold: int, *, mode: str = "across_rater",
                        norm: str = "global_max") -> np.ndarray:
    """Penalty matrix of the co-occurrence penalty loss for one fold (training ratings)."""
    return penalty_matrix(fold_cooccurrence(task, fold, mode=mode), norm)  # type: ignore[arg-type]
