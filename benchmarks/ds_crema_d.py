"""What Dawid-Skene does to CREMA-D's voice labels: relabelled clips, agreement with intent.

Builds the ``crema-d`` task from a CREMA-D folder (``tabulatedVotes.csv``; counts only,
so DS is pooled), adds the DS and DS1 rules in memory (the shipped task is not
changed) and prints, as Markdown:

* the share of clips whose DS (DS1) label is not among their top-voted classes (all
  clips), differs from the PR label (PR-kept clips) and from the MR label (MR-kept);
* agreement with the actor's intended emotion (the third field of the clip name) of
  the DS / DS1 label, the MR and PR labels on the clips they keep, and the plurality
  label on every clip (ties: the expected agreement of a uniformly random top class);
* the same for crowd-kit 1.4 run with its defaults (``DawidSkene()``: ``n_iter=100,
  tol=1e-5``; it stops after 2 EM iterations on these votes) against crowd-kit's
  ``MajorityVote`` (ties to the first label column), when crowd-kit is installed:
  the setting of the figures quoted in issue 16.

    python benchmarks/ds_crema_d.py --source ../shared/data/crema-d
"""

from __future__ import annotations

import argparse
import dataclasses
import time
import warnings

import numpy as np
import pandas as pd

from serbench import aggregation as agg
from serbench.tasks.registry import get_spec
from serbench.tasks.task import Task, build_ratings

INTENDED = {"ANG": "anger", "DIS": "disgust", "FEA": "fear", "HAP": "happy", "NEU": "neutral",
            "SAD": "sad"}


def pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", required=True, help="CREMA-D folder with tabulatedVotes.csv")
    args = ap.parse_args()
    spec = dataclasses.replace(get_spec("crema-d"), rules=("MR", "PR", "AR", "DS", "DS1"),
                               ds_workers="pooled")
    table, _ = build_ratings(spec, args.source)
    task = Task(spec, table)
    t0 = time.perf_counter()
    fits = task.aggregation
    seconds = time.perf_counter() - t0
    counts = task.counts.counts
    ids = pd.Series(task.counts.ids.astype(str))
    intended = ids.str.split("_").str[2].map(INTENDED).map(
        {c: i for i, c in enumerate(spec.classes)}).to_numpy()
    voted = counts.sum(axis=1) > 0
    top = counts == counts.max(axis=1, keepdims=True)
    mr, pr = task.rule("MR"), task.rule("PR")
    rows = [f"CREMA-D voice: {len(ids)} clips, {int(counts.sum())} in-set votes, "
            f"{int(voted.sum())} with a vote; MR keeps {mr.n_kept}, PR {pr.n_kept}.", ""]
    rows += ["| rule | workers | EM iterations | converged | not a top-voted class (all) "
             "| differs from PR (PR-kept) | differs from MR (MR-kept) | = intended (all) |",
             "|---|---|---|---|---|---|---|---|"]
    for rule in ("DS", "DS1"):
        fit = fits[rule]
        lab = np.full(len(ids), -1)
        lab[voted] = task.rule(rule).labels
        not_top = ~top[voted][np.arange(int(voted.sum())), lab[voted]]
        rows.append(f"| {rule} | {fit.mode} | {fit.iterations} | {fit.converged} "
                    f"| {pct(not_top.mean())} | {pct(np.mean(lab[pr.keep] != pr.labels))} "
                    f"| {pct(np.mean(lab[mr.keep] != mr.labels))} "
                    f"| {pct(np.mean(lab[voted] == intended[voted]))} |")
    plural = (top[voted][np.arange(int(voted.sum())), intended[voted]]
              / top[voted].sum(axis=1)).mean()
    rows += ["", "Agreement with the intended emotion of the vote-count rules: "
             f"MR {pct(np.mean(mr.labels == intended[mr.keep]))} of its {mr.n_kept} clips, "
             f"PR {pct(np.mean(pr.labels == intended[pr.keep]))} of its {pr.n_kept}, "
             f"plurality on all {int(voted.sum())} clips {pct(plural)} (ties: expected under a "
             f"random top class). DS and DS1 fitted in {seconds:.2f} s together."]
    try:
        from crowdkit.aggregation import DawidSkene, MajorityVote
    except ImportError:
        print("\n".join([*rows, "", "(crowd-kit not installed: its default run is skipped)"]))
        return
    v = agg.pooled_votes(counts)
    frame = pd.DataFrame({"task": ids.to_numpy()[v.clip], "worker": "pooled", "label": v.label})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = DawidSkene()
        ds = model.fit_predict(frame).reindex(ids).to_numpy(dtype=float)
        mv = MajorityVote().fit_predict(frame).reindex(ids).to_numpy(dtype=float)
    ok = voted
    rows += ["", "crowd-kit defaults "
             f"(DawidSkene(): n_iter={model.n_iter}, tol={model.tol}): stopped after "
             f"{len(model.loss_history_)} EM iterations; its label differs from crowd-kit's "
             f"MajorityVote on {pct(np.mean(ds[ok] != mv[ok]))} of clips and from PR on "
             f"{pct(np.mean(ds[pr.keep] != pr.labels))} of PR-kept clips; = intended: DS "
             f"{pct(np.mean(ds[ok] == intended[ok]))}, MajorityVote "
             f"{pct(np.mean(mv[ok] == intended[ok]))}."]
    print("\n".join(rows))


if __name__ == "__main__":
    main()
