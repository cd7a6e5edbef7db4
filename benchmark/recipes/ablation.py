"""The ablation recipe of the paper's claims: losses with and without the co-occurrence
penalty, and rater fusion against consensus and crowd-layer models.

One call plans the variants (each a submission plus a configuration, recorded
under its own name), runs every variant on the same folds, training rule and
seeds through the ordinary :class:`serbench.runner.Runner` (so records,
resume and validation are the runner's), then scores them and pairs them:

* **losses**: for each base loss (CE, BCE, KL, CB soft CE) the BLSTM-FC
  baseline with ``penalty_alpha = 0`` and each requested alpha; scored with the
  task's primary metric (macro-F1 with the 1/K rule on the AR test set for the
  multi-rater tasks; UAR on the MR test set where the primary metric needs a
  consensus label, e.g. EmoDB), each alpha paired against alpha 0 of the same loss;
* **raters**: the hard-label consensus model (BLSTM-FC, CE), rater fusion and
  the crowd layers (MW, and CrowdH / CrowdS); scored by UAR on the MR test set
  (the consensus target of "Every Rating Matters"), rater fusion paired
  against each of the others.

Intervals are hierarchical bootstraps of the mean over the cells run (training
seeds resampled, then test clips, per fold); comparisons give the paired
bootstrap difference with its interval and p-value, the difference per training
seed and how many seeds agree in sign, and the 40-subset paired t-test, refused
with the reason when test sets are too small (:func:`serbench.summaries.compare`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import plots
from ..cell import CellResult
from ..errors import InputError
from ..executors import Hooks
from ..methods.crowd import KINDS as CROWD_KINDS
from ..methods.losses import LOSSES as KNOWN_LOSSES
from ..methods.raters import has_rater_ids
from ..records import CellKey, find_records
from ..scoring import applicable, load_probs, score_probs
from ..summaries import compare, hierarchical_interval
from ..tasks.task import Task
from .shared import finished, write_report

#: The BLSTM-FC options ``--penalty`` may set (applied to the variants with a penalty only).
PENALTY_OPTIONS = ("penalty_form", "penalty_combine", "cooc_mode", "cooc_norm")
LOSSES = ("ce", "bce", "kl", "cb_soft_ce")
ALPHAS = (0.0, 0.2)
RATER_METRIC, RATER_TEST = "uar", "MR"


@dataclass(frozen=True)
class Variant:
    """One configuration of one submission, recorded under ``label``."""

    label: str
    submission: str
    config: dict[str, Any] = field(hash=False)
    family: str  # "loss" or "raters"
    loss: str | None = None
    alpha: float | None = None


def _alpha_label(alpha: float) -> str:
    return f"{alpha:g}"


def plan(*, losses: Sequence[str] = LOSSES, alphas: Sequence[float] = ALPHAS,
         raters: bool = True, crowd_kinds: Sequence[str] = ("MW",),
         backbone: dict[str, Any] | None = None, penalty: dict[str, Any] | None = None,
         min_ratings: int = 20) -> list[Variant]:
    """The variants of an ablation; every one shares ``backbone`` (BLSTM-FC options)."""
    backbone = dict(backbone or {})
    penalty = dict(penalty or {})
    bad = [x for x in losses if x not in KNOWN_LOSSES]
    if bad:
        raise InputError(f"--losses: unknown loss(es) {bad}",
                         fix=f"use some of {', '.join(KNOWN_LOSSES)}")
    bad = [k for k in crowd_kinds if k not in CROWD_KINDS] if raters else []
    if bad:
        raise InputError(f"--crowd-kinds: unknown crowd layer kind(s) {bad}",
                         fix=f"use some of {', '.join(CROWD_KINDS)} (upper case)")
    bad = sorted(set(penalty) - set(PENALTY_OPTIONS))
    if bad:
        raise InputError(f"--penalty: {', '.join(bad)} is not a penalty option",
                         fix=f"penalty options: {', '.join(PENALTY_OPTIONS)}; other BLSTM-FC "
                             "options go in --config")
    alphas = sorted({float(a) for a in alphas} | {0.0})
    out: list[Variant] = []
    for loss in losses:
        for a in alphas:
            label = f"blstm-fc+{loss}" + (f"+pen{_alpha_label(a)}" if a > 0 else "")
            cfg = {**backbone, "loss": loss, "penalty_alpha": a, **(penalty if a > 0 else {})}
            out.append(Variant(label, "blstm-fc", cfg, "loss", loss, a))
    if raters:
        if "ce" not in losses:  # the consensus model
            out.append(Variant("blstm-fc+ce", "blstm-fc",
                               {**backbone, "loss": "ce", "penalty_alpha": 0.0}, "raters"))
        rater = {**backbone, "min_ratings": min_ratings}
        out.append(Variant("rater-fusion", "rater-fusion", rater, "raters"))
        for kind in crowd_kinds:
            out.append(Variant(f"crowd-layer-{kind}", "crowd-layer", {**rater, "kind": kind},
                               "raters"))
        # CrowdH / CrowdS: the crowd term averaged over answers, so the consensus term weighs
        # like it (with the reference's sum it is drowned by ~7 answers per clip)
        for label, consensus in (("crowdh", "hard"), ("crowds", "soft")):
            out.append(Variant(label, "crowd-layer", {**rater, "kind": "MW", "consensus": consensus,
                                                      "reduction": "mean"}, "raters"))
    return out


# ----------------------------------------------------------------------------- scoring


@dataclass
class Summary:
    label: str
    metric: str
    test_rule: str
    cells: int
    mean: float
    ci: tuple[float, float]


@dataclass
class Pair:
    a: str
    b: str
    metric: str
    test_rule: str
    cells: int
    diff: float
    diff_ci: tuple[float, float]
    p_bootstrap: float
    p_subsets: float
    #: The difference per training seed, and in how many seeds it has the mean's sign.
    seed_diffs: list[float] = field(default_factory=list)
    seed_agreement: str = ""
    #: Why the subset t-test was refused (test sets too small), else "".
    t_test_refused: str = ""


@dataclass
class Report:
    task: str
    fingerprint: str
    train_rule: str
    folds: list[int]
    seeds: list[int]
    variants: list[dict[str, Any]]
    summaries: list[Summary]
    pairs: list[Pair]
    seconds: dict[str, float]
    loss_metric: str = "multilabel_macro_f1"
    loss_test: str = "AR"
    #: Warnings recorded by the variants' cells (e.g. an empty co-occurrence matrix), by label.
    warnings: dict[str, list[str]] = field(default_factory=dict)

    def summary(self, label: str, metric: str, test_rule: str) -> Summary | None:
        return next((s for s in self.summaries if (s.label, s.metric, s.test_rule)
                     == (label, metric, test_rule)), None)


Loaded = list[tuple[CellKey, np.ndarray, np.ndarray]]


def _load(task: Task, runs: Path, label: str, train_rule: str, folds: list[int],
          seeds: list[int]) -> Loaded:
    out = [(r.key, *load_probs(task, r))
           for r in finished(task, runs, label, train_rule, folds, seeds)]
    return sorted(out, key=lambda x: (x[0].seed, x[0].fold))


def _recorded_warnings(task: Task, runs: Path, label: str) -> list[str]:
    """The distinct ``warnings`` the runner recorded in a variant's cells."""
    records, _ = find_records(runs / task.spec.name / label)
    return list(dict.fromkeys(w for r in records for w in r.data.get("warnings") or []))


def _summarise(task: Task, label: str, loaded: Loaded, wanted: list[tuple[str, str]],
               n_resamples: int) -> list[Summary]:
    """One scoring pass over the variant's cells gives every (metric, test rule) summary."""
    metrics = tuple(dict.fromkeys(m for m, _ in wanted))
    scores = [score_probs(task, key, ids, p, metrics=metrics, n_resamples=n_resamples)
              for key, ids, p in loaded]
    out = []
    for metric, test_rule in wanted:
        vals = [float(v) for s in scores if (v := s.point[test_rule][metric]) is not None]
        mean, (lo, hi) = hierarchical_interval(scores, test_rule, metric)
        out.append(Summary(label, metric, test_rule, len(vals), float(mean), (lo, hi)))
    return out


def score(task: Task, runs: str | Path, variants: list[Variant], *, train_rule: str,
          folds: list[int], seeds: list[int], n_resamples: int = 1000,
          seconds: dict[str, float] | None = None) -> Report:
    """Summaries of every variant and the paired comparisons of the recipe."""
    runs = Path(runs)
    loaded = {v.label: _load(task, runs, v.label, train_rule, folds, seeds) for v in variants}
    missing = [label for label, cells in loaded.items() if not cells]
    if missing:
        from ..errors import InputError
        raise InputError(f"no finished cells for {missing} under {runs}",
                         fix="run the ablation first (serbench ablate runs and scores)")
    summaries: list[Summary] = []
    pairs: list[Pair] = []
    loss_metric = task.spec.primary_metric
    loss_test = "AR" if applicable(loss_metric, "AR") else "MR"

    def pair(a: str, b: str, metric: str, test_rule: str) -> None:
        c = compare(task, loaded[a], loaded[b], metric=metric, train_rule=train_rule,
                    test_rule=test_rule, n_resamples=n_resamples)
        pairs.append(Pair(a, b, metric, test_rule, c.cells, c.diff, c.diff_ci, c.p_bootstrap,
                          c.p_subsets, list(c.seed_diffs), c.seed_agreement, c.t_test_refused))

    wanted = list(dict.fromkeys([(loss_metric, loss_test), (RATER_METRIC, RATER_TEST)]))
    for v in variants:
        summaries += _summarise(task, v.label, loaded[v.label], wanted, n_resamples)
    by_loss: dict[str, list[Variant]] = {}
    for v in variants:
        if v.family == "loss":
            by_loss.setdefault(str(v.loss), []).append(v)
    for group in by_loss.values():
        base = next((v for v in group if v.alpha == 0), None)
        for v in group:
            if base is not None and v is not base:
                pair(v.label, base.label, loss_metric, loss_test)
    labels = {v.label for v in variants}
    if "rater-fusion" in labels:
        for other in ["blstm-fc+ce", *sorted(x for x in labels if x.startswith("crowd"))]:
            if other in labels:
                pair("rater-fusion", other, RATER_METRIC, RATER_TEST)
    noted = {v.label: _recorded_warnings(task, runs, v.label) for v in variants}
    return Report(task.spec.name, task.fingerprint["fingerprint"], train_rule, folds, seeds,
                  [asdict(v) for v in variants], summaries, pairs, dict(seconds or {}),
                  loss_metric, loss_test, {k: w for k, w in noted.items() if w})


# ----------------------------------------------------------------------------- output


def _ci(s: Summary | None) -> str:
    if s is None:
        return "—"
    return f"{s.mean:.4f} [{s.ci[0]:.4f}, {s.ci[1]:.4f}]"


def _pair(p: Pair | None) -> str:
    if p is None:
        return "—"
    t_test = f"t-test n/a ({p.t_test_refused})" if p.t_test_refused else \
        f"p_t {p.p_subsets:.3g}"
    seeds = f"; same sign in {p.seed_agreement} seeds" if p.seed_agreement else ""
    return (f"{p.diff:+.4f} [{p.diff_ci[0]:+.4f}, {p.diff_ci[1]:+.4f}]; "
            f"p_boot {p.p_bootstrap:.3f}, {t_test}{seeds}")


def _table_row(cells: Sequence[str]) -> str:
    """One Markdown table row; a ``|`` inside a cell (a JSON config) is escaped so that it
    cannot split the cell (GitHub-flavoured Markdown splits on it even inside code spans)."""
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def markdown(rep: Report, *, configs: bool = True) -> str:
    """The two comparison tables (and, with ``configs``, every variant's) as Markdown."""
    variants = [Variant(**v) for v in rep.variants]
    loss_metric, loss_test = rep.loss_metric, rep.loss_test
    lines = [f"# Ablation on `{rep.task}` (fingerprint `{rep.fingerprint}`)", "",
             f"Training rule {rep.train_rule}; folds {rep.folds}; seeds {rep.seeds}. "
             "Means over folds and seeds with a 95% hierarchical bootstrap interval "
             "(training seeds resampled, then test clips); differences are paired (same "
             "resamples), with the bootstrap p-value, the 40-subset paired t-test p-value "
             "(n/a with the reason when a test set has fewer than 40 clips) and in how many "
             "training seeds the difference has the sign of the mean.", ""]
    for text in dict.fromkeys(w for ws in rep.warnings.values() for w in ws):
        who = ", ".join(label for label, ws in rep.warnings.items() if text in ws)
        lines += [f"> **Warning** ({who}): {text}", ""]
    losses = [v for v in variants if v.family == "loss"]
    if losses:
        alphas = sorted({float(v.alpha or 0) for v in losses})
        head = ["loss", *[f"alpha {_alpha_label(a)}" for a in alphas],
                *[f"alpha {_alpha_label(a)} − alpha 0" for a in alphas if a > 0]]
        lines += [f"## Losses: {loss_metric} on the {loss_test} test set", "",
                  _table_row(head), "|---" * len(head) + "|"]
        for loss in dict.fromkeys(v.loss for v in losses):
            row = {float(v.alpha or 0): v for v in losses if v.loss == loss}
            cells = [_ci(rep.summary(row[a].label, loss_metric, loss_test)) if a in row else "—"
                     for a in alphas]
            diffs = []
            for a in alphas:
                if a == 0:
                    continue
                p = next((p for p in rep.pairs if a in row and p.a == row[a].label
                          and p.metric == loss_metric and p.b != "rater-fusion"), None)
                diffs.append(_pair(p))
            lines.append(_table_row([str(loss), *cells, *diffs]))
        lines.append("")
    raters = [v for v in variants if v.family == "raters" or v.label == "blstm-fc+ce"]
    if any(v.family == "raters" for v in variants):
        lines += [f"## Raters: {RATER_METRIC} on the {RATER_TEST} test set", "",
                  f"| model | {RATER_METRIC} | rater-fusion − model |", "|---|---|---|"]
        for v in raters:
            p = next((p for p in rep.pairs if p.a == "rater-fusion" and p.b == v.label), None)
            lines.append(f"| {v.label} | {_ci(rep.summary(v.label, RATER_METRIC, RATER_TEST))}"
                         f" | {_pair(p) if p else ''} |")
        lines.append("")
    if not configs:
        return "\n".join(lines) + "\n"
    lines += ["## Every variant on both measures", "",
              f"| variant | submission | {loss_metric} ({loss_test}) | {RATER_METRIC} "
              f"({RATER_TEST}) | config |", "|---|---|---|---|---|"]
    for v in variants:
        cfg = json.dumps(v.config, sort_keys=True)
        lines.append(_table_row([v.label, v.submission,
                                 _ci(rep.summary(v.label, loss_metric, loss_test)),
                                 _ci(rep.summary(v.label, RATER_METRIC, RATER_TEST)),
                                 f"`{cfg}`"]))
    outside = [f"{s.label} ({s.metric})" for s in rep.summaries
               if not s.ci[0] - 1e-12 <= s.mean <= s.ci[1] + 1e-12]
    if outside:
        lines += ["", "Intervals that do not contain their point estimate: " + ", ".join(outside)
                  + ". UAR averages recall over the classes *present* in a test set; a bootstrap "
                  "resample of a small test set often loses a rare class, which tends to raise "
                  "its UAR, so the percentile interval sits above the point. Read those "
                  "intervals as a sign that the test sets are small."]
    if rep.seconds and sum(rep.seconds.values()) > 0:
        total = sum(rep.seconds.values())
        lines += ["", f"Run time: {total:.0f} s for the cells run in this call."]
    return "\n".join(lines) + "\n"


def plot(rep: Report) -> str:
    """Two bar charts with 95% intervals: loss variants and rater models (deterministic SVG)."""
    variants = [Variant(**v) for v in rep.variants]
    groups = [(rep.loss_metric, rep.loss_test, [v for v in variants if v.family == "loss"]),
              (RATER_METRIC, RATER_TEST,
               [v for v in variants if v.family == "raters" or v.label == "blstm-fc+ce"])]
    panels = []
    for metric, test, vs in groups:
        if not vs:
            continue
        ss = [s for v in vs if (s := rep.summary(v.label, metric, test)) is not None]
        if len(ss) != len(vs):
            continue
        panels.append({"title": f"{rep.task}: {metric}, trained on {rep.train_rule}",
                       "ylabel": f"{metric} ({test} test)",
                       "labels": [v.label.replace("blstm-fc+", "") for v in vs],
                       "means": [s.mean for s in ss], "ci": [s.ci for s in ss],
                       "colours": ["#4c72b0" if (v.alpha or 0) == 0 else "#dd8452" for v in vs]})
    return plots.interval_bars(panels)


def write(rep: Report, out: str | Path) -> list[Path]:
    return write_report(out, "ablation", markdown(rep), rep, plot(rep))



def check(variants: Sequence[Variant], task: Task | None = None) -> None:
    """Refuse (exit 2), before any cell of any variant runs, a configuration that one of the
    submissions would refuse when its turn comes, naming the variant; and rater models on a
    ``task`` whose ratings have no rater ids (vote counts only: EmoDB's listener rates,
    CREMA-D's tables), which every one of their cells would refuse after the loss variants
    had trained."""
    from ..params import validate_config
    from ..plugins import resolve

    raters = [v.label for v in variants if v.family == "raters"]
    if task is not None and raters and not has_rater_ids(task.ratings):
        raise InputError(
            f"task {task.spec.name}: its ratings are vote counts without rater ids, so the "
            f"rater models ({', '.join(raters)}) cannot be trained on it",
            fix="add --no-raters to run the loss variants alone")
    for v in variants:
        cls = resolve(v.submission)
        try:
            cls(**validate_config(cls, v.config))
        except InputError as exc:
            raise InputError(f"variant {v.label}: {exc.problem}", file=exc.file,
                             fix=exc.fix) from None
        except (TypeError, ValueError) as exc:
            raise InputError(f"variant {v.label}: {v.submission} refused its configuration "
                             f"{json.dumps(v.config, sort_keys=True, default=str)}: {exc}",
                             fix="check the --config, --penalty, --alphas, --crowd-kinds and "
                                 "--min-ratings values (serbench ablate --help)") from None


def run(task: Task, variants: list[Variant], *, runs: str | Path, folds: list[int],
        seeds: list[int], train_rule: str, device: str = "auto",
        hooks: Callable[[Variant, int], Hooks] | None = None, jobs: int | None = None
        ) -> tuple[dict[str, float], list[tuple[str, CellResult]], dict[str, list[CellResult]]]:
    """Every variant's cells (resumable): seconds of training per variant, failed cells, all cells.

    ``hooks(variant, n_cells)`` gives the progress hooks of one variant's grid; ``jobs``: CPU
    cells at once (None: one per core, as ``serbench run``).
    """
    from ..executors import make
    from ..grid import run_cells
    from ..plugins import resolve
    from ..runner import Runner

    seconds: dict[str, float] = {}
    failed: list[tuple[str, CellResult]] = []
    cells: dict[str, list[CellResult]] = {}
    executor = make("local", jobs=jobs)
    for v in variants:
        runner = Runner(task, resolve(v.submission), v.config, runs=runs,
                        device=executor.device(device), label=v.label)
        keys = runner.cells(folds, [train_rule], seeds)
        results = run_cells(runner, keys, executor, hooks(v, len(keys)) if hooks else None)
        cells[v.label] = results
        seconds[v.label] = round(sum(r.seconds for r in results if r.status == "done"), 1)
        failed += [(v.label, r) for r in results if r.status == "failed"]
    return seconds, failed, cells
