"""A built task: spec + ratings -> vote counts -> per-fold, per-rule splits and targets.

Building is cheap (vectorised over counts), so targets are recomputed from the
stored ratings table each time instead of being cached: the ratings table is
the single source of truth, and the frozen manifest and fingerprint check
that it still gives the task it was frozen as.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import __version__, agreement, atomic, paths
from .. import aggregation as agg
from .. import ratings as rt
from ..errors import InputError, NotPrepared, SerbenchError
from ..readers import get_reader
from ..rules import RuleResult, apply_rule
from ..targets import label_smooth
from ..vocab import MODEL_RULES
from . import fingerprint as fpr
from . import manifest as mf
from .registry import get_spec, task_dir
from .spec import TaskSpec


@dataclass(frozen=True)
class Split:
    """The clips of one (fold, split, rule) cell and their targets.

    ``targets`` are unsmoothed (one-hot for MR/PR, distribution for AR, the
    Dawid-Skene posterior for DS/DS1); ``labels`` the consensus class (-1 for a tied
    AR clip; the posterior's argmax for DS/DS1).
    """

    fold: int
    split: str
    rule: str
    ids: np.ndarray
    targets: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    def smoothed(self, epsilon: float) -> np.ndarray:
        return label_smooth(self.targets, epsilon)


class Task:
    """A task built from a validated, label-mapped ratings table."""

    def __init__(self, spec: TaskSpec, ratings: pd.DataFrame,
                 truth: pd.DataFrame | None = None) -> None:
        self.spec = spec
        self.ratings = ratings
        #: Known answer distribution per clip (simulated corpora only): the oracle row.
        self.truth = truth
        self.counts = rt.vote_counts(ratings, spec.classes, spec.question)
        self.meta = rt.utterances(ratings).loc[self.counts.ids]

    @cached_property
    def manifest(self) -> pd.DataFrame:
        """Fold assignment computed from the fold definition and the data."""
        return mf.assign_folds(self.meta[self.spec.group_by], self.spec)

    @cached_property
    def _fold_matrix(self) -> pd.DataFrame:
        return self.manifest.set_index("utterance_id").loc[self.counts.ids]

    @cached_property
    def votes(self) -> agg.Votes:
        """Every in-set vote with its worker, as the task's ``aggregation.workers`` asks.

        ``auto``: each rater where every vote has a rater id, else pooled; ``pooled``:
        one pseudo-worker (the same targets whether or not the source has rater ids);
        ``raters``: each rater, an error when a vote has no id.
        """
        if self.spec.ds_workers == "pooled":
            return agg.pooled_votes(self.counts.counts)
        votes = agg.task_votes(self.ratings, self.counts.ids, self.spec.classes,
                               self.spec.question, self.counts.counts)
        if self.spec.ds_workers == "raters" and votes.mode != "raters":
            raise InputError(f"task {self.spec.name} fits Dawid-Skene per rater "
                             "(aggregation.workers: raters), but some votes have no rater id",
                             file=self.spec.path or "task.yaml",
                             fix="prepare it from a source with rater ids, or set "
                                 "aggregation.workers to pooled or auto")
        return votes

    @cached_property
    def _model_rules(self) -> dict[str, tuple[RuleResult, agg.DSFit]]:
        return {rule: agg.model_rule(rule, self.counts.counts, self.votes)
                for rule in self.spec.rules if rule in MODEL_RULES}

    @property
    def aggregation(self) -> dict[str, agg.DSFit]:
        """The model-based rules' fits (DS, DS1), once over every clip of the task.

        Labels only, no audio; deterministic (serbench.aggregation), so the
        targets are frozen by the fingerprint like the vote-count rules'.
        """
        return {rule: fit for rule, (_, fit) in self._model_rules.items()}

    @cached_property
    def _rules(self) -> dict[str, RuleResult]:
        out: dict[str, RuleResult] = {}
        for rule in self.spec.rules:
            if rule in MODEL_RULES:
                out[rule] = self._model_rules[rule][0]
                continue
            res = apply_rule(
                rule, self.counts.counts, self.counts.other,
                denominator=self.spec.mr_denominator,  # type: ignore[arg-type]
            )
            if rule == "MR" and self.spec.mr_exclusions:
                drop = np.isin(self.counts.ids, list(self.spec.mr_exclusions)) & res.keep
                if drop.any():
                    keep_rows = ~drop[res.keep]
                    res = RuleResult(
                        "MR", res.keep & ~drop, res.targets[keep_rows], res.labels[keep_rows]
                    )
            out[rule] = res
        return out

    def rule(self, rule: str) -> RuleResult:
        try:
            return self._rules[rule]
        except KeyError:
            raise InputError(
                f"task {self.spec.name} has no rule {rule!r}",
                fix=f"use one of {list(self.spec.rules)}",
            ) from None

    @property
    def n_folds(self) -> int:
        return len(self.spec.folds)

    def split(self, fold: int, split: str, rule: str) -> Split:
        """Clips of ``split`` (train/dev/test) in fold ``fold`` (1-based) under ``rule``."""
        if not 1 <= fold <= self.n_folds:
            raise InputError(f"fold {fold} out of range 1..{self.n_folds}")
        if split not in mf.SPLITS:
            raise InputError(f"split {split!r} not one of {mf.SPLITS}")
        res = self.rule(rule)
        in_split = self._fold_matrix[f"fold_{fold}"].to_numpy() == split
        sel = in_split[res.keep]
        return Split(
            fold, split, rule, self.counts.ids[res.keep][sel], res.targets[sel], res.labels[sel]
        )

    @cached_property
    def fingerprint(self) -> dict[str, Any]:
        cells: dict[str, Any] = {}
        for f in range(1, self.n_folds + 1):
            fold = cells.setdefault(f"fold_{f}", {})
            for rule in self.spec.rules:
                for split in mf.SPLITS:
                    s = self.split(f, split, rule)
                    fold.setdefault(rule, {})[split] = {
                        "n": len(s),
                        "sha256": fpr.cell_digest(
                            list(s.ids), s.targets, s.labels, rule, self.spec.classes
                        ),
                    }
        config = self.spec.config_hash()
        return {
            "config": config,
            "cells": cells,
            "fingerprint": fpr.task_fingerprint(config, cells),
        }

    def _agreement(self) -> dict[str, Any]:
        """Inter-rater agreement, or n/a with the reason where the counts cannot give it.

        Released-label files keep each clip's vote *distribution*; the reader
        recovers the smallest integer counts with that distribution, so a
        unanimous clip comes back as one vote and drops out of every pairable
        statistic.  Agreement computed from such counts is biased low (alpha 0.117
        on IEMOCAP's release), so it is not reported.
        """
        if self.spec.reader == "released-labels":
            return {"clips": None, "votes": None, "raters_per_clip": None,
                    "fleiss_kappa": None, "krippendorff_alpha": None,
                    "why": "the released files keep vote distributions, not counts; the "
                           "recovered minimal counts turn unanimous clips into one vote, which "
                           "biases agreement low (prepare the raw corpus for a real figure)"}
        return {**agreement.summary(self.counts.counts), "why": None}

    def _aggregation_summary(self) -> dict[str, Any]:
        """Per model rule: workers (raters / pooled), iterations, convergence, and a note."""
        out: dict[str, Any] = {}
        for rule, fit in self.aggregation.items():
            note = None
            if self.spec.reader == "released-labels":
                note = ("fitted to the recovered minimal counts of a released-label file (a "
                        "unanimous clip counts as one vote), so posteriors are flatter than "
                        "on the raw counts")
            elif fit.mode == "pooled" and self.spec.ds_workers == "pooled":
                note = "pooled by the task (aggregation.workers): one confusion matrix for all"
            elif fit.mode == "pooled":
                note = "no rater ids in the ratings: one confusion matrix shared by all votes"
            out[rule] = {**fit.summary(), "note": note}
        return out

    def summary(self) -> dict[str, Any]:
        """Counts per fold, rule and split with class distributions (the ``show --json`` body)."""
        k = self.spec.k
        totals = {rule: self.rule(rule).n_kept for rule in self.spec.rules}
        folds = []
        for f in range(1, self.n_folds + 1):
            rules: dict[str, Any] = {}
            for rule in self.spec.rules:
                cell: dict[str, Any] = {}
                for split in mf.SPLITS:
                    s = self.split(f, split, rule)
                    if rule == "AR":  # soft targets without a consensus on ties
                        dist = (
                            [round(float(v), 3) for v in s.targets.sum(axis=0)]
                            if len(s)
                            else [0.0] * k
                        )
                    else:
                        dist = [int(v) for v in np.bincount(s.labels, minlength=k)]
                    cell[split] = {
                        "n": len(s),
                        "class_counts": dict(zip(self.spec.classes, dist, strict=True)),
                    }
                rules[rule] = cell
            folds.append(
                {
                    "fold": f,
                    "test_groups": list(self.spec.folds[f - 1].test),
                    "dev_groups": list(self.spec.folds[f - 1].dev),
                    "rules": rules,
                }
            )
        no_vote = int((self.counts.counts.sum(axis=1) == 0).sum())
        excluded = [u for u in self.spec.mr_exclusions if u in set(self.counts.ids)]
        return {
            "task": self.spec.name,
            "version": self.spec.version,
            "classes": list(self.spec.classes),
            "question": self.spec.question,
            "group_by": self.spec.group_by,
            "fingerprint": self.fingerprint["fingerprint"],
            "n_utterances": len(self.counts.ids),
            "n_ratings": len(self.ratings),
            "n_raters": int(self.ratings["rater_id"].nunique()),
            "rules": totals,
            # over the task's classes (out-of-set votes left out), clips with >= 2 votes
            "agreement": self._agreement(),
            **({"aggregation": self._aggregation_summary()} if self.aggregation else {}),
            "dropped": {
                "no_in_set_vote": no_vote,
                "mr_exclusions": {"ids": excluded, "reason": self.spec.mr_exclusion_reason},
            },
            "folds": folds,
        }


# --------------------------------------------------------------------------- building


#: The prepared task's known truth (simulated corpora only), beside ratings.parquet.
TRUTH_FILE = "truth.csv"


def _truth(spec: TaskSpec, truth: pd.DataFrame | None) -> pd.DataFrame | None:
    """A simulated corpus's known answer distributions over the task's classes (or None).

    Source labels map to classes with the task's ``label_map``; shares of labels
    outside the class set are dropped and the rest renormalised, as the AR
    targets drop out-of-set votes.
    """
    if truth is None:
        return None
    out = pd.DataFrame(0.0, index=truth.index.astype(str), columns=list(spec.classes))
    for label, cls in spec.label_map.items():
        if label in truth.columns and cls in out.columns:
            out[cls] += truth[label].to_numpy(dtype=float)
    total = out.sum(axis=1)
    return out[total > 0].div(total[total > 0], axis=0)


def build_ratings(spec: TaskSpec, source: str | Path | None
                  ) -> tuple[pd.DataFrame, dict[str, Any], pd.DataFrame | None]:
    """Run the task's reader on ``source``, validate and map labels.

    Returns the ratings table, the provenance and, for a simulated corpus, the
    known truth (see :func:`_truth`).
    """
    reader = get_reader(spec.reader)
    result = reader(source, **spec.reader_options)
    table = rt.validate(result.table, name=", ".join(result.files) or spec.reader)
    table = rt.map_labels(
        table, spec.label_map, spec.other_labels, task_file=spec.path or "task.yaml",
        question=spec.question,
    )
    provenance = {
        "task": spec.name,
        "reader": spec.reader,
        "source": None if source is None else str(Path(source).resolve()),
        "files": result.files,
        "counts_only": result.counts_only,
        "drops": result.drops,
        "notes": [*result.notes, *_sample_rate_notes(table)],
        "n_ratings": len(table),
        "serbench": __version__,
        "prepared_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    return table, provenance, _truth(spec, result.truth)


def _sample_rate_notes(table: pd.DataFrame) -> list[str]:
    """A note when the corpus mixes sample rates (an 8 kHz clip among 22.05 kHz ones).

    Features resample every clip to one rate, so a mixed corpus runs; but a
    low-rate clip carries nothing above half its rate, which a model can learn
    as a shortcut.  The note names the rates and a clip of each minority rate.
    """
    from ..audio import header

    if "audio_path" not in table.columns:
        return []
    paths_ = table.drop_duplicates("utterance_id").set_index("utterance_id")["audio_path"]
    rates: dict[int, list[str]] = {}
    for uid, path in paths_.items():
        if isinstance(path, str) and path:
            try:
                rates.setdefault(int(header(path).samplerate), []).append(str(uid))
            except SerbenchError:  # unreadable files were refused by the reader already
                continue
    if len(rates) < 2:
        return []
    common = max(rates, key=lambda r: len(rates[r]))
    parts = ", ".join(f"{len(v)} at {r} Hz" for r, v in sorted(rates.items(), key=lambda x: -x[0]))
    odd = "; ".join(f"e.g. {v[0]} at {r} Hz" for r, v in rates.items() if r != common)
    return [f"sample rates differ: {parts} ({odd}); every clip is resampled for features, but a "
            f"clip below {common} Hz has no content above half its rate"]


def frozen_fingerprint(spec: TaskSpec) -> dict[str, Any] | None:
    path = task_dir(spec.name) / "fingerprint.json"
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON: {exc}", file=path, fix="restore it from git") from exc


def check_frozen(task: Task) -> None:
    """Compare a built task with its frozen manifest and fingerprint (raise on any difference).

    A task marked ``frozen: false`` has nothing to compare with (it was defined
    without the corpus); its build is accepted and its fingerprint reported.
    """
    if not task.spec.frozen:
        return
    tdir = task_dir(task.spec.name)
    frozen_manifest = mf.read_manifest(tdir / "manifest.csv", task.n_folds)
    mf.compare(frozen_manifest, task.manifest, file=tdir / "manifest.csv")
    frozen = frozen_fingerprint(task.spec)
    if frozen is None:
        raise InputError(
            "fingerprint.json not found",
            file=tdir / "fingerprint.json",
            fix="freeze the task: serbench tasks freeze TASK --source DIR",
        )
    fpr.compare(frozen, task.fingerprint, file=str(tdir / "fingerprint.json"))


def prepare(name: str, source: str | Path | None = None, *,
            progress: Callable[[int, int], None] | None = None) -> tuple[Task, dict[str, Any]]:
    """Build a task from a raw source, check it against its frozen definition, then store it.

    Nothing is written unless every check passes, so a bad source never
    replaces a good prepared table.  The demo task's corpus is generated first
    when no source is given (``progress(done, total)`` follows it).
    """
    spec = get_spec(name)
    if spec.reader == "demo" and source is None:
        from ..demo import ensure_demo_corpus

        ensure_demo_corpus(progress)
    table, provenance, truth = build_ratings(spec, source)
    task = Task(spec, table, truth)
    check_frozen(task)
    provenance["fingerprint"] = task.fingerprint["fingerprint"]
    provenance["frozen"] = spec.frozen
    if not spec.frozen:
        provenance["notes"] = [*provenance.get("notes", []), (
            "this task is not frozen (defined without the corpus): compare the fingerprint "
            f"{provenance['fingerprint'][:12]} and the rule counts with other labs, or freeze "
            f"it with serbench tasks freeze {name} --source DIR")]
    cache = paths.task_cache(name)
    truth_file = cache / TRUTH_FILE
    if truth is not None:
        atomic.write_text(truth_file, truth.to_csv(float_format="%.6f", lineterminator="\n"))
    else:
        truth_file.unlink(missing_ok=True)
    rt.save(
        table,
        cache / "ratings.parquet",
        {"serbench.task": name, "serbench.fingerprint": provenance["fingerprint"]},
    )
    atomic.write_json(cache / "provenance.json", provenance)
    return task, provenance


def load_task(name: str, *, check: bool = True,
              progress: Callable[[int, int], None] | None = None) -> Task:
    """A prepared task (the demo is prepared on first use; others need ``serbench prepare``)."""
    spec = get_spec(name)
    table_path = paths.task_cache(name) / "ratings.parquet"
    if spec.reader == "demo" and table_path.exists() and _stale_demo(spec):
        table_path.unlink()  # prepared from an older demo version: regenerate
    if not table_path.exists():
        if spec.reader == "demo":
            return prepare(name, progress=progress)[0]
        raise NotPrepared(
            f"task {name!r} is not prepared yet; run: serbench prepare {name} --source DIR"
            + (f"\n  source: {spec.source}" if spec.source else "")
        )
    truth_file = table_path.parent / TRUTH_FILE
    truth = pd.read_csv(truth_file, index_col=0, dtype={0: str}) if truth_file.exists() else None
    task = Task(spec, rt.load(table_path), truth)
    if check:
        check_frozen(task)
    return task


def _stale_demo(spec: TaskSpec) -> bool:
    """Whether the prepared demo was built from another demo version than the frozen one."""
    prov, frozen = provenance(spec.name), frozen_fingerprint(spec)
    return bool(prov and frozen and prov.get("fingerprint") != frozen.get("fingerprint"))


def provenance(name: str) -> dict[str, Any] | None:
    path = paths.task_cache(name) / "provenance.json"
    return json.loads(path.read_text()) if path.exists() else None


def freeze(name: str, source: str | Path | None = None, *,
           force: bool = False) -> tuple[Task, bool]:
    """Write ``manifest.csv`` and ``fingerprint.json`` for a task from a source (maintainers).

    Returns the built task and whether anything was written.  A frozen task is a
    contract other labs check their builds against, so a build that differs from
    it is refused (nothing written) unless ``version:`` in task.yaml is above the
    version recorded in ``fingerprint.json`` (a new version, on purpose) or
    ``force`` is given (for a ``fingerprint.json`` written before versions were
    recorded, whose version cannot be compared).  An identical build writes
    nothing.
    """
    spec = get_spec(name)
    table, _, truth = build_ratings(spec, source)
    task = Task(spec, table, truth)
    tdir = task_dir(name)
    manifest_text = task.manifest.to_csv(index=False, lineterminator="\n")
    old = frozen_fingerprint(spec)
    if old is not None:
        old_manifest = tdir / "manifest.csv"
        same = (old.get("fingerprint") == task.fingerprint["fingerprint"]
                and old_manifest.exists() and old_manifest.read_text() == manifest_text)
        if same:
            return task, False
        _check_refreeze(spec, old, task.fingerprint["fingerprint"], tdir, force=force)
    mf.write_manifest(tdir / "manifest.csv", task.manifest)
    atomic.write_json(tdir / "fingerprint.json", {**task.fingerprint, "version": spec.version})
    return task, True


def _check_refreeze(spec: TaskSpec, old: dict[str, Any], new: str, tdir: Path, *,
                    force: bool) -> None:
    """Refuse to overwrite a frozen task with a different build without a version bump."""
    recorded = old.get("version")
    if force or (isinstance(recorded, int) and spec.version > recorded):
        return
    was = fpr.short(str(old.get("fingerprint", "")))
    what = (f"fingerprint {was} frozen, {fpr.short(new)} built" if was != fpr.short(new)
            else f"fingerprint {was} unchanged but the split manifest differs")
    at = (f"version {recorded}" if recorded is not None
          else "a version not recorded in fingerprint.json")
    fix = ("check that --source is the complete corpus release the task was frozen on; to "
           f"freeze a new version on purpose, raise `version:` in {tdir / 'task.yaml'} "
           f"(now {spec.version})")
    fix += (" and run again" if recorded is not None
            else " and pass --force (this fingerprint.json predates recorded versions)")
    raise InputError(
        f"task {spec.name} is already frozen ({at}) and this build differs ({what}); "
        "nothing was written", file=tdir / "fingerprint.json", fix=fix)
