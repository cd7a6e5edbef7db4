"""The README's external fine-tuning loop runs on an export and its predictions score."""

from __future__ import annotations

import re
import runpy
import sys
from pathlib import Path

from tiny_encoder import save_tiny_wav2vec2

from serbench import leaderboard as lb
from serbench.export import export_task
from serbench.external import import_predictions

REPO = Path(__file__).resolve().parents[1]
MARK = r"<!-- example-external-loop -->\s*```python\n(.*?)```"


def example() -> str:
    """From README.md once the integrator has merged the section, else from its draft."""
    for doc in (REPO / "README.md", REPO / "docs" / "drafts" / "bridges-README.md"):
        m = re.search(MARK, doc.read_text(), re.S) if doc.exists() else None
        if m:
            return m.group(1)
    raise AssertionError("the external-loop example is in neither README.md nor its draft")


def test_readme_external_loop_fine_tunes_and_scores(tiny, tmp_path, monkeypatch):
    """On a 4-clip, 2-fold corpus (the demo takes minutes on 2 busy cores; same code path)."""
    export = export_task(tiny, tmp_path / "export")
    model = save_tiny_wav2vec2(tmp_path / "tiny-w2v2")
    script = tmp_path / "finetune.py"
    script.write_text(example())
    preds = tmp_path / "preds.csv"
    monkeypatch.setattr(sys, "argv", [str(script), str(export), str(model), str(preds), "1", "16"])
    runpy.run_path(str(script), run_name="__main__")  # in-process: torch is imported once
    runs = tmp_path / "runs"
    folders = import_predictions(tiny, preds, name="tiny-ft", runs=runs)
    assert len(folders) == 2
    board = lb.build(runs, n_resamples=10)
    agg = board.tasks[0].aggregates[0]
    assert agg.submission == "tiny-ft" and agg.complete["AR"] and not board.skipped
