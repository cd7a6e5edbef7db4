"""The leaderboard's view model: one place that decides what a table row and a 3x3 hold.

"3x3" names the training rule x test rule table; it has one row and one column per
rule of the task (MR, PR, AR, and DS / DS1 where the task declares them).

Markdown, HTML, CSV, JSON, the plots (:mod:`serbench.leaderboard`) and the
terminal table that ``serbench run`` prints (:func:`terminal_three_by_three`)
all read these functions, so the 3x3 (training rule x test rule) exists once
and the reference rows (prior, best constant, human; :mod:`serbench.reference`)
sit beside the submissions everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .metrics import LOWER_IS_BETTER, PAPER_METRIC
from .reference import RefValue, normalised, row_kinds
from .summaries import Aggregate
from .tasks.task import Task

MISSING = "—"
NA = "n/a"
#: Secondary columns of the main table: (metric, test rule, label suffix).
SECONDARY = (("uar", "MR"), ("macro_f1", "PR"), (PAPER_METRIC, "AR"), ("nll", "AR"),
             ("brier", "AR"), ("ece_classwise", "AR"), ("uar", "DS"))
REFERENCE_LABEL = {"prior": "reference: prior", "best_constant": "reference: best constant",
                   "human": "reference: human (held-out vote)",
                   "oracle": "reference: oracle (known truth)"}


@dataclass
class TaskBoard:
    """One task's scored submissions, reference rows and printed conventions."""

    task: Task
    aggregates: list[Aggregate]
    versions: dict[str, str]
    reference: dict[str, dict[str, dict[str, RefValue]]] = field(default_factory=dict)
    conventions: dict[str, str] = field(default_factory=dict)
    #: Submission -> what a reader must know beside its numbers: ``transductive`` (it
    #: normalised with the test speakers' own features), ``external`` (predictions made
    #: outside serbench, brought in with ``serbench score``).
    marks: dict[str, list[str]] = field(default_factory=dict)


def display_name(row: dict[str, Any]) -> str:
    """A row's submission name with its marks: ``opensmile-svm+compare+group (transductive)``."""
    marks = row.get("marks") or []
    return row["submission"] + (f" ({', '.join(marks)})" if marks else "")


def fmt(v: float | None, digits: int = 4) -> str:
    return MISSING if v is None or not np.isfinite(v) else f"{v:.{digits}f}"


def primary_test_rule(tb: TaskBoard) -> str:
    """The test rule of the primary column: AR (the complete test set)."""
    return "AR" if "AR" in tb.task.spec.rules else tb.task.spec.rules[-1]


def secondary(tb: TaskBoard) -> list[tuple[str, str]]:
    spec = tb.task.spec
    pm = spec.primary_metric
    return [(m, te) for m, te in SECONDARY
            if m in spec.metrics and te in spec.rules and (m, te) != (pm, primary_test_rule(tb))]


def column_name(metric: str, test: str) -> str:
    return f"{metric}@{test}" + (" (paper)" if metric == PAPER_METRIC else "")


def table_rows(tb: TaskBoard) -> list[dict[str, Any]]:
    """One row per (submission, training rule), sorted by the primary metric, then references.

    Reference rows have ``kind`` "reference", no training rule, and hold
    ``RefValue``-derived numbers or None with ``notes`` (the n/a reasons).
    """
    spec = tb.task.spec
    pm = spec.primary_metric
    pt = primary_test_rule(tb)
    sec = secondary(tb)
    rows = []
    for agg in tb.aggregates:
        for train in spec.rules:
            key = (train, pt, pm)
            row: dict[str, Any] = {
                "kind": "submission", "submission": agg.submission,
                "version": tb.versions.get(agg.submission, ""),
                "marks": tb.marks.get(agg.submission, []),
                "train_rule": train, "folds": f"{agg.folds_done[train]}/{agg.n_folds}",
                "seeds": len(agg.seeds), "complete": agg.complete[train],
                "primary": agg.mean.get(key), "primary_std": agg.std.get(key),
                "primary_seed_std": agg.seed_std.get(key), "primary_ci": agg.ci.get(key),
                "notes": {},
            }
            ref = tb.reference.get(pm, {}).get(pt)
            row["normalised"] = (normalised(row["primary"], ref)
                                 if ref and row["primary"] is not None else None)
            for m, test in sec:
                row[column_name(m, test)] = agg.mean.get((train, test, m))
            rows.append(row)
    sign = -1.0 if pm not in LOWER_IS_BETTER else 1.0
    rows.sort(key=lambda r: (r["primary"] is None,
                             sign * (r["primary"] if r["primary"] is not None else 0.0),
                             r["submission"], r["train_rule"]))
    for kind in row_kinds(tb.task):
        ref_row: dict[str, Any] = {
            "kind": "reference", "submission": REFERENCE_LABEL[kind], "version": "",
            "train_rule": "", "folds": f"{tb.task.n_folds}/{tb.task.n_folds}", "seeds": "",
            "complete": True, "primary_std": None, "primary_seed_std": None,
            "primary_ci": None, "notes": {}}
        v = tb.reference.get(pm, {}).get(pt, {}).get(kind)
        ref_row["primary"] = v.value if v else None
        ref_row["normalised"] = None
        if v is not None and v.value is None:
            ref_row["notes"]["primary"] = v.reason
        for m, test in sec:
            rv = tb.reference.get(m, {}).get(test, {}).get(kind)
            ref_row[column_name(m, test)] = rv.value if rv else None
            if rv is not None and rv.value is None:
                ref_row["notes"][column_name(m, test)] = rv.reason
        rows.append(ref_row)
    return rows


@dataclass(frozen=True)
class PartialRow:
    """A (submission, training rule) row with some but not all of its cells recorded.

    A training rule is scored once every fold of every seed is recorded
    (:func:`serbench.summaries.aggregate`), so such a row shows ``—``: a score that is
    missing, not one that was never computed.  ``missing`` holds the (seed, fold) cells
    not recorded, ``needed`` the seeds x folds a complete row has.
    """

    task: str
    submission: str
    train_rule: str
    missing: tuple[tuple[int, int], ...]
    needed: int

    def cells_text(self) -> str:
        """``seed 0: fold 3; seed 1: folds 1, 2`` (the cells not recorded)."""
        by_seed: dict[int, list[int]] = {}
        for seed, fold in self.missing:
            by_seed.setdefault(seed, []).append(fold)
        return "; ".join(f"seed {s}: fold{'s' if len(f) > 1 else ''} "
                         + ", ".join(str(x) for x in sorted(f)) for s, f in sorted(by_seed.items()))

    def text(self) -> str:
        """``blstm-fc, trained on AR: 1 of 5 cells not recorded (seed 0: fold 3)``."""
        n = len(self.missing)
        return (f"{self.submission}, trained on {self.train_rule}: {n} of {self.needed} "
                f"cell{'s' if self.needed != 1 else ''} not recorded ({self.cells_text()})")


def partial_rows(tb: TaskBoard) -> list[PartialRow]:
    """The rows of ``tb`` with at least one cell recorded but not every one, by submission and
    the task's rule order (a training rule with no cell at all was not run: not listed)."""
    out = []
    for agg in sorted(tb.aggregates, key=lambda a: a.submission):
        needed = len(agg.seeds) * agg.n_folds
        for train in tb.task.spec.rules:
            gone = agg.missing.get(train, [])
            if gone and len(gone) < needed:
                out.append(PartialRow(tb.task.spec.name, agg.submission, train,
                                      tuple(gone), needed))
    return out


PARTIAL_NOTE = ("Partial rows: a training rule is scored once every fold of every seed is "
                f"recorded, so these rows show `{MISSING}` where a score is missing (its cells "
                "are not all recorded), not where one was never computed:")


def rater_absent_note(tb: TaskBoard) -> str:
    """Why a task's rater-level section has no rows (no training rule is complete yet)."""
    done = "; ".join(f"{a.submission} " + ", ".join(f"{tr} {a.folds_done.get(tr, 0)}/{a.n_folds}"
                                                    for tr in tb.task.spec.rules)
                     for a in sorted(tb.aggregates, key=lambda a: a.submission))
    return ("Not shown yet: like the table above, the rater-level metrics are scored for a "
            "training rule once every fold of every seed is recorded, and no training rule is "
            f"complete (folds recorded: {done}). Run the remaining folds to see them; "
            "`serbench score DIR` scores single cells, rater-level metrics included.")


def three_by_three_values(tb: TaskBoard, agg: Aggregate, metric: str | None = None
                          ) -> np.ndarray:
    """[train rule, test rule] means of ``metric`` (default: the primary); NaN = missing."""
    rules = tb.task.spec.rules
    m = metric or tb.task.spec.primary_metric
    return np.array([[agg.mean.get((tr, te, m), np.nan) for te in rules] for tr in rules])


def reference_by_test_rule(tb: TaskBoard, metric: str | None = None
                           ) -> list[tuple[str, list[RefValue | None]]]:
    """Reference rows under a 3x3: (label, one value per test rule)."""
    m = metric or tb.task.spec.primary_metric
    return [(REFERENCE_LABEL[kind], [tb.reference.get(m, {}).get(te, {}).get(kind)
                                     for te in tb.task.spec.rules])
            for kind in row_kinds(tb.task)]


def ref_text(v: RefValue | None, digits: int = 4) -> str:
    if v is None:
        return MISSING
    return v.text(digits)


def three_by_three_rows(tb: TaskBoard, agg: Aggregate, metric: str | None = None
                        ) -> tuple[list[str], list[list[str]]]:
    """Header and text rows of the 3x3 with the reference rows below it (n/a = undefined)."""
    rules = list(tb.task.spec.rules)
    values = three_by_three_values(tb, agg, metric)
    head = ["train \\ test", *rules]
    body = [[tr, *[fmt(v) for v in values[i]]] for i, tr in enumerate(rules)]
    body += [[label, *[ref_text(v) for v in vals]]
             for label, vals in reference_by_test_rule(tb, metric)]
    return head, body


def convention_lines(tb: TaskBoard) -> list[str]:
    c = tb.conventions
    return [c[k] for k in ("uar", "kl", "paper_metric") if k in c]


def terminal_three_by_three(board: Any, task: str, submission: str
                            ) -> tuple[str, list[str], list[list[str]], list[str]] | None:
    """What ``serbench run`` prints: (title, header, rows, notes), or None if not on the board.

    The rows are the 3x3 of the task's primary metric followed by the prior,
    best-constant and human reference rows; the notes are the n/a reasons
    and the conventions (UAR classes, KL against the consensus on MR/PR).
    """
    for tb in board.tasks:
        if tb.task.spec.name != task:
            continue
        for agg in tb.aggregates:
            if agg.submission != submission:
                continue
            pm = tb.task.spec.primary_metric
            head, rows = three_by_three_rows(tb, agg)
            notes = [f"{label}, {te}: n/a ({v.reason})"
                     for label, vals in reference_by_test_rule(tb)
                     for te, v in zip(tb.task.spec.rules, vals, strict=True)
                     if v is not None and v.value is None]
            seeds = ", ".join(str(s) for s in agg.seeds)
            title = (f"{submission} on {task}: {pm}, training rule x test rule "
                     f"(mean over folds and seeds {seeds})")
            return title, head, rows, notes + convention_lines(tb)
    return None


def reference_table(task: Task, metrics: tuple[str, ...] | None = None
                    ) -> tuple[list[str], list[list[str]], list[str]]:
    """For ``serbench tasks show``: header, one row per (metric, test rule), and the n/a notes.

    Rows hold the prior, best-constant and human values (``n/a`` where undefined; the
    notes give each distinct reason once).
    """
    from .reference import reference

    ref = reference(task, metrics)
    kinds = row_kinds(task)
    head = ["metric", "test", "prior", "best constant", "human (held-out vote)",
            *(["oracle (known truth)"] if "oracle" in kinds else [])]
    rows: list[list[str]] = []
    reasons: dict[str, str] = {}
    for m, by_rule in ref.items():
        label = m + (" (paper)" if m == PAPER_METRIC else "") + \
            (" (primary)" if m == task.spec.primary_metric else "")
        for rule, row in by_rule.items():
            if all(v.value is None for v in row.values()):
                continue
            rows.append([label, rule, *[row[k].text() for k in kinds]])
            for k in kinds:
                if row[k].value is None:
                    reasons.setdefault(row[k].reason, f"{m} {rule} {k}")
    notes = [f"n/a ({where} and alike): {why}" for why, where in reasons.items()]
    return head, rows, notes


# ----------------------------------------------------------------------------- rater level

#: Columns of the rater-level table: (metric, header) on the primary test rule.
RATER_COLUMNS = (("vote_ll", "vote log-lik. (nats/vote)"), ("vote_accuracy", "vote accuracy"),
                 ("rater_uar", "per-rater UAR"), ("rater_uar_sd", "± sd over raters"),
                 ("minority_recall", "minority-view recall"))


def rater_table(tb: TaskBoard) -> tuple[list[str], list[list[str]], list[str]]:
    """The rater-level section (docs/methods.md#rater-eval): header, rows, notes.

    One row per (submission, training rule) on the primary test rule's clips: the
    rater-level metrics (mean over folds and seeds, the 95% interval of the vote
    log-likelihood), whether the submission predicted each rater
    (``predict_rater_proba``) or gave one distribution for every rater, and the
    votes and raters covered.  Where a value is not defined it reads ``n/a`` and
    the notes give the reason once (a task without rater ids: every value).
    """
    spec = tb.task.spec
    te = primary_test_rule(tb)
    head = ["submission", "train rule", *[h for _, h in RATER_COLUMNS], "vote log-lik. 95% CI",
            "per-rater predictions", "votes (all folds)", "raters per fold"]
    rows: list[list[str]] = []
    reasons: dict[str, list[str]] = {}  # why -> the columns it explains
    for agg in tb.aggregates:
        cov = agg.rater_coverage.get(te, {})
        raters = cov.get("raters_per_fold") or []
        for tr in spec.rules:
            if not agg.complete.get(tr):
                continue
            cells = []
            for m, _ in RATER_COLUMNS:
                key = (tr, te, m)
                if key in agg.mean:
                    cells.append(fmt(agg.mean[key]))
                elif key in agg.notes:
                    cells.append(NA)
                    seen = reasons.setdefault(agg.notes[key], [])
                    if m not in seen:
                        seen.append(m)
                else:
                    cells.append(MISSING)
            ci = agg.ci.get((tr, te, "vote_ll"))
            rows.append([agg.submission, tr, *cells,
                         MISSING if ci is None else f"[{ci[0]:.4f}, {ci[1]:.4f}]",
                         "yes" if agg.rater_specific else "no (one distribution for all)",
                         str(cov.get("votes", MISSING)),
                         f"{min(raters)}–{max(raters)}" if raters else MISSING])
    if rows:
        from .rater_eval import reference_rows

        for kind, values in reference_rows(tb.task, te).items():
            cells = []
            for m, _ in RATER_COLUMNS:
                value, why = values[m]
                cells.append(fmt(value) if value is not None else NA)
                if value is None:
                    label = f"{m} ({kind})"
                    seen = reasons.setdefault(why, [])
                    if label not in seen:
                        seen.append(label)
            rows.append([f"*{RATER_REFERENCE[kind]}*", "", *cells, MISSING, "", "", ""])
    notes = [f"n/a ({', '.join(cols)}): {why}" for why, cols in reasons.items()]
    return head, rows, notes


#: The rater-level reference rows (serbench.rater_eval.reference_rows).
RATER_REFERENCE = {"prior": "reference: training prior",
                   "human": "reference: other raters of the clip (held-out vote)"}


def rater_section_note(tb: TaskBoard) -> str:
    """One line under the rater-level section: what it scores, on which test set."""
    spec = tb.task.spec
    disjoint = ("only votes of raters who rated none of the fold's training and development "
                "clips (raters.test_disjoint)" if spec.rater_test_disjoint else
                "every primary vote with a rater id")
    return (f"Individual raters' primary answers on the {primary_test_rule(tb)} test clips: "
            f"{disjoint}; per-rater UAR over raters with at least {spec.rater_min_votes} "
            "counted votes; minority views: classes chosen by at least one but fewer than half "
            "of a clip's raters, recalled by the 1/K prediction (docs/methods.md#rater-eval).")
