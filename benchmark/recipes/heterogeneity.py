"""The rater-heterogeneity study: where rater-aware modelling helps, ties or hurts.

Demo v2 (:mod:`serbench.demo.perception`) knows each clip's truth, so the
paper's claims can be tested against it rather than against noisy votes.  The
study generates the demo at each rater-heterogeneity level (:data:`LEVELS`;
the clips, their mixtures and so their audio are the same at every level,
only how raters perceive changes), runs the same arms on every level with the
same folds and seeds, and compares them in pairs (:data:`COMPARISONS`):

* **AR training** against PR training (the same model and loss, trained on
  every rating as a distribution or on the plurality consensus);
* **the co-occurrence penalty** against the same AR model without it;
* **rater fusion** and **a crowd layer** against the AR soft-label model
  (and rater fusion against the consensus model).

Each comparison is judged on three scores:

* ``truth_ce``: cross-entropy of the prediction against the clip's true
  answer distribution (the rater pool's expected vote), i.e. the expected
  negative log-likelihood of a random rater's vote, free of the sampling
  noise of 4-12 votes; lower is better;
* ``vote_ll``: the mean log-likelihood of each test rater's own answer (nats
  per vote, serbench.rater_metrics), with the submission's per-rater
  prediction where it has one (rater fusion's heads, the crowd layer's maps);
  higher is better;
* the task's primary metric on the AR test set (AUPRC against the observed
  votes' 1/K bits);
* UAR on the MR test set (the paper's consensus evaluation).

Every difference is a paired hierarchical bootstrap over training seeds, then
test clips, per fold (:func:`serbench.summaries.compare` for the task
metrics; :func:`paired_truth` for ``truth_ce``), with the difference per
seed.  A comparison **helps** or **hurts** when its 95 % interval excludes
zero, else it **ties**.  See docs/methods.md#demo-v2.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import bootstrap as bs
from .. import plots
from ..cell import CellResult
from ..executors import Hooks
from ..records import CellKey
from ..scoring import load_probs
from ..summaries import compare
from ..tasks.task import Task
from .shared import finished, write_report

LEVELS = ("none", "moderate", "high")
#: The small eGeMAPS-LLD BLSTM of the committed EmoDB results, shared by every arm
#: (cheap on 2 CPU cores: one layer of 32 units on 12.5 frames per second).
BACKBONE: dict[str, Any] = {
    "feature": "egemaps", "pooling": "meanstd", "layers": 1, "hidden": 32, "frame_step": 8,
    "max_epochs": 30, "patience": 6, "weight_decay": 0.001}
PENALTY_ALPHA = 0.2
#: (a, b, question): a is compared against b.
COMPARISONS: tuple[tuple[str, str, str], ...] = (
    ("ar", "pr", "AR training vs PR training"),
    ("ar+pen", "ar", "co-occurrence penalty (alpha 0.2)"),
    ("rater-fusion", "ar", "rater fusion vs soft labels"),
    ("rater-fusion", "pr", "rater fusion vs consensus"),
    ("crowd-layer", "ar", "crowd layer (MW) vs soft labels"),
)
#: The scores of every comparison: (name, test rule, lower is better).
SCORES: tuple[tuple[str, str, bool], ...] = (
    ("truth_ce", "AR", True), ("vote_ll", "AR", False), ("auprc", "AR", False),
    ("uar", "MR", False))


@dataclass(frozen=True)
class Arm:
    """One model of the study: a submission, its configuration and its training rule."""

    label: str
    submission: str
    config: dict[str, Any] = field(hash=False)
    train_rule: str


def arms(backbone: dict[str, Any] | None = None) -> list[Arm]:
    bb = {**BACKBONE, **(backbone or {})}
    soft = {**bb, "loss": "cb_soft_ce"}
    rater = {**bb, "min_ratings": 20}
    return [
        Arm("pr", "blstm-fc", soft, "PR"),
        Arm("ar", "blstm-fc", soft, "AR"),
        Arm("ar+pen", "blstm-fc", {**soft, "penalty_alpha": PENALTY_ALPHA}, "AR"),
        Arm("rater-fusion", "rater-fusion", rater, "AR"),
        Arm("crowd-layer", "crowd-layer", {**rater, "kind": "MW"}, "AR"),
    ]


def level_task(level: str) -> Task:
    """The demo task rebuilt on the demo generated at one heterogeneity level.

    Named ``demo-het-<level>`` and not frozen (its fingerprint is reported);
    the folds are the demo's.
    """
    from ..demo import ensure_demo_corpus
    from ..tasks.registry import get_spec
    from ..tasks.task import build_ratings

    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, not {level!r}")
    spec = dataclasses.replace(get_spec("demo"), name=f"demo-het-{level}", frozen=False)
    table, _, truth = build_ratings(spec, ensure_demo_corpus(heterogeneity=level))
    return Task(spec, table, truth)


# ----------------------------------------------------------------------------- truth scores


Loaded = list[tuple[CellKey, np.ndarray, np.ndarray]]


def truth_ce(truth: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Per-clip cross-entropy ``-sum_k t_k log p_k`` of predictions against the true answers.

    >>> truth_ce(np.array([[0.5, 0.5]]), np.array([[0.5, 0.5]])).round(4)
    array([0.6931])
    """
    p = np.clip(probs / probs.sum(axis=1, keepdims=True), 1e-12, 1.0)
    return -(truth * np.log(p)).sum(axis=1)


@dataclass
class TruthPair:
    diff: float
    ci: tuple[float, float]
    p: float
    seed_diffs: list[float]
    seed_agreement: str


def _per_fold(task: Task, cells: Loaded) -> dict[int, dict[int, tuple[np.ndarray, np.ndarray]]]:
    """{fold: {seed: (per-clip truth_ce, ones)}} over the fold's AR test clips."""
    assert task.truth is not None
    out: dict[int, dict[int, tuple[np.ndarray, np.ndarray]]] = {}
    for key, ids, p in cells:
        t = task.truth.reindex(ids.astype(str)).to_numpy(dtype=np.float64)
        out.setdefault(key.fold, {})[key.seed] = (truth_ce(t, p), np.ones(len(ids)))
    return out


def _vote_ll_per_fold(task: Task, cells: Loaded, raters: dict[tuple[int, int], Any]
                      ) -> dict[int, dict[int, tuple[np.ndarray, np.ndarray]]]:
    """{fold: {seed: (per-clip summed vote log-likelihood, per-clip counted votes)}}.

    Each counted vote (serbench.rater_eval) is scored with the submission's
    distribution for that rater (``predict_rater_proba``) when the cell stored
    one, else with its clip distribution, as the scorer's ``vote_ll`` does.
    """
    from .. import rater_eval as RE

    out: dict[int, dict[int, tuple[np.ndarray, np.ndarray]]] = {}
    for key, ids, p in cells:
        fv = RE.fold_votes(task, key.fold)
        if not len(fv.vote):
            continue
        if not np.array_equal(fv.ids.astype(str), ids.astype(str)):
            raise ValueError(f"fold {key.fold}: prediction rows are not the AR test clips")
        rp = raters.get((key.fold, key.seed))
        q = (rp.for_votes(fv.ids[fv.clip], fv.rater) if rp is not None
             else (p / p.sum(axis=1, keepdims=True))[fv.clip])
        ll = np.log(np.maximum(q[np.arange(len(fv.vote)), fv.vote], 1e-8))
        out.setdefault(key.fold, {})[key.seed] = (
            np.bincount(fv.clip, weights=ll, minlength=len(fv.ids)),
            np.bincount(fv.clip, minlength=len(fv.ids)).astype(np.float64))
    return out


def _paired(fa: dict[int, dict[int, tuple[np.ndarray, np.ndarray]]],
            fb: dict[int, dict[int, tuple[np.ndarray, np.ndarray]]], n_resamples: int,
            seed: int) -> TruthPair:
    """Mean over folds of the per-seed ratio ``sum(num_a - num_b) / sum(den)`` over clips.

    Hierarchical bootstrap: per fold, each resample draws the training seeds
    with replacement, then the fold's clips with replacement (the same clips for
    every seed and both sides).
    """
    folds = sorted(set(fa) & set(fb))
    seeds = sorted(set.intersection(*[set(fa[f]) & set(fb[f]) for f in folds])) if folds else []
    if not seeds:
        raise ValueError("the two arms share no cell")
    boot = np.zeros(n_resamples)
    point = 0.0
    per_seed = np.zeros(len(seeds))
    for i, fold in enumerate(folds):
        d = np.stack([fa[fold][s][0] - fb[fold][s][0] for s in seeds])  # [S, N]
        den = fa[fold][seeds[0]][1]
        ratio = d.sum(axis=1) / den.sum()
        point += ratio.mean()
        per_seed += ratio
        stats = np.vstack([d, den[None]]).T.astype(np.float32)  # [N, S + 1]
        sums = np.vstack([bs.chunk_sums(w, stats) for w in
                          bs.resample_weights(d.shape[1], n_resamples, (seed, fold))])
        boot += bs.seed_resampled_mean((sums[:, :-1] / sums[:, -1:]).T, (seed, fold, i))
    boot /= len(folds)
    per_seed /= len(folds)
    sign = np.sign(point / len(folds))
    agree = int((np.sign(per_seed) == sign).sum())
    return TruthPair(float(point / len(folds)), bs.percentile_interval(boot),
                     bs.paired_p_value(boot), [float(x) for x in per_seed],
                     f"{agree}/{len(seeds)}")


def paired_truth(task: Task, a: Loaded, b: Loaded, *, n_resamples: int = 1000,
                 seed: int = 0) -> TruthPair:
    """Mean over folds of ``truth_ce(a) - truth_ce(b)``: hierarchical bootstrap (seeds, clips).

    Per fold, the per-clip differences of each training seed shared by both
    sides; each resample draws the seeds with replacement, then the fold's
    clips with replacement (the same clips for every seed), and averages.
    """
    return _paired(_per_fold(task, a), _per_fold(task, b), n_resamples, seed)


def paired_vote_ll(task: Task, a: Loaded, b: Loaded, raters_a: dict[tuple[int, int], Any],
                   raters_b: dict[tuple[int, int], Any], *, n_resamples: int = 1000,
                   seed: int = 0) -> TruthPair:
    """Difference of the mean vote log-likelihood (nats per vote), paired on fold, seed, clip."""
    return _paired(_vote_ll_per_fold(task, a, raters_a), _vote_ll_per_fold(task, b, raters_b),
                   n_resamples, seed)


# ----------------------------------------------------------------------------- rules vs truth


#: The test rules the study compares with the truth: the task's, plus Dawid-Skene.
TRUTH_RULES = ("MR", "PR", "AR", "DS")


def rules_against_truth(task: Task, loaded: dict[str, Loaded], level: str) -> dict[str, Any]:
    """Which rule's test targets are closest to the true mixtures, and the arms' ranks per rule.

    The level's task gains the Dawid-Skene rule (per-rater DS: the demo has rater
    ids) for scoring only; its test clips are the AR test clips, so every cell's
    predictions score on it.  ``truth``: :func:`serbench.truth.task_truth_report`
    on the level's ``clips.csv`` (true mixtures).  ``ranks``: the arms' mean AUPRC
    on each rule's test sets (rank 1 = best).
    """
    import pandas as pd

    from ..demo import ensure_demo_corpus
    from ..scoring import score_probs
    from ..truth import closest_rule, task_truth_report

    spec = dataclasses.replace(task.spec, rules=TRUTH_RULES)
    scored = Task(spec, task.ratings, task.truth)
    clips = pd.read_csv(ensure_demo_corpus(heterogeneity=level) / "clips.csv")
    report = task_truth_report(scored, clips)
    auprc: dict[str, dict[str, float]] = {}
    for label, cells in loaded.items():
        sc = [score_probs(scored, k, ids, p, metrics=("auprc",), n_resamples=0)
              for k, ids, p in cells]
        auprc[label] = {r: float(np.mean([s.point[r]["auprc"] for s in sc])) for r in TRUTH_RULES}
    ranks = {r: {lb: 1 + sorted(-auprc[x][r] for x in auprc).index(-auprc[lb][r])
                 for lb in auprc} for r in TRUTH_RULES}
    return {"truth": report, "closest_rule": closest_rule(report, clips="all"),
            "auprc_by_rule": auprc, "ranks": ranks,
            "ds": scored.summary().get("aggregation", {})}


# ----------------------------------------------------------------------------- run and score


def _load(task: Task, runs: Path, arm: Arm, folds: list[int], seeds: list[int]
          ) -> tuple[Loaded, dict[tuple[int, int], Any]]:
    """An arm's finished cells, and {(fold, seed): its per-rater predictions, or None}.

    Every arm is presented under the AR rule's key: the comparisons pair cells on
    (fold, seed) whatever the arm was trained on.
    """
    from ..scoring import load_rater_probs

    records = finished(task, runs, arm.label, arm.train_rule, folds, seeds)
    cells = [(dataclasses.replace(r.key, train_rule="AR"), *load_probs(task, r))
             for r in records]
    raters = {(r.key.fold, r.key.seed): load_rater_probs(task, r) for r in records}
    return sorted(cells, key=lambda x: (x[0].seed, x[0].fold)), raters


def run(levels: Sequence[str], study_arms: list[Arm], *, runs: str | Path, folds: list[int],
        seeds: list[int], device: str = "auto",
        hooks: Callable[[str, Arm, int], Hooks] | None = None,
        tasks: dict[str, Task] | None = None, jobs: int | None = None
        ) -> tuple[dict[str, list[CellResult]], list[tuple[str, CellResult]]]:
    """Every arm's cells on every level (resumable): {level/arm: cells}, failed cells.

    ``tasks``: the levels' tasks when the caller built them (:func:`level_task`),
    so that running and scoring build each once.  ``jobs``: CPU cells at once (None: one
    per core, as ``serbench run``).
    """
    from ..executors import make
    from ..grid import run_cells
    from ..plugins import resolve
    from ..runner import Runner

    executor = make("local", jobs=jobs)
    cells: dict[str, list[CellResult]] = {}
    failed: list[tuple[str, CellResult]] = []
    for level in levels:
        task = tasks[level] if tasks and level in tasks else level_task(level)
        for arm in study_arms:
            runner = Runner(task, resolve(arm.submission), arm.config, runs=runs,
                            device=executor.device(device), label=arm.label)
            keys = runner.cells(folds, [arm.train_rule], seeds)
            res = run_cells(runner, keys, executor, hooks(level, arm, len(keys)) if hooks
                            else None)
            cells[f"{level}/{arm.label}"] = res
            failed += [(f"{level}/{arm.label}", r) for r in res if r.status == "failed"]
    return cells, failed


@dataclass
class Row:
    level: str
    a: str
    b: str
    question: str
    score: str
    test_rule: str
    diff: float
    ci: tuple[float, float]
    p: float
    seed_diffs: list[float]
    seed_agreement: str
    verdict: str


@dataclass
class Report:
    levels: list[str]
    folds: list[int]
    seeds: list[int]
    arms: list[dict[str, Any]]
    #: Per level: Krippendorff's alpha, fingerprint and the arms' mean scores.
    level_info: dict[str, dict[str, Any]]
    rows: list[Row]


def verdict(diff: float, ci: tuple[float, float], lower_is_better: bool) -> str:
    """``helps`` / ``hurts`` when the interval excludes 0, else ``ties``."""
    if ci[0] <= 0.0 <= ci[1] or not np.isfinite(diff):
        return "ties"
    better = diff < 0 if lower_is_better else diff > 0
    return "helps" if better else "hurts"


def score(levels: Sequence[str], study_arms: list[Arm], *, runs: str | Path, folds: list[int],
          seeds: list[int], n_resamples: int = 1000,
          tasks: dict[str, Task] | None = None) -> Report:
    from ..agreement import krippendorff_alpha
    from ..scoring import score_probs

    runs = Path(runs)
    by_label = {a.label: a for a in study_arms}
    rows: list[Row] = []
    info: dict[str, dict[str, Any]] = {}
    for level in levels:
        task = tasks[level] if tasks and level in tasks else level_task(level)
        both = {a.label: _load(task, runs, a, folds, seeds) for a in study_arms}
        loaded = {label: cells for label, (cells, _) in both.items()}
        raters = {label: rp for label, (_, rp) in both.items()}
        missing = [lb for lb, c in loaded.items() if not c]
        if missing:
            from ..errors import InputError
            raise InputError(f"level {level}: no finished cells for {missing} under {runs}",
                             fix="run the study first (serbench study runs and scores)")
        means: dict[str, dict[str, float]] = {}
        for lb, cells in loaded.items():
            assert task.truth is not None
            tce = [float(truth_ce(task.truth.reindex(ids.astype(str)).to_numpy(), p).mean())
                   for _, ids, p in cells]
            sc = [score_probs(task, k, ids, p, metrics=("auprc", "uar"), n_resamples=0)
                  for k, ids, p in cells]
            vll = _vote_ll_per_fold(task, cells, raters[lb])
            means[lb] = {"truth_ce": float(np.mean(tce)),
                         "vote_ll": float(np.mean([v[0].sum() / v[1].sum()
                                                   for f in vll.values() for v in f.values()])),
                         "auprc": float(np.mean([s.point["AR"]["auprc"] for s in sc])),
                         "uar": float(np.mean([s.point["MR"]["uar"] for s in sc]))}
        info[level] = {"krippendorff_alpha": round(krippendorff_alpha(task.counts.counts), 4),
                       "fingerprint": task.fingerprint["fingerprint"], "means": means,
                       **rules_against_truth(task, loaded, level)}
        for a, b, question in COMPARISONS:
            if a not in by_label or b not in by_label:
                continue
            for name, test_rule, lower in SCORES:
                if name in ("truth_ce", "vote_ll"):
                    tp = paired_truth(task, loaded[a], loaded[b], n_resamples=n_resamples) \
                        if name == "truth_ce" else paired_vote_ll(
                            task, loaded[a], loaded[b], raters[a], raters[b],
                            n_resamples=n_resamples)
                    diff, ci, p, sd, agree = tp.diff, tp.ci, tp.p, tp.seed_diffs, \
                        tp.seed_agreement
                else:
                    c = compare(task, loaded[a], loaded[b], metric=name, train_rule="AR",
                                test_rule=test_rule, n_resamples=n_resamples)
                    diff, ci, p, sd, agree = c.diff, c.diff_ci, c.p_bootstrap, \
                        list(c.seed_diffs), c.seed_agreement
                rows.append(Row(level, a, b, question, name, test_rule, float(diff),
                                (float(ci[0]), float(ci[1])), float(p), [float(x) for x in sd],
                                agree, verdict(diff, ci, lower)))
    return Report(list(levels), folds, seeds, [asdict(a) for a in study_arms], info, rows)


# ----------------------------------------------------------------------------- output


def markdown(rep: Report) -> str:
    lines = [
        "# Rater-heterogeneity study on demo v2",
        "",
        f"Folds {', '.join(map(str, rep.folds))}; training seeds "
        f"{', '.join(map(str, rep.seeds))}. Every arm shares one backbone "
        "(see the JSON for the configurations). A difference is a − b, paired on fold and "
        "seed; its 95 % interval is a hierarchical bootstrap over seeds, then test clips. "
        "`truth_ce` is the cross-entropy against the clip's true answer distribution "
        "(lower is better); AUPRC on the AR test set and UAR on the MR test set are the "
        "task's scores against the observed votes. **helps** / **hurts**: the interval "
        "excludes 0; otherwise **ties**. Seeds: how many training seeds give the "
        "difference the mean's sign. `alpha`: Krippendorff's alpha of the level's votes "
        "(CREMA-D voice: 0.281).",
        "",
        "| level | alpha | " + " | ".join(a["label"] + " truth_ce" for a in rep.arms) + " |",
        "|---|---|" + "---|" * len(rep.arms),
    ]
    for level in rep.levels:
        i = rep.level_info[level]
        lines.append(f"| {level} | {i['krippendorff_alpha']:.3f} | " + " | ".join(
            f"{i['means'][a['label']]['truth_ce']:.4f}" for a in rep.arms) + " |")
    lines += ["", "Mean log-likelihood of each test rater's own answer (`vote_ll`, nats per "
              "vote; rater fusion and the crowd layer with their per-rater outputs):", "",
              "| level | " + " | ".join(a["label"] for a in rep.arms) + " |",
              "|---|" + "---|" * len(rep.arms)]
    for level in rep.levels:
        i = rep.level_info[level]
        lines.append(f"| {level} | " + " | ".join(
            f"{i['means'][a['label']]['vote_ll']:.4f}" for a in rep.arms) + " |")
    lines += ["", "Which rule's test targets are closest to the true mixtures (all clips; a clip a "
              "rule drops counts as the uniform target). TV: total variation; acc: top class "
              "agrees with the truth's.", "",
              "| level | rule | coverage | TV | JS | acc |", "|---|---|---|---|---|---|"]
    for level in rep.levels:
        i = rep.level_info[level]
        for rule, v in i["truth"].items():
            star = " (closest)" if rule == i["closest_rule"] else ""
            lines.append(f"| {level} | {rule}{star} | {v['coverage']:.3f} | "
                         f"{v['all']['tv']:.3f} | {v['all']['js']:.3f} | "
                         f"{v['all']['accuracy']:.3f} |")
    lines += ["", "How the arms rank by AUPRC on each rule's test sets (rank 1 = best; mean "
              "AUPRC in brackets):", "",
              "| level | arm | " + " | ".join(TRUTH_RULES) + " |",
              "|---|---|" + "---|" * len(TRUTH_RULES)]
    for level in rep.levels:
        i = rep.level_info[level]
        for a in rep.arms:
            lb = a["label"]
            lines.append(f"| {level} | {lb} | " + " | ".join(
                f"{i['ranks'][r][lb]} ({i['auprc_by_rule'][lb][r]:.3f})" for r in TRUTH_RULES)
                + " |")
    lines += ["", "| level | comparison | score | diff | 95 % CI | p | seeds | verdict |",
              "|---|---|---|---|---|---|---|---|"]
    for r in rep.rows:
        lines.append(f"| {r.level} | {r.question} | {r.score} ({r.test_rule}) | "
                     f"{r.diff:+.4f} | [{r.ci[0]:+.4f}, {r.ci[1]:+.4f}] | {r.p:.3f} | "
                     f"{r.seed_agreement} | **{r.verdict}** |")
    return "\n".join(lines) + "\n"


def plot(rep: Report) -> str:
    """SVG: per comparison and score, the difference with its interval at each level."""
    questions = [q for _, _, q in COMPARISONS if any(r.question == q for r in rep.rows)]
    panels = []
    for sname, _, lower in SCORES:
        values = {}
        for level in rep.levels:
            rows = {r.question: r for r in rep.rows if r.score == sname and r.level == level}
            values[level] = [(rows[q].diff, rows[q].ci) if q in rows else None
                             for q in questions]
        panels.append({"title": sname + (" (lower is better)" if lower else ""),
                       "values": values})
    return plots.difference_dots(panels, questions, list(rep.levels), legend="heterogeneity")


def write(rep: Report, out: str | Path) -> list[Path]:
    return write_report(out, "study", markdown(rep), rep, plot(rep))
