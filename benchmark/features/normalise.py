"""Feature normalisation for the reference baselines: ``global`` or per ``group`` z-scores.

* ``global``: per-dimension mean and standard deviation of the *training*
  clips (frames, for frame-level features), applied unchanged to dev and test
  clips.  No statistic ever sees a dev or test feature.
* ``group``: every speaker (or session) is z-normalised with the mean and
  standard deviation of its *own* clips' features, labels unseen.  This is the
  speaker normalisation of the classical SER literature (e.g. Schuller et al.,
  2009, "Acoustic emotion recognition: a benchmark comparison of performances",
  and the per-speaker standardisation used with GeMAPS by Eyben et al., 2016);
  on a test speaker it is *transductive*: the test speaker's unlabelled
  features shape its own inputs.  Runs that use it say so in their config
  (``transductive: true``) so that the leaderboard can mark them.

Pure numpy functions; the group of each clip comes from the task's metadata
(``Data.groups``, a table with ``speaker_id`` and ``session`` per utterance).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ..errors import InputError

NORMALISATIONS = ("global", "group", "none")
GROUP_COLUMNS = ("speaker_id", "session")
EPS = 1e-8


def check_normalisation(name: str, group_column: str) -> None:
    if name not in NORMALISATIONS:
        raise InputError(f"unknown normalisation {name!r}", fix=f"use one of {NORMALISATIONS}")
    if name == "group" and group_column not in GROUP_COLUMNS:
        raise InputError(f"unknown group column {group_column!r}",
                         fix=f"use one of {GROUP_COLUMNS}")


def moments(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension mean and standard deviation of rows ``x`` [N, D] (std floored at EPS)."""
    x = np.asarray(x, dtype=np.float64)
    return x.mean(axis=0), np.maximum(x.std(axis=0), EPS)


def zscore(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    return ((np.asarray(x, dtype=np.float64) - mean) / std).astype(np.float32)


def group_of(groups: pd.DataFrame | None, ids: Sequence[str] | np.ndarray, column: str,
             task: str = "this task") -> np.ndarray:
    """The group label of each clip; a clear error when the task does not have that column.

    A column that is absent, or empty (every value missing, e.g. ``session`` on
    EmoDB), cannot define groups; a clip without a value gets its own group
    would silently fall back to per-clip normalisation, so that is refused too.
    """
    fix = (f"use normalisation 'global', or a group column the task fills "
           f"({', '.join(GROUP_COLUMNS)})")
    if groups is None or column not in groups.columns:
        raise InputError(f"group normalisation needs the {column!r} column, and {task} "
                         "does not provide it", fix=fix)
    values = groups[column].reindex(list(map(str, ids)))
    if values.isna().all():
        raise InputError(f"group normalisation by {column!r}: {task} has no {column} values",
                         fix=fix)
    if values.isna().any():
        missing = [str(u) for u in values.index[values.isna()][:5]]
        raise InputError(f"group normalisation by {column!r}: {int(values.isna().sum())} clip(s) "
                         f"of {task} have no {column}, e.g. {missing}", fix=fix)
    return values.astype(str).to_numpy()


def group_moments(features: Mapping[str, np.ndarray], groups: pd.DataFrame, column: str,
                  wanted: Sequence[str] | np.ndarray
                  ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Mean and std of each group in ``wanted`` over *all* its clips that have features.

    Every clip of the group counts, labelled or not, whichever split it is in:
    under leave-one-speaker-out folds a test speaker's statistics are those of
    its test clips (unlabelled).  ``features[u]`` is [T, D] (T = 1 for functionals).
    """
    values = groups[column].dropna().astype(str)
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for g in sorted(set(map(str, wanted))):
        members = [u for u in values.index[values == g] if u in features]
        if not members:
            raise InputError(f"group {g!r} has no clip with features",
                             fix="prepare the task with its audio")
        out[g] = moments(np.concatenate([np.asarray(features[u]) for u in members]))
    return out
