"""The generic CSV / JSON-lines reader: a hand-made in-house corpus, end to end, and bad input."""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

from serbench.errors import InputError
from serbench.readers.table import read_table
from serbench.tasks import freeze, prepare

ROWS = [  # utterance, rater, label, speaker, question, audio
    ("c1", "r1", "ang", "s1", "primary", "wav/c1.wav"), ("c1", "r2", "ang", "s1", "", "wav/c1.wav"),
    ("c1", "r3", "hap", "s1", "", "wav/c1.wav"),
    ("c2", "r1", "hap", "s2", "primary", "wav/c2.wav"), ("c2", "r2", "neu", "s2", "", "wav/c2.wav"),
    ("c3", "r2", "neu", "s3", "", "wav/c3.wav"), ("c3", "r3", "neu", "s3", "", "wav/c3.wav"),
    ("c3", "r3", "ang", "s3", "secondary", "wav/c3.wav"),
    ("c3", "r3", "neu", "s3", "secondary", "wav/c3.wav"),
    ("c4", "r1", "ang", "s4", "", "wav/c4.wav"), ("c4", "r3", "hap", "s4", "", "wav/c4.wav"),
]


def write_corpus(root: Path, rows=ROWS, name="ratings.csv") -> Path:
    (root / "wav").mkdir(parents=True, exist_ok=True)
    for clip in {r[0] for r in rows}:
        sf.write(root / "wav" / f"{clip}.wav", np.zeros(8000, dtype=np.float32), 16000)
    lines = ["utterance_id,rater_id,label,speaker_id,question,audio"]
    lines += [",".join(r) for r in rows]
    (root / name).write_text("\n".join(lines) + "\n")
    return root / name


def test_reads_every_answer(tmp_path):
    res = read_table(write_corpus(tmp_path))
    t = res.table
    assert len(t) == len(ROWS) and not res.counts_only
    assert (t["question"] == "secondary").sum() == 2
    assert t["audio_path"].str.endswith(".wav").all() and (t["duration"] == 0.5).all()
    assert t.loc[t["utterance_id"] == "c2", "source_row"].tolist() == [5, 6]


def test_json_lines_and_renamed_columns(tmp_path):
    write_corpus(tmp_path)
    with (tmp_path / "r.jsonl").open("w") as fh:
        for u, r, lab, spk, _q, a in ROWS:
            fh.write(json.dumps({"clip": u, "worker": r, "label": lab, "speaker_id": spk,
                                 "audio": a}) + "\n")
    res = read_table(tmp_path / "r.jsonl", columns={"utterance_id": "clip", "rater_id": "worker"})
    assert len(res.table) == len(ROWS) and (res.table["question"] == "primary").all()


def test_task_from_the_generic_reader(tasks_dir, home, tmp_path):
    src = write_corpus(tmp_path / "corpus")
    task = {"name": "inhouse", "corpus": {"reader": "csv"},
            "classes": ["angry", "happy", "neutral"],
            "label_map": {"ang": "angry", "hap": "happy", "neu": "neutral"},
            "folds": {"group_by": "speaker_id", "splits": [{"test": ["s1"], "dev": ["s2"]},
                                                             {"test": ["s3"], "dev": ["s4"]}]},
            "metrics": ["multilabel_macro_f1", "uar"]}
    (tasks_dir / "inhouse").mkdir()
    (tasks_dir / "inhouse" / "task.yaml").write_text(yaml.safe_dump(task))
    freeze("inhouse", src)
    built, _ = prepare("inhouse", src.parent)
    # by hand: c1 2 ang / 1 hap (MR, PR), c2 1 hap / 1 neu (tie: AR only), c3 2 neu (all),
    # c4 1 ang / 1 hap (tie)
    assert {r: built.rule(r).n_kept for r in ("MR", "PR", "AR")} == {"MR": 2, "PR": 2, "AR": 4}
    test = built.split(1, "test", "AR")
    assert list(test.ids) == ["c1"]
    np.testing.assert_allclose(test.targets, [[2 / 3, 1 / 3, 0]])


@pytest.mark.parametrize("extra, message, row", [
    (("c9", "r1", "ang", "s1", "", "wav/none.wav"), "not found", 13),
    (("", "r1", "ang", "s1", "", ""), "empty utterance_id", 13),
    (("c1", "r4", "ang", "s1", "maybe", ""), "unknown question", 13),
])
def test_bad_rows_are_named(tmp_path, extra, message, row):
    path = write_corpus(tmp_path)
    path.write_text(path.read_text() + ",".join(extra) + "\n")
    with pytest.raises(InputError, match=message) as exc:
        read_table(path)
    assert f"row {row}" in str(exc.value) and "ratings.csv" in str(exc.value)


def test_missing_audio_can_be_a_counted_drop_and_empty_audio_is_refused(tmp_path):
    path = write_corpus(tmp_path)
    (tmp_path / "wav" / "c4.wav").unlink()
    res = read_table(path, allow_missing_audio=True)
    assert res.table.loc[res.table["utterance_id"] == "c4", "audio_path"].isna().all()
    assert list(res.drops.values()) == [1]
    sf.write(tmp_path / "wav" / "c4.wav", np.zeros(0, dtype=np.float32), 16000)
    with pytest.raises(InputError, match="no samples"):
        read_table(path)


def test_a_corpus_that_mixes_sample_rates_gets_a_note(tasks_dir, home, tmp_path):
    """An 8 kHz clip among 16 kHz ones is prepared, with a note naming the rates and the clip."""
    src = write_corpus(tmp_path / "corpus")
    sf.write(tmp_path / "corpus" / "wav" / "c3.wav", np.zeros(4000, dtype=np.float32), 8000)
    task = {"name": "mixed", "corpus": {"reader": "csv"},
            "classes": ["angry", "happy", "neutral"],
            "label_map": {"ang": "angry", "hap": "happy", "neu": "neutral"},
            "folds": {"group_by": "speaker_id", "splits": [{"test": ["s1"], "dev": ["s2"]},
                                                             {"test": ["s3"], "dev": ["s4"]}]},
            "metrics": ["uar"], "frozen": False}
    (tasks_dir / "mixed").mkdir()
    (tasks_dir / "mixed" / "task.yaml").write_text(yaml.safe_dump(task))
    _, prov = prepare("mixed", src)
    (note,) = [n for n in prov["notes"] if n.startswith("sample rates differ")]
    assert "3 at 16000 Hz, 1 at 8000 Hz" in note and "c3 at 8000 Hz" in note
