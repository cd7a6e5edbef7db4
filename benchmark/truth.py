"""How close each rule's targets are to a known generative truth (simulated corpora).

A simulation that stores every clip's true emotion mixture (the demo v2 writes it to
``clips.csv`` as columns ``mix_<class>`` summing to 1) lets serbench ask which
aggregation rule's test targets are closest to the truth.  :func:`truth_report` is a
pure function of the true mixtures [N, K] and the rules' results over the same N clips
(``RuleResult`` from :mod:`serbench.rules` / ``Task.rule``).  Per rule it reports, over
three clip sets:

* ``kept``: the clips the rule keeps, with its own targets;
* ``common``: the clips every compared rule keeps (the same clips for all rules);
* ``all``: every clip; a clip the rule drops counts as the uniform target 1/K ("no
  consensus"), which is chance level for every measure below.

Measures (means over the clip set): ``tv``, the total-variation distance
``0.5 * sum_k |target_k - truth_k|``; ``js``, the Jensen-Shannon distance in bits
(``scipy.spatial.distance.jensenshannon`` with base 2: the square root of the
divergence, in [0, 1]); ``accuracy``, agreement of the target's top class with the
truth's top class, where ties on either side count as a uniformly random pick
(``|top(target) ∩ top(truth)| / |top(target)|``, so a 0.5/0.5 truth accepts either of
its two classes and a uniform target scores the chance rate).  Test sets of the folds
partition the clips, so these are the rules' test targets over all folds together.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.spatial.distance import jensenshannon

from .errors import InputError
from .rules import RuleResult

#: The column prefix of a clip's true mixture in a simulation's clip table.
MIX_PREFIX = "mix_"
SETS = ("kept", "common", "all")


def mixtures_from_table(table: pd.DataFrame, ids: Sequence[str], classes: Sequence[str], *,
                        id_column: str = "utterance_id", file: str = "clips.csv",
                        atol: float = 1e-5) -> np.ndarray:
    """The true mixtures [N, K] of ``ids`` from a clip table's ``mix_<class>`` columns.

    Rows must sum to 1 within ``atol`` (the demo writes 6 decimals per share, so
    its rows are off by up to 3e-6) and are renormalised.

    Raises :class:`InputError` naming the file and the fix when a column or clip is
    missing, a value is negative or not finite, or a row does not sum to 1.
    """
    cols = [MIX_PREFIX + c for c in classes]
    missing = [c for c in [id_column, *cols] if c not in table.columns]
    if missing:
        raise InputError(f"missing column(s) {missing}", file=file,
                         fix=f"the clip table needs {id_column} and {', '.join(cols)}")
    by_id = table.set_index(table[id_column].astype(str))
    absent = [u for u in ids if u not in by_id.index]
    if absent:
        raise InputError(f"{len(absent)} clip(s) of the task have no true mixture, e.g. "
                         f"{absent[:3]}", file=file, fix="use the clip table of the same corpus")
    mix = by_id.loc[list(ids), cols].to_numpy(dtype=np.float64)
    bad = ~np.isfinite(mix).all(axis=1) | (mix < 0).any(axis=1) | \
        (np.abs(mix.sum(axis=1) - 1.0) > atol)
    if bad.any():
        u = list(ids)[int(np.flatnonzero(bad)[0])]
        raise InputError(f"the mixture of clip {u!r} is not a distribution (non-negative, "
                         f"finite, summing to 1 within {atol})", file=file,
                         row=u, fix="each row's mix_ columns must be non-negative shares "
                                    "summing to 1; check the file or regenerate the corpus")
    return mix / mix.sum(axis=1, keepdims=True)


def read_clip_table(path: str | Path) -> pd.DataFrame:
    """A simulation's clip table (CSV), or one clear error naming the file."""
    path = Path(path)
    if not path.is_file():
        raise InputError("clip table not found", file=path,
                         fix="pass the clips.csv of the simulated corpus (with mix_<class> "
                             "columns)")
    try:
        return pd.read_csv(path, dtype={"utterance_id": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"not a readable CSV table ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else ''})", file=path,
                         fix="pass the clips.csv the corpus generator wrote") from None


def _tops(p: np.ndarray) -> np.ndarray:
    return np.isclose(p, p.max(axis=1, keepdims=True), rtol=0.0, atol=1e-12)


def _measures(targets: np.ndarray, truth: np.ndarray) -> dict[str, float | int | None]:
    if len(targets) == 0:
        return {"n": 0, "tv": None, "js": None, "accuracy": None}
    tv = 0.5 * np.abs(targets - truth).sum(axis=1)
    js = jensenshannon(targets, truth, base=2, axis=1)
    top_t, top_m = _tops(targets), _tops(truth)
    acc = (top_t & top_m).sum(axis=1) / top_t.sum(axis=1)
    return {"n": len(targets), "tv": float(tv.mean()), "js": float(np.mean(js)),
            "accuracy": float(acc.mean())}


def truth_report(truth: np.ndarray, results: Mapping[str, RuleResult]
                 ) -> dict[str, dict[str, Any]]:
    """{rule: {"coverage", "kept", "common", "all"}}: each rule's targets against the truth.

    ``truth`` [N, K] holds each clip's true mixture in the row order of the clips the
    results were computed on (``Task.counts.ids``); every result's ``keep`` mask has N
    entries.  ``coverage`` is the share of clips the rule keeps.  See the module
    docstring for the clip sets and measures.
    """
    truth = np.asarray(truth, dtype=np.float64)
    if truth.ndim != 2:
        raise ValueError(f"truth must be [N, K], got shape {truth.shape}")
    n, k = truth.shape
    for rule, res in results.items():
        if res.keep.shape != (n,) or res.targets.shape != (int(res.keep.sum()), k):
            raise ValueError(f"rule {rule}: keep {res.keep.shape} / targets "
                             f"{res.targets.shape} do not match truth {truth.shape}")
    common = np.ones(n, dtype=bool)
    for res in results.values():
        common &= res.keep
    out: dict[str, dict[str, Any]] = {}
    for rule, res in results.items():
        full = np.full((n, k), 1.0 / k)
        full[res.keep] = res.targets
        out[rule] = {"coverage": float(res.keep.mean()) if n else 0.0,
                     "kept": _measures(res.targets, truth[res.keep]),
                     "common": _measures(full[common], truth[common]),
                     "all": _measures(full, truth)}
    return out


def task_truth_report(task: Any, table: pd.DataFrame, **kwargs: Any) -> dict[str, dict[str, Any]]:
    """:func:`truth_report` of every rule of a built ``Task``, from a clip table with mixtures.

    ``table``: e.g. the simulation's ``clips.csv`` read with pandas (``kwargs`` go to
    :func:`mixtures_from_table`: ``id_column``, ``file``, ``atol``).
    """
    truth = mixtures_from_table(table, [str(u) for u in task.counts.ids], task.spec.classes,
                                **kwargs)
    return truth_report(truth, {rule: task.rule(rule) for rule in task.spec.rules})


def closest_rule(report: Mapping[str, Mapping[str, Any]], *, clips: str = "common",
                 measure: str = "tv") -> str | None:
    """The rule whose targets are closest to the truth on ``clips`` by ``measure``."""
    if clips not in SETS or measure not in ("tv", "js", "accuracy"):
        raise ValueError(f"clips must be one of {SETS}; measure tv, js or accuracy")
    vals = {r: v[clips][measure] for r, v in report.items() if v[clips][measure] is not None}
    if not vals:
        return None
    pick = max if measure == "accuracy" else min
    return pick(vals, key=lambda r: vals[r])


def report_rows(report: Mapping[str, Mapping[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Header and text rows (one per rule) for a Markdown or terminal table."""
    head = ["rule", "coverage"] + [f"{m} ({s})" for s in SETS for m in ("tv", "js", "accuracy")]

    def f(v: float | None) -> str:
        return "—" if v is None else f"{v:.4f}"

    rows = [[rule, f(v["coverage"])] + [f(v[s][m]) for s in SETS
                                        for m in ("tv", "js", "accuracy")]
            for rule, v in report.items()]
    return head, rows


__all__ = ["MIX_PREFIX", "SETS", "closest_rule", "mixtures_from_table", "read_clip_table",
           "report_rows", "task_truth_report", "truth_report"]
