"""Per-rater answers for rater-aware models (rater fusion, crowd layers).

Turns the ratings of a set of clips into an answer matrix ``[N clips, M raters]``
holding the class index each kept rater gave on the primary question, and -1
where that rater did not rate the clip (the mask of docs/methods.md#c.2 / docs/methods.md#c.3).
Answers outside the class set (``other``) are -1 too: a rater's "other" says
nothing about which in-set class they heard.

Which raters are kept is decided once, on the training clips (at least
``min_ratings`` in-set answers, most prolific first, at most ``max_raters``),
and the same raters index the dev answers.  Sources with vote counts only
(no rater ids) cannot feed these models; the error names the file that has them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import InputError
from ..ratings import PRIMARY

#: Counts-only source file name -> the file that carries per-rater answers (for the error).
RATER_SOURCES = {
    "tabulatedVotes.csv": "finishedResponses.csv of the CREMA-D repository (prepare crema-d "
                          "from a clone that has it; tabulatedVotes.csv holds counts only)",
    ".csv": "the corpus's own per-rater labels (IEMOCAP dialog/EmoEvaluation/*.txt, "
            "MSP-IMPROV / MSP-Podcast Labels/labels_detailed.csv); released label "
            "distributions carry no rater ids",
}


def _rater_source_hint(source: str) -> str:
    for suffix, hint in RATER_SOURCES.items():
        if source.endswith(suffix):
            return hint
    return "a source file with one row per rater answer"


@dataclass(frozen=True)
class RaterAnswers:
    """Answers of the kept raters on a list of clips."""

    raters: tuple[str, ...]
    answers: np.ndarray  # [N, M] int64, class index or -1
    n_ratings: np.ndarray  # [M] in-set training answers per kept rater

    @property
    def mask(self) -> np.ndarray:
        return self.answers >= 0

    def coverage(self) -> dict[str, float]:
        """How many kept raters rated each clip: the explicit handling of sparse clips."""
        per_clip = self.mask.sum(axis=1)
        return {"clips": len(per_clip), "kept_raters": len(self.raters),
                "clips_without_kept_rater": int((per_clip == 0).sum()),
                "mean_kept_raters_per_clip": float(per_clip.mean()) if len(per_clip) else 0.0}


def _primary(ratings: pd.DataFrame, classes: Sequence[str]) -> pd.DataFrame:
    part = ratings[ratings["question"] == PRIMARY]
    return part[part["mapped_class"].isin(list(classes))]


def has_rater_ids(ratings: pd.DataFrame) -> bool:
    """Whether any primary answer names its rater (a counts-only source names none)."""
    return bool(ratings.loc[ratings["question"] == PRIMARY, "rater_id"].notna().any())


def require_rater_ids(ratings: pd.DataFrame | None) -> None:
    """Refuse counts-only sources, naming the file that has per-rater answers."""
    if ratings is None or len(ratings) == 0:
        raise InputError("rater-aware models need the training clips' ratings, and there are none",
                         fix="run the submission through the serbench runner")
    if not has_rater_ids(ratings):
        part = ratings[ratings["question"] == PRIMARY]
        source = str(part["source"].iloc[0]) if len(part) else "the ratings table"
        where = _rater_source_hint(source)
        raise InputError(
            "this task's ratings are vote counts without rater ids, so per-rater models "
            "(rater fusion, crowd layers) cannot be trained on it", file=source,
            fix=f"prepare the task from {where}")


def select_raters(ratings: pd.DataFrame, classes: Sequence[str], *, min_ratings: int,
                  max_raters: int | None = None) -> tuple[tuple[str, ...], np.ndarray]:
    """Raters with at least ``min_ratings`` in-set primary answers, most prolific first."""
    part = _primary(ratings, classes).dropna(subset=["rater_id"])
    counts = part["rater_id"].astype(str).value_counts()
    counts = counts[counts >= min_ratings]
    # ties broken by rater id so the choice does not depend on row order
    order = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    if max_raters is not None:
        order = order[:max_raters]
    return tuple(r for r, _ in order), np.array([n for _, n in order], dtype=np.int64)


def rater_answers(ids: Sequence[str], ratings: pd.DataFrame, classes: Sequence[str],
                  raters: Sequence[str], n_ratings: np.ndarray | None = None) -> RaterAnswers:
    """Answer matrix of ``raters`` on clips ``ids`` (-1 where not rated or out of set)."""
    ids = [str(u) for u in ids]
    raters = tuple(str(r) for r in raters)
    answers = np.full((len(ids), len(raters)), -1, dtype=np.int64)
    part = _primary(ratings, classes).dropna(subset=["rater_id"])
    row = pd.Index(ids).get_indexer(part["utterance_id"].astype(str))
    col = pd.Index(raters).get_indexer(part["rater_id"].astype(str))
    cls = pd.Categorical(part["mapped_class"].astype(str), categories=list(classes)).codes
    ok = (row >= 0) & (col >= 0)
    answers[row[ok], col[ok]] = cls[ok]
    counts = n_ratings if n_ratings is not None else (answers >= 0).sum(axis=0)
    return RaterAnswers(raters, answers, np.asarray(counts, dtype=np.int64))


def keep_raters(ratings: pd.DataFrame | None, classes: Sequence[str], *, min_ratings: int,
                max_raters: int | None) -> tuple[tuple[str, ...], np.ndarray]:
    """:func:`require_rater_ids`, then :func:`select_raters`; at least one rater must qualify."""
    require_rater_ids(ratings)
    raters, n = select_raters(ratings, classes, min_ratings=min_ratings,
                              max_raters=max_raters)
    if not raters:
        raise ValueError(f"no rater has {min_ratings} training ratings; lower min_ratings")
    return raters, n
