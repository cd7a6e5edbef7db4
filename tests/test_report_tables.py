"""Every Markdown table a report writes has one cell per header column in every row.

The ablation report (`serbench ablate`), the leaderboard's README.md (complete, partial and
one-fold boards) and the reports committed under leaderboard/ are parsed with the small
GitHub-flavoured-Markdown table reader below, written from the GFM specification's table rule
(a header row, a delimiter row of ``---`` cells, then body rows; ``\\|`` is a pipe inside a
cell), not with serbench's own writers.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from runs_fixture import make_runs, noisy_oracle, prior

from serbench import leaderboard as lb
from serbench.recipes import ablation
from serbench.tasks import load_task

REPO = Path(__file__).resolve().parents[1]
DELIMITER = re.compile(r"^\|(\s*:?-{3,}:?\s*\|)+$")


def cells(line: str) -> list[str]:
    """The cells of one table line: split on pipes that are not escaped (``\\|``)."""
    inner = line.strip()
    assert inner.startswith("|") and inner.endswith("|") and not inner.endswith("\\|"), line
    return [c.strip() for c in re.split(r"(?<!\\)\|", inner[1:-1])]


def tables(text: str) -> list[tuple[list[str], list[list[str]]]]:
    """(header, body rows) of every table: runs of consecutive lines that start with a pipe."""
    out, block = [], []
    for line in [*text.splitlines(), ""]:
        if line.lstrip().startswith("|"):
            block.append(line)
            continue
        if block:
            assert len(block) >= 2 and DELIMITER.match(block[1].strip()), \
                f"a table without a delimiter row:\n{block[:2]}"
            head = cells(block[0])
            assert len(cells(block[1])) == len(head), f"delimiter width differs:\n{block[:2]}"
            out.append((head, [cells(x) for x in block[2:]]))
            block = []
    return out


def assert_well_formed(text: str, where: str) -> list[tuple[list[str], list[list[str]]]]:
    found = tables(text)
    for head, body in found:
        assert all(h for h in head), f"{where}: an empty header cell in {head}"
        for row in body:
            assert len(row) == len(head), f"{where}: row {row} has {len(row)} cells, header " \
                                          f"{head} has {len(head)}"
    return found


def test_the_reader_catches_the_malformed_tables_it_exists_for():
    # the ablation's loss table with alpha 0 only, as it was written before the fix
    with pytest.raises(AssertionError, match="delimiter width differs"):
        assert_well_formed("| loss | alpha 0 |  |\n|---|---|\n| ce | 0.5 |\n", "x")
    with pytest.raises(AssertionError, match="empty header cell"):
        assert_well_formed("| a |  |\n|---|---|\n| 1 | 2 |\n", "x")
    with pytest.raises(AssertionError, match="delimiter width"):
        assert_well_formed("| a | b |\n|---|\n| 1 | 2 |\n", "x")
    with pytest.raises(AssertionError, match="has 3 cells"):
        assert_well_formed("| a | b |\n|---|---|\n| 1 | 2 | 3 |\n", "x")
    with pytest.raises(AssertionError, match="without a delimiter"):
        assert_well_formed("| a | b |\n| 1 | 2 |\n", "x")
    (head, body), = assert_well_formed("| a | b |\n|---|---|\n| `x\\|y` | 2 |\n", "x")
    assert head == ["a", "b"] and body == [["`x\\|y`", "2"]]


def _ablation(tmp_path: Path, alphas: tuple[float, ...], raters: bool) -> str:
    task = load_task("demo")
    runs = tmp_path / "runs"
    # a "|" in a shared option: the config column must still be one cell
    variants = ablation.plan(losses=("ce", "kl"), alphas=alphas, raters=raters,
                             backbone={"note": "a|b"})
    for v in variants:
        make_runs(task, runs, v.label, noisy_oracle if v.label.startswith("rater") else prior,
                  rules=("AR",), folds=(1,))
    rep = ablation.score(task, runs, variants, train_rule="AR", folds=[1], seeds=[0],
                         n_resamples=20)
    ablation.write(rep, tmp_path / "report")
    text = (tmp_path / "report" / "ablation.md").read_text()
    assert text.startswith("# Ablation on `demo`")
    return text


@pytest.mark.parametrize(("alphas", "raters", "loss_head"), [
    ((0.0,), False, ["loss", "alpha 0"]),
    ((0.0, 0.2), True, ["loss", "alpha 0", "alpha 0.2", "alpha 0.2 − alpha 0"]),
])
def test_ablation_report_tables(home, tmp_path: Path, alphas, raters, loss_head):
    text = _ablation(tmp_path, alphas, raters)
    found = assert_well_formed(text, "ablation.md")
    by_first = {head[0]: (head, body) for head, body in found}
    head, body = by_first["loss"]
    assert head == loss_head and [r[0] for r in body] == ["ce", "kl"]
    head, body = by_first["variant"]
    assert len(head) == 5 and all('"note": "a\\|b"' in r[-1] for r in body)
    n_variants = 2 * len(alphas) + (5 if raters else 0)  # ce, kl per alpha; 4 rater models + ce
    assert len(body) == n_variants - (1 if raters else 0)  # blstm-fc+ce is one variant
    if raters:
        head, body = by_first["model"]
        assert head == ["model", "uar", "rater-fusion − model"] and len(body) == 5


@pytest.mark.parametrize("kind", ["complete", "partial", "one fold"])
def test_leaderboard_readme_tables(home, tmp_path: Path, kind: str):
    demo = load_task("demo")
    runs = tmp_path / "runs"
    if kind == "complete":
        make_runs(demo, runs, "oracle", noisy_oracle)
    elif kind == "partial":
        make_runs(demo, runs, "oracle", noisy_oracle)
        make_runs(demo, runs, "prior", prior, rules=("AR",), folds=(1, 2, 4, 5))
    else:
        make_runs(demo, runs, "prior", prior, rules=("AR",), folds=(1,))
    lb.write(lb.build(runs, n_resamples=20), tmp_path / "board")
    text = (tmp_path / "board" / "README.md").read_text()
    found = assert_well_formed(text, f"{kind} README.md")
    heads = [h[0] for h, _ in found]
    # main table and one 3x3 per submission; the rater-level table once a training rule is
    # complete (the one-fold board says why it has none instead)
    n_subs = {"complete": 1, "partial": 2, "one fold": 1}[kind]
    assert heads.count("train \\ test") == n_subs
    assert heads.count("submission") == (1 if kind == "one fold" else 2)


def test_committed_reports_are_well_formed():
    reports = [REPO / "leaderboard" / "README.md",
               *sorted((REPO / "leaderboard" / "ablation").rglob("ablation.md")),
               *sorted((REPO / "leaderboard" / "study").rglob("study.md"))]
    reports = [p for p in reports if p.exists()]
    if not reports:
        pytest.skip("no committed reports under leaderboard/")
    for path in reports:
        assert_well_formed(path.read_text(), str(path.relative_to(REPO)))
