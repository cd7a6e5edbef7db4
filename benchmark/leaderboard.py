"""The leaderboard, regenerated from stored run records alone.

``serbench leaderboard`` reads every ``record.json`` under the runs folder,
validates and scores its predictions against the prepared task, aggregates
over folds and seeds, and writes, deterministically (the same records give
byte-identical files):

* ``README.md``: per task, one row per (submission, training rule) with the
  primary metric on the AR test set (mean, 95% bootstrap interval, spread over
  folds), secondary metrics, folds and fingerprint; then the training rule x
  test rule table of each submission (3x3 for MR, PR, AR; one row and column more
  per model rule the task declares, e.g. 4x4 with DS);
* ``leaderboard.csv`` (long format) and ``leaderboard.json``;
* ``index.html`` with sortable tables and plots (``plots/*.svg``): training x
  test rule heat maps, per-class F1 bars, confusion heat maps.

Cells that are missing (a training rule without every fold) are shown as
missing, never as zero, and the rows they leave partial are listed under the table
with the cells they lack (a score missing, not one never computed); a task with no
complete training rule says why its rater-level section has no table.  Unreadable or
invalid records are skipped and listed.  Regenerating removes the plots the stored
board wrote for rows it no longer has, and nothing else.
"""

from __future__ import annotations

import csv
import html
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import atomic, paths, plots, rater_eval, views
from . import bootstrap as bs
from .errors import InputError, NotPrepared, SerbenchError, reason
from .metrics import PAPER_METRIC
from .records import Record, find_records
from .reference import reference, row_kinds
from .scoring import (
    CellScores,
    conventions,
    independent_outputs,
    load_probs,
    load_rater_probs,
    score_fold,
    scored_metrics,
)
from .summaries import aggregate
from .tasks import load_task
from .views import MISSING, TaskBoard

__all__ = ["MISSING", "Board", "TaskBoard", "WouldDropRows", "build", "check", "dropped_rows",
           "guard_out", "partial_messages", "partial_rows", "stored_bootstrap", "stored_complete",
           "stored_rows", "write"]


@dataclass
class Board:
    tasks: list[TaskBoard] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, why)
    #: Tasks whose records could not be scored at all (not prepared here): name -> why.
    unavailable: dict[str, str] = field(default_factory=dict)
    #: The bootstrap settings of the intervals (stored in leaderboard.json as ``bootstrap``,
    #: so ``--check`` recomputes with the same ones).
    resamples: int = bs.DEFAULT_RESAMPLES
    seed: int = 0


def build(runs: str | Path, *, n_resamples: int = bs.DEFAULT_RESAMPLES, seed: int = 0,
          progress: Any = None) -> Board:
    """Score every record under ``runs`` and aggregate per (task, submission)."""
    paths.home()  # a home that cannot be used is one message, not every task "not available"
    records, bad = find_records(runs)
    board = Board(skipped=[(str(p), why) for p, why in bad], resamples=n_resamples, seed=seed)
    by_task: dict[str, list[Record]] = {}
    for r in records:
        by_task.setdefault(r.data["task"], []).append(r)
    for name in sorted(by_task):
        try:
            task = load_task(name)
        except (NotPrepared, SerbenchError) as exc:
            why = str(exc).splitlines()[0]
            board.unavailable[name] = f"{len(by_task[name])} record(s) not scored: {why}"
            board.skipped.extend((str(r.path), f"task not available: {why}") for r in by_task[name])
            continue
        cells: dict[str, list[CellScores]] = {}
        versions: dict[str, str] = {}
        marks: dict[str, list[str]] = {}
        loaded: dict[int, list[tuple[Any, ...]]] = {}
        for r in sorted(by_task[name], key=lambda r: str(r.path)):
            try:
                ids, probs = load_probs(task, r)
                loaded.setdefault(r.key.fold, []).append(
                    (r.key, ids, probs, independent_outputs(r), load_rater_probs(task, r)))
                versions[r.key.submission] = str(r.data["submission"].get("version", ""))
                mine = marks.setdefault(r.key.submission, [])
                for mark, on in (("transductive", bool((r.data.get("config") or {})
                                                       .get("transductive"))),
                                 ("external", r.data["submission"].get("plugin") == "external")):
                    if on and mark not in mine:
                        mine.append(mark)
            except SerbenchError as exc:  # the record's path is listed beside why, once
                board.skipped.append((str(r.path), reason(exc, r.path).splitlines()[0]))
            finally:
                if progress is not None:
                    progress()
        # every cell of a fold (all submissions and seeds) on one set of clip resamples
        for fold in sorted(loaded):
            for s in score_fold(task, [c[:3] for c in loaded[fold]], n_resamples=n_resamples,
                                seed=seed, independent=[c[3] for c in loaded[fold]],
                                rater_probs=[c[4] for c in loaded[fold]]):
                cells.setdefault(s.key.submission, []).append(s)
        aggs = [aggregate(task, cells[sub], seed=seed) for sub in sorted(cells)]
        board.tasks.append(TaskBoard(task, aggs, versions, reference(task), conventions(task),
                                     {k: v for k, v in marks.items() if v}))
    board.skipped.sort()
    return board


_fmt = views.fmt
_rows = views.table_rows
_three_by_three = views.three_by_three_values


# ----------------------------------------------------------------------------- writers


def _legend() -> list[str]:
    return ["Primary metric on the AR (all-inclusive) test set: mean over folds and training "
            "seeds, [95% hierarchical bootstrap interval: training seeds, then test clips], "
            "± standard deviation over folds (of the seed means), ± sd over seeds. "
            f"`{MISSING}` marks a missing result (not every fold of every seed was run), "
            "never a zero; `n/a` marks a value that is not defined, with the reason below. "
            "Reference rows are computed from the ratings alone (docs/methods.md): "
            "`prior` = the training split's class distribution for every clip, `best "
            "constant` = the input-independent prediction that scores best on the training "
            "split, `human` = one held-out rater vote scored against the target of the "
            "clip's remaining votes. `normalised` = (model − best constant) / (human − best "
            "constant). A submission marked `(transductive)` normalised each speaker with "
            "that speaker's own unlabelled features, the test speaker's included; one marked "
            "`(external)` was trained outside serbench and brought in with `serbench score`."]


def _notes(rows: list[dict[str, Any]]) -> list[str]:
    return [f"- {r['submission']}, {col if col != 'primary' else 'primary'}: n/a ({why})"
            for r in rows for col, why in r["notes"].items()]


def _rater_section(tb: TaskBoard, partial: list[views.PartialRow]
                   ) -> tuple[list[str], list[list[str]], list[str]]:
    """The rater-level table (:func:`views.rater_table`); its notes say that partial rows are
    left out of it when there are some."""
    head, body, notes = views.rater_table(tb)
    if body and partial:
        notes = [*notes, "partial rows (listed under the main table) are left out: "
                 + ", ".join(f"{p.submission} trained on {p.train_rule}" for p in partial)]
    return head, body, notes


def _markdown(board: Board) -> str:
    out = ["# serbench leaderboard", "",
           "Generated by `serbench leaderboard` from the run records under `runs/`; do not edit.",
           *_legend(), ""]
    if not board.tasks:
        out += ["No scored run records yet: run cells are written under `runs/` (see the "
                "project README) and this page is regenerated with `serbench leaderboard`.", ""]
    for tb in board.tasks:
        spec = tb.task.spec
        fp = tb.task.fingerprint["fingerprint"][:12]
        out += [f"## {spec.name}", "",
                f"{spec.k} classes, {tb.task.n_folds} folds, task fingerprint `{fp}`; "
                f"primary metric `{spec.primary_metric}`.", ""]
        out += [f"- {line}" for line in views.convention_lines(tb)] + [""]
        rows = _rows(tb)
        sec = [views.column_name(m, te) for m, te in views.secondary(tb)]
        head = ["submission", "version", "train rule", f"{spec.primary_metric} (AR test)",
                "95% CI", "± sd folds", "± sd seeds", "normalised", *sec, "folds", "seeds"]
        out += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for r in rows:
            ci = r["primary_ci"]
            ref = r["kind"] == "reference"

            def cell(col: str, v: float | None, r: dict[str, Any] = r) -> str:
                return views.NA if col in r["notes"] else _fmt(v)

            out.append("| " + " | ".join([
                f"*{r['submission']}*" if ref else views.display_name(r), r["version"],
                r["train_rule"], cell("primary", r["primary"]),
                MISSING if ci is None else f"[{ci[0]:.4f}, {ci[1]:.4f}]",
                _fmt(r["primary_std"]), _fmt(r["primary_seed_std"]), _fmt(r["normalised"]),
                *[cell(k, r[k]) for k in sec], r["folds"], str(r["seeds"])]) + " |")
        out.append("")
        out += _notes(rows) + ([""] if _notes(rows) else [])
        partial = views.partial_rows(tb)
        if partial:
            out += [views.PARTIAL_NOTE, ""] + [f"- {p.text()}" for p in partial] + [""]
        rhead, rbody, rnotes = _rater_section(tb, partial)
        why = rater_eval.task_reason(tb.task)
        if why:  # the whole task has none: one line, not a table of n/a
            out += ["### Rater-level evaluation", "", f"n/a: {why}.", ""]
        elif not rbody:  # no training rule complete yet: say so rather than leave it out
            out += ["### Rater-level evaluation", "", views.rater_absent_note(tb), ""]
        else:
            out += ["### Rater-level evaluation", "", views.rater_section_note(tb), "",
                    "| " + " | ".join(rhead) + " |", "|" + "---|" * len(rhead)]
            out += ["| " + " | ".join(row) + " |" for row in rbody]
            out += [""] + [f"- {n}" for n in rnotes] + ([""] if rnotes else [])
        for agg in tb.aggregates:
            head3, body = views.three_by_three_rows(tb, agg)
            out += [f"### {agg.submission}: training rule × test rule ({spec.primary_metric})", "",
                    "| " + " | ".join(head3) + " |", "|---|" + "---|" * (len(head3) - 1)]
            out += ["| " + " | ".join(row) + " |" for row in body]
            out.append("")
    if board.skipped:
        out += ["## Skipped records", ""]
        out += [f"- `{p}`: {why}" for p, why in board.skipped]
        out.append("")
    return "\n".join(out)


def _csv(board: Board) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["task", "task_fingerprint", "submission", "version", "train_rule", "test_rule",
                "metric", "mean", "std", "ci_low", "ci_high", "folds_done", "n_folds", "seeds",
                "complete", "seed_std", "note"])
    for tb in board.tasks:
        spec = tb.task.spec
        fpr = tb.task.fingerprint["fingerprint"]
        for agg in tb.aggregates:
            for tr in spec.rules:
                for te in spec.rules:
                    for m in scored_metrics(tb.task):
                        key = (tr, te, m)
                        ci = agg.ci.get(key)
                        why = agg.notes.get(key, "")
                        w.writerow([spec.name, fpr, agg.submission,
                                    tb.versions.get(agg.submission, ""), tr, te, m,
                                    views.NA if why and key not in agg.mean
                                    else _fmt(agg.mean.get(key), 6), _fmt(agg.std.get(key), 6),
                                    _fmt(ci[0] if ci else None, 6), _fmt(ci[1] if ci else None, 6),
                                    agg.folds_done[tr], agg.n_folds, len(agg.seeds),
                                    agg.complete[tr], _fmt(agg.seed_std.get(key), 6), why])
        for m in spec.metrics:
            for te in spec.rules:
                for kind in row_kinds(tb.task):
                    v = tb.reference.get(m, {}).get(te, {}).get(kind)
                    if v is None:
                        continue
                    w.writerow([spec.name, fpr, f"reference:{kind}", "", "", te, m,
                                views.NA if v.value is None else _fmt(v.value, 6), "", "", "",
                                tb.task.n_folds, tb.task.n_folds, "", True, "",
                                v.reason])
    return buf.getvalue()


def _json(board: Board) -> dict[str, Any]:
    def num(v: float | None) -> float | None:
        return None if v is None or not np.isfinite(v) else round(float(v), 6)

    tasks = []
    for tb in board.tasks:
        spec = tb.task.spec
        subs = []
        for agg in tb.aggregates:
            cells = {}
            for tr in spec.rules:
                for te in spec.rules:
                    cells[f"{tr}->{te}"] = {
                        m: {"mean": num(agg.mean.get((tr, te, m))),
                            "std": num(agg.std.get((tr, te, m))),
                            "seed_std": num(agg.seed_std.get((tr, te, m))),
                            "ci95": [num(x) for x in agg.ci[(tr, te, m)]]
                            if (tr, te, m) in agg.ci else None,
                            **({"not_defined": agg.notes[(tr, te, m)]}
                               if (tr, te, m) in agg.notes else {})}
                        for m in scored_metrics(tb.task)}
            subs.append({"submission": agg.submission,
                         "version": tb.versions.get(agg.submission, ""),
                         "marks": tb.marks.get(agg.submission, []),
                         "seeds": agg.seeds, "folds_done": agg.folds_done,
                         "complete": agg.complete, "cells": cells,
                         "rater_coverage": agg.rater_coverage,
                         "rater_specific": agg.rater_specific})
        ref = {m: {te: {kind: v.as_json() for kind, v in rows.items()}
                   for te, rows in by.items()} for m, by in tb.reference.items()}
        tasks.append({"task": spec.name, "fingerprint": tb.task.fingerprint["fingerprint"],
                      "classes": list(spec.classes), "primary_metric": spec.primary_metric,
                      "paper_metric": PAPER_METRIC, "conventions": tb.conventions,
                      "n_folds": tb.task.n_folds, "submissions": subs, "reference": ref})
    return {"tasks": tasks, "skipped": [{"record": p, "why": w} for p, w in board.skipped],
            "bootstrap": {"resamples": board.resamples, "seed": board.seed}}


_SORT_JS = """
document.querySelectorAll('table.sortable th').forEach((th, col) => {
  th.addEventListener('click', () => {
    const body = th.closest('table').tBodies[0];
    const asc = th.dataset.asc !== '1'; th.dataset.asc = asc ? '1' : '0';
    const key = tr => { const t = tr.cells[col].dataset.v ?? tr.cells[col].textContent;
                        const n = parseFloat(t); return isNaN(n) ? t : n; };
    [...body.rows].sort((a, b) => { const x = key(a), y = key(b);
      const missA = a.cells[col].classList.contains('missing');
      const missB = b.cells[col].classList.contains('missing');
      if (missA !== missB) return missA ? 1 : -1;
      return (x > y ? 1 : x < y ? -1 : 0) * (asc ? 1 : -1); }).forEach(r => body.appendChild(r));
  });
});
"""

_CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:4px 8px;
text-align:right}th{background:#f0f0f0;cursor:pointer}td:first-child,th:first-child{text-align:left}
.plots{display:flex;flex-wrap:wrap;gap:1em;align-items:flex-start}.plots img{max-width:560px}
.missing{color:#999}.wide{overflow-x:auto}
.reference td{font-style:italic;background:#fafafa}"""


def _cell(v: float | None, digits: int = 4) -> str:
    if v is None or not np.isfinite(v):
        return f'<td class="missing">{MISSING}</td>'
    return f'<td data-v="{v:.6f}">{v:.{digits}f}</td>'


def _html(board: Board, plot_files: dict[str, list[tuple[str, str]]]) -> str:
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>serbench leaderboard</title>",
             f"<style>{_CSS}</style></head><body><h1>serbench leaderboard</h1>",
             "<p>" + html.escape(" ".join(_legend())) + " Click a column to sort.</p>"]
    for tb in board.tasks:
        spec = tb.task.spec
        fp = tb.task.fingerprint["fingerprint"][:12]
        parts.append(f"<h2 id='{html.escape(spec.name)}'>{html.escape(spec.name)}</h2>"
                     f"<p>{spec.k} classes, {tb.task.n_folds} folds, "
                     f"fingerprint <code>{fp}</code>, "
                     f"primary metric <code>{spec.primary_metric}</code></p><ul>"
                     + "".join(f"<li>{html.escape(x)}</li>" for x in views.convention_lines(tb))
                     + "</ul>")
        rows = _rows(tb)
        sec = [views.column_name(m, te) for m, te in views.secondary(tb)]
        head = ["submission", "version", "train rule", f"{spec.primary_metric} (AR)", "CI low",
                "CI high", "± sd folds", "± sd seeds", "normalised", *sec, "folds", "seeds"]
        parts.append("<div class='wide'><table class='sortable'><thead><tr>"
                     + "".join(f"<th>{html.escape(h)}</th>" for h in head)
                     + "</tr></thead><tbody>")
        for r in rows:
            ci = r["primary_ci"] or (None, None)

            def cell(col: str, v: float | None, r: dict[str, Any] = r) -> str:
                if col in r["notes"]:
                    return (f'<td class="missing" title="{html.escape(r["notes"][col])}">'
                            f"{views.NA}</td>")
                return _cell(v)

            cls = " class='reference'" if r["kind"] == "reference" else ""
            parts.append(f"<tr{cls}><td>" + html.escape(views.display_name(r)) + "</td><td>"
                         + html.escape(r["version"]) + "</td><td>" + r["train_rule"] + "</td>"
                         + cell("primary", r["primary"]) + _cell(ci[0]) + _cell(ci[1])
                         + _cell(r["primary_std"]) + _cell(r["primary_seed_std"])
                         + _cell(r["normalised"]) + "".join(cell(k, r[k]) for k in sec)
                         + f"<td>{r['folds']}</td><td>{r['seeds']}</td></tr>")
        parts.append("</tbody></table></div>")
        notes = _notes(rows)
        if notes:
            parts.append("<ul>" + "".join(f"<li>{html.escape(n[2:])}</li>" for n in notes)
                         + "</ul>")
        partial = views.partial_rows(tb)
        if partial:
            parts.append("<p>" + html.escape(views.PARTIAL_NOTE.replace("`", "")) + "</p><ul>"
                         + "".join(f"<li>{html.escape(p.text())}</li>" for p in partial)
                         + "</ul>")
        rhead, rbody, rnotes = _rater_section(tb, partial)
        why = rater_eval.task_reason(tb.task)
        if why:
            parts.append("<h3>Rater-level evaluation</h3><p>n/a: " + html.escape(why) + ".</p>")
        elif not rbody:
            parts.append("<h3>Rater-level evaluation</h3><p>"
                         + html.escape(views.rater_absent_note(tb).replace("`", "")) + "</p>")
        else:
            parts.append("<h3>Rater-level evaluation</h3><p>"
                         + html.escape(views.rater_section_note(tb)) + "</p>"
                         "<div class='wide'><table class='sortable'><thead><tr>"
                         + "".join(f"<th>{html.escape(h)}</th>" for h in rhead)
                         + "</tr></thead><tbody>")
            for row in rbody:
                parts.append("<tr>" + "".join(
                    f'<td class="missing">{html.escape(x)}</td>' if x in (views.NA, MISSING)
                    else f"<td>{html.escape(x.strip('*'))}</td>" for x in row) + "</tr>")
            parts.append("</tbody></table></div>")
            if rnotes:
                parts.append("<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in rnotes)
                             + "</ul>")
        for agg in tb.aggregates:
            head3, body = views.three_by_three_rows(tb, agg)
            parts.append(f"<h3>{html.escape(agg.submission)}: training rule × test rule</h3>"
                         "<table><thead><tr>"
                         + "".join(f"<th>{html.escape(h)}</th>" for h in head3)
                         + "</tr></thead><tbody>")
            for row in body:
                parts.append("<tr>" + "".join(f"<td>{html.escape(x)}</td>" for x in row)
                             + "</tr>")
            parts.append("</tbody></table>")
        parts.append("<div class='plots'>")
        for src, alt in plot_files.get(spec.name, []):
            parts.append(f"<img src='{html.escape(src)}' alt='{html.escape(alt)}'>")
        parts.append("</div>")
    if board.skipped:
        parts.append("<h2>Skipped records</h2><ul>")
        parts += [f"<li><code>{html.escape(p)}</code>: {html.escape(w)}</li>"
                  for p, w in board.skipped]
        parts.append("</ul>")
    parts.append(f"<script>{_SORT_JS}</script></body></html>\n")
    return "\n".join(parts)


def _plots(board: Board, out: Path) -> dict[str, list[tuple[str, str]]]:
    files: dict[str, list[tuple[str, str]]] = {}
    for tb in board.tasks:
        spec = tb.task.spec
        rules = list(spec.rules)
        entries = files.setdefault(spec.name, [])
        for agg in tb.aggregates:
            size = f"{len(rules)}x{len(rules)}"  # 3x3 for MR, PR, AR
            name = f"plots/{spec.name}__{agg.submission}__{size}.svg"
            atomic.write_text(out / name, plots.heatmap(
                _three_by_three(tb, agg), rules, rules, f"{agg.submission}: {spec.primary_metric}",
                xlabel="test rule", ylabel="training rule"))
            entries.append((name, f"{agg.submission} {size}"))
        f1 = {a.submission: a.per_class_f1[("AR", "AR")] for a in tb.aggregates
              if ("AR", "AR") in a.per_class_f1}
        if f1:
            name = f"plots/{spec.name}__per_class_f1.svg"
            atomic.write_text(out / name, plots.grouped_bars(
                f1, list(spec.classes), "per-class F1 (1/K rule), AR-trained, AR test",
                "F1"))
            entries.append((name, "per-class F1"))
        for agg in tb.aggregates:
            conf = agg.confusion.get(("AR", "MR")) or agg.confusion.get(("MR", "MR"))
            if conf is None:
                continue
            c = np.asarray(conf, dtype=float)
            rowsum = c.sum(axis=1, keepdims=True)
            share = np.divide(c, rowsum, out=np.full_like(c, np.nan), where=rowsum > 0)
            name = f"plots/{spec.name}__{agg.submission}__confusion.svg"
            atomic.write_text(out / name, plots.heatmap(
                share, list(spec.classes), list(spec.classes),
                f"{agg.submission}: MR test, row-normalised", fmt="{:.2f}",
                xlabel="predicted (argmax)", ylabel="consensus", cmap="Blues"))
            entries.append((name, f"{agg.submission} confusion"))
    return files


def load_stored(out: str | Path) -> dict[str, Any]:
    """The ``leaderboard.json`` stored in ``out``, refused (exit 2) unless it has the shape
    :func:`write` gives it: an object whose ``tasks`` is a list of objects, each naming its
    ``task`` and listing its ``submissions`` as objects.

    A file of another shape (a JSON list, a hand-edited object) is malformed input,
    not a difference to report: ``serbench leaderboard --check`` calls this before
    scoring anything.
    """
    path = Path(out) / "leaderboard.json"
    fix = "point --out at the folder `serbench leaderboard` wrote, or regenerate it there " \
          "with serbench leaderboard"
    if not path.exists():
        raise InputError("no stored leaderboard to check", file=path,
                         fix="write it first: serbench leaderboard")
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"unreadable stored leaderboard: {exc}", file=path, fix=fix) from None

    def kind(value: Any) -> str:
        names: dict[type, str] = {dict: "an object", list: "a list", str: "a string"}
        return names.get(type(value), f"a {type(value).__name__}")

    problem = None
    if not isinstance(stored, dict):
        problem = f"the file is {kind(stored)}, not an object with a 'tasks' list"
    elif not isinstance(stored.get("tasks"), list):
        problem = ("the file has no 'tasks' list" if "tasks" not in stored
                   else f"its 'tasks' is {kind(stored['tasks'])}, not a list")
    else:
        for i, t in enumerate(stored["tasks"]):
            if not isinstance(t, dict) or not isinstance(t.get("task"), str):
                problem = f"tasks[{i}] is not an object naming its task"
            elif not isinstance(t.get("submissions", []), list) or \
                    not all(isinstance(x, dict) for x in t.get("submissions", [])):
                problem = f"tasks[{i}] ({t['task']}) has submissions that are not a list of " \
                          "objects"
            if problem:
                break
    if problem:
        raise InputError(f"not a serbench leaderboard: {problem}", file=path, fix=fix)
    return stored


def stored_bootstrap(out: str | Path) -> tuple[int, int] | None:
    """The (resamples, seed) the stored ``leaderboard.json`` (:func:`load_stored`) was computed
    with; None for a board written before they were stored (``--check`` then uses the
    options given, as before)."""
    path = Path(out) / "leaderboard.json"
    settings = load_stored(out).get("bootstrap")
    if settings is None:
        return None
    if not isinstance(settings, dict) or not all(
            isinstance(settings.get(k), int) and not isinstance(settings.get(k), bool)
            for k in ("resamples", "seed")):
        raise InputError(f"its 'bootstrap' is {settings!r}, not {{\"resamples\": N, "
                         "\"seed\": S}", file=path,
                         fix="regenerate it with serbench leaderboard")
    return settings["resamples"], settings["seed"]


def check(board: Board, out: str | Path, tolerance: float = 2e-6) -> tuple[int, list[str]]:
    """Compare freshly recomputed scores with the stored ``leaderboard.json``.

    Returns the number of values compared and one line per difference: a
    number that moved by more than ``tolerance`` (the file keeps 6 decimals),
    or an entry present on one side only.  Tasks the board could not score here
    (:attr:`Board.unavailable`, e.g. not prepared) are left out of the
    comparison; the caller reports them.  Nothing is written.
    """
    stored = load_stored(out)
    fresh = json.loads(json.dumps(_json(board)))
    if "bootstrap" not in stored:  # written before the settings were stored: not compared
        del fresh["bootstrap"]
    stored["tasks"] = [t for t in stored["tasks"] if t["task"] not in board.unavailable]
    # records of a task not prepared here are listed as skipped only in the recomputed board
    fresh["skipped"] = [x for x in fresh["skipped"]
                        if not str(x.get("why", "")).startswith("task not available")]
    diffs: list[str] = []
    compared = 0

    def walk(a: Any, b: Any, where: str) -> None:
        nonlocal compared
        if isinstance(a, dict) and isinstance(b, dict):
            for k in sorted(set(a) | set(b)):
                if k not in a or k not in b:
                    diffs.append(f"{where}/{k}: only in the {'stored' if k in a else 'recomputed'}"
                                 " leaderboard")
                else:
                    walk(a[k], b[k], f"{where}/{k}")
        elif isinstance(a, list) and isinstance(b, list):
            keyed = bool(a + b) and all(isinstance(x, dict) and ("task" in x or "submission" in x)
                                        for x in a + b)
            if keyed:  # match tasks / submissions by name, not position
                name = "task" if "task" in (a + b)[0] else "submission"
                walk({x[name]: x for x in a}, {x[name]: x for x in b}, where)
            elif len(a) != len(b):
                diffs.append(f"{where}: {len(a)} stored entries, {len(b)} recomputed")
            else:
                for i, (x, y) in enumerate(zip(a, b, strict=True)):
                    walk(x, y, f"{where}[{i}]")
        elif isinstance(a, (int, float)) and isinstance(b, (int, float)) \
                and not isinstance(a, bool) and not isinstance(b, bool):
            compared += 1
            if abs(a - b) > tolerance:
                diffs.append(f"{where}: stored {a}, recomputed {b}")
        elif a != b:
            def short(v: Any) -> str:
                text = repr(v)
                return text if len(text) <= 80 else text[:77] + "..."
            diffs.append(f"{where}: stored {short(a)}, recomputed {short(b)}")

    walk(stored, fresh, "")
    return compared, diffs


class WouldDropRows(InputError):
    """Writing would drop rows of the leaderboard stored in the output folder, or overwrite
    files there that are not a serbench leaderboard."""


#: The files :func:`write` replaces in its output folder (plus ``plots/``).
FILES = ("README.md", "leaderboard.csv", "leaderboard.json", "index.html")


def stored_rows(out: str | Path) -> set[tuple[str, str]] | None:
    """(task, submission) rows of the leaderboard stored in ``out``; None when ``out`` holds no
    leaderboard file at all.  Files there that are not a serbench leaderboard are refused."""
    out = Path(out)
    present = [f for f in FILES if (out / f).exists()]
    if not present:
        return None
    fix = "write the leaderboard to another folder (--out DIR), or move those files away"
    try:
        stored = json.loads((out / "leaderboard.json").read_text(encoding="utf-8"))
        tasks = stored["tasks"]
        if not isinstance(tasks, list):
            raise TypeError(f"'tasks' is a {type(tasks).__name__}, not a list")
        return {(str(t["task"]), str(sub["submission"])) for t in tasks
                for sub in t.get("submissions", [])} | {(str(t["task"]), "") for t in tasks}
    except FileNotFoundError:
        raise WouldDropRows(f"{out} holds {', '.join(present)} but no leaderboard.json: not a "
                            "serbench leaderboard, and writing one there would overwrite them",
                            fix=fix) from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise WouldDropRows(f"{out / 'leaderboard.json'} is not a serbench leaderboard "
                            f"({type(exc).__name__}: {str(exc)[:80]}), and writing one there "
                            "would overwrite it", fix=fix) from None


def _runs_entry(out: Path, runs: Path | None) -> str | None:
    """The entry of ``out`` that holds the runs folder (``runs`` for ``--runs board/runs --out
    board``); ``"."`` when the runs folder is ``out`` itself (its folders are the runs)."""
    if runs is None:
        return None
    try:
        inside = runs.resolve().relative_to(out.resolve())
    except ValueError:
        return None
    return inside.parts[0] if inside.parts else "."


def guard_out(out: str | Path, runs: str | Path | None = None) -> set[tuple[str, str]] | None:
    """:func:`stored_rows` of ``out``, refusing also a folder that holds other things but no
    serbench leaderboard: writing one there would mix its files into them (``--out .`` in a
    project, or a folder of notes).

    Allowed without a stored leaderboard: a missing or empty folder, hidden files (``.gitkeep``,
    ``.DS_Store``) and the runs folder the board is built from when it lies inside ``out``
    (``--runs board/runs --out board``, as the default ``leaderboard/runs``, ``leaderboard``;
    with ``--runs board --out board`` its folders).
    """
    out = Path(out)
    stored = stored_rows(out)
    if stored is not None or not out.is_dir():
        return stored
    keep = _runs_entry(out, Path(runs) if runs is not None else None)
    try:
        other = sorted(p.name + ("/" if p.is_dir() else "") for p in out.iterdir()
                       if p.name != keep and not (p.name.startswith(".") and p.is_file())
                       and not (keep == "." and p.is_dir()))
    except OSError:
        return stored  # an unreadable folder is writable()'s message
    if other:
        shown = ", ".join(other[:5]) + (f" and {len(other) - 5} more" if len(other) > 5 else "")
        raise WouldDropRows(
            f"{out} holds other files ({shown}) and no serbench leaderboard: writing one there "
            "would mix its README.md, leaderboard.csv/json, index.html and plots/ into them",
            fix="write the leaderboard to a new or empty folder (--out DIR), or to the folder of "
                "a serbench leaderboard")
    return stored


def stored_complete(out: str | Path) -> set[tuple[str, str, str]]:
    """(task, submission, training rule) rows complete in the leaderboard stored in ``out``
    (its ``complete`` flags); empty when there is none or it cannot be read (the guard of
    :func:`stored_rows` speaks for an unreadable one)."""
    try:
        stored = json.loads((Path(out) / "leaderboard.json").read_text(encoding="utf-8"))
        return {(str(t["task"]), str(sub["submission"]), str(rule))
                for t in stored["tasks"] for sub in t.get("submissions", [])
                for rule, done in (sub.get("complete") or {}).items() if done is True}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return set()


def partial_rows(board: Board) -> list[views.PartialRow]:
    """Every row of ``board`` with some but not all of its cells recorded (shown ``—``)."""
    return [p for tb in board.tasks for p in views.partial_rows(tb)]


def partial_messages(board: Board, was_complete: set[tuple[str, str, str]]
                     ) -> list[tuple[bool, str]]:
    """What ``serbench leaderboard`` prints after writing ``board``: one line per partial row,
    and whether it *became* partial (complete in the stored board it replaced,
    :func:`stored_complete`), e.g. because a cell's record was deleted."""
    out = []
    for p in partial_rows(board):
        became = (p.task, p.submission, p.train_rule) in was_complete
        out.append((became, f"{'row became partial' if became else 'partial row'} {p.task}: "
                            f"{p.text()}; its scores show {MISSING} until every cell is recorded"
                    + (" (it was complete in the leaderboard this one replaced)" if became
                       else "")))
    for tb in board.tasks:  # complete before, no cell at all now: not partial, but say so too
        for agg in tb.aggregates:
            needed = len(agg.seeds) * agg.n_folds
            for rule in tb.task.spec.rules:
                if (tb.task.spec.name, agg.submission, rule) in was_complete \
                        and len(agg.missing.get(rule, [])) == needed:
                    out.append((True, f"row became empty {tb.task.spec.name}: {agg.submission}, "
                                      f"trained on {rule}: none of its {needed} cells is "
                                      f"recorded; its scores show {MISSING} (it was complete in "
                                      "the leaderboard this one replaced)"))
    return out


def dropped_rows(board: Board, stored: set[tuple[str, str]] | None) -> list[str]:
    """``task/submission`` rows of a stored leaderboard (:func:`stored_rows`) that ``board``
    lacks (their task is not prepared here, or their records are not among the runs it was
    built from): writing ``board`` over it would silently drop them."""
    stored = stored or set()
    have = {(tb.task.spec.name, a.submission) for tb in board.tasks for a in tb.aggregates}
    have |= {(tb.task.spec.name, "") for tb in board.tasks}
    gone = stored - have
    return sorted([t for t, s in gone if not s]  # a whole task; else single submissions
                  + [f"{t}/{s}" for t, s in gone if s and (t, "") not in gone])


def write(board: Board, out: str | Path, *, replace: bool = False) -> list[Path]:
    """Write README.md, leaderboard.csv, leaderboard.json, index.html and plots/ into ``out``;
    then remove the plots the stored board wrote that this one does not (:func:`_owned_plots`:
    a dropped row's, or a confusion map a row no longer has), never another file.

    Refused (:class:`WouldDropRows`, nothing written) when ``out`` holds files that are not a
    serbench leaderboard, or, unless ``replace``, a leaderboard with rows that ``board`` does not
    have: a task not prepared here (its records could not be scored) or submissions whose
    records are not under the runs folder the board was built from.  The entry points
    (``serbench leaderboard``, ``serbench run``, :func:`serbench.grid.build_leaderboard`) first
    refuse, with :func:`guard_out`, a folder of other files that holds no leaderboard at all.
    """
    out = Path(out)
    stored = stored_rows(out)  # files there that are not a serbench leaderboard: refused
    dropped = [] if replace else dropped_rows(board, stored)
    if dropped:
        unprepared = [t for t in dropped if "/" not in t and t in board.unavailable]
        why = (f"{', '.join(unprepared)} {'is' if len(unprepared) == 1 else 'are'} not "
               "prepared here, so its records cannot be scored" if unprepared else
               "their records are not under the runs folder this board was built from")
        shown = ", ".join(dropped[:6]) + (f" and {len(dropped) - 6} more" if len(dropped) > 6
                                          else "")
        raise WouldDropRows(
            f"the leaderboard in {out} holds rows ({shown}) that rewriting it would drop: {why}",
            fix=(f"prepare it (serbench prepare {unprepared[0]} --source DIR), " if unprepared
                 else "pass the runs folder that holds them (--runs DIR), ")
            + "write elsewhere (--out DIR), or drop them on purpose (serbench leaderboard "
              "--replace)")
    plot_files = _plots(board, out)
    new_plots = {p for v in plot_files.values() for p, _ in v}
    written = {
        "README.md": _markdown(board),
        "leaderboard.csv": _csv(board),
        "leaderboard.json": json.dumps(_json(board), indent=2, sort_keys=True,
                                       ensure_ascii=False) + "\n",
        "index.html": _html(board, plot_files),
    }
    for name, text in written.items():
        atomic.write_text(out / name, text)
    for name in sorted(_owned_plots(out, stored) - new_plots):  # only once the new board is in
        (out / name).unlink(missing_ok=True)
    return [out / n for n in written] + [out / p for v in plot_files.values() for p, _ in v]


def _owned_plots(out: Path, stored: set[tuple[str, str]] | None) -> set[str]:
    """``plots/`` files that the stored board (rows :func:`stored_rows`) wrote, by the names
    :func:`_plots` gives: ``<task>__<submission>__<K>x<K>.svg``, ``..__confusion.svg`` and
    ``<task>__per_class_f1.svg``.  Any other file there is not the leaderboard's and is kept."""
    folder = out / "plots"
    if not stored or not folder.is_dir():
        return set()
    owned = set()
    for f in folder.iterdir():
        if not f.is_file():
            continue
        for task, sub in stored:
            if not sub:
                mine = f.name == f"{task}__per_class_f1.svg"
            else:
                prefix = f"{task}__{sub}__"
                rest = f.name[len(prefix):]
                mine = f.name.startswith(prefix) and (
                    rest == "confusion.svg" or re.fullmatch(r"(\d+)x\1\.svg", rest) is not None)
            if mine:
                owned.add(f"plots/{f.name}")
                break
    return owned
