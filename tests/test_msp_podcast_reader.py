"""MSP-Podcast reader on fixture files in the release's layouts.

No MSP-Podcast copy is available here, so the fixtures follow the layouts the
reader documents: ``Labels/labels_consensus.csv`` (FileName, EmoClass, EmoAct,
EmoVal, EmoDom, SpkrID, Gender, Split_Set: the column list of the releases'
consensus file as read by public code, e.g. the MSP-Podcast challenge
baselines) and the per-rater ``labels_detailed`` file in its field format
(``WORKER; Primary; Secondary,Tags; A:..; V:..; D:..;``), its column format and
its JSON format.  The counts asserted below are worked out by hand from the
fixture rows.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from serbench.errors import InputError
from serbench.readers.msp_podcast import read_msp_podcast
from serbench.tasks import prepare

CONSENSUS = [
    ("MSP-PODCAST_0001_0001.wav", "A", "5.2", "2.1", "5.0", "10", "Male", "Train"),
    ("MSP-PODCAST_0001_0002.wav", "N", "4.0", "4.0", "4.0", "10", "Male", "Development"),
    ("MSP-PODCAST_0002_0001.wav", "H", "4.5", "5.5", "4.0", "11", "Female", "Test1"),
    ("MSP-PODCAST_0003_0001.wav", "X", "4.0", "4.0", "4.0", "Unknown", "Unknown", "Test2"),
]
ANSWERS = [  # (file, worker, primary, secondary)
    ("MSP-PODCAST_0001_0001.wav", "WORKER01", "Angry", "Angry,Annoyed"),
    ("MSP-PODCAST_0001_0001.wav", "WORKER02", "Angry", ""),
    ("MSP-PODCAST_0001_0001.wav", "WORKER03", "Other-Irritated", "Frustrated"),
    ("MSP-PODCAST_0001_0001.wav", "WORKER03", "Angry", ""),  # repeated: dropped
    ("MSP-PODCAST_0001_0002.wav", "WORKER01", "Neutral", "Neutral"),
    ("MSP-PODCAST_0001_0002.wav", "WORKER04", "Neutral", ""),
    ("MSP-PODCAST_0002_0001.wav", "WORKER02", "Happy", "Happy,Excited"),
    ("MSP-PODCAST_0002_0001.wav", "WORKER04", "Surprise", ""),
    ("MSP-PODCAST_0002_0001.wav", "WORKER05", "Happy", ""),
    ("MSP-PODCAST_0003_0001.wav", "WORKER05", "Sad", ""),
    ("MSP-PODCAST_9999_0001.wav", "WORKER05", "Sad", ""),  # not in the consensus file
]


def release(root: Path, fmt: str = "fields") -> Path:
    labels = root / "Labels"
    labels.mkdir(parents=True)
    with open(labels / "labels_consensus.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["FileName", "EmoClass", "EmoAct", "EmoVal", "EmoDom", "SpkrID", "Gender",
                    "Split_Set"])
        w.writerows(CONSENSUS)
    if fmt == "fields":
        with open(labels / "labels_detailed.csv", "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["FileName", "Labels"])
            for f, worker, p, s in ANSWERS:
                field = f"{worker}; {p}; " + (f"{s}; " if s else "") + "A:4.0; V:4.0; D:4.0;"
                w.writerow([f, field])
    elif fmt == "columns":
        with open(labels / "labels_detailed.csv", "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["FileName", "WorkerID", "EmoClass_Major", "EmoClass_Second", "EmoAct"])
            w.writerows([(f, worker, p, s, "4.0") for f, worker, p, s in ANSWERS])
    else:  # json: a dict per file cannot hold the repeated answer; the rest is the same
        data: dict = {}
        for f, worker, p, s in ANSWERS:
            data.setdefault(f, {}).setdefault(worker, {"EmoClass_Major": p, "EmoClass_Second": s})
        (labels / "labels_detailed.json").write_text(json.dumps(data))
    audios = root / "Audios"
    audios.mkdir()
    sf.write(audios / "MSP-PODCAST_0001_0001.wav", np.zeros(8000, dtype=np.float32), 16000)
    return root


@pytest.mark.parametrize("fmt", ["fields", "columns", "json"])
def test_every_worker_answer_becomes_votes(tmp_path: Path, fmt: str):
    res = read_msp_podcast(release(tmp_path / "MSP-Podcast", fmt))
    t = res.table
    first = t[t["utterance_id"] == "MSP-PODCAST_0001_0001.wav"]
    prim = first[first["question"] == "primary"]
    assert sorted(zip(prim["rater_id"], prim["label"], strict=True)) == [
        ("WORKER01", "Angry"), ("WORKER02", "Angry"), ("WORKER03", "Other")]
    sec = first[first["question"] == "secondary"]
    assert sorted(sec["label"]) == ["Angry", "Annoyed", "Frustrated"]
    assert set(first["session"]) == {"Train"} and set(first["speaker_id"]) == {"10"}
    assert first["duration"].iloc[0] == 0.5
    unknown = t[t["utterance_id"] == "MSP-PODCAST_0003_0001.wav"]
    assert set(unknown["speaker_id"]) == {"unknown:MSP-PODCAST_0003_0001.wav"}
    drops = res.drops
    assert drops["answers to files not in labels_consensus.csv (or outside sets)"] == 1
    assert drops.get("repeated answers of a worker to a clip (kept the first)", 0) == \
        (0 if fmt == "json" else 1)
    assert drops["clips without an Audios/ file (kept without audio)"] == 3


def test_sets_option_and_the_shipped_task(home, tmp_path: Path):
    src = release(tmp_path / "MSP-Podcast")
    res = read_msp_podcast(src, sets=["Train", "Development", "Test1"])
    assert "MSP-PODCAST_0003_0001.wav" not in set(res.table["utterance_id"])
    assert res.drops["clips outside Split_Set ['Train', 'Development', 'Test1'] (option sets)"] \
        == 1
    task, prov = prepare("msp-podcast-8class", src)
    assert prov["frozen"] is False
    ids = {s: set(task.split(1, s, "AR").ids) for s in ("train", "dev", "test")}
    assert ids == {"train": {"MSP-PODCAST_0001_0001.wav"},
                   "dev": {"MSP-PODCAST_0001_0002.wav"},
                   "test": {"MSP-PODCAST_0002_0001.wav"}}
    got = dict(zip(task.counts.ids, task.counts.counts.tolist(), strict=True))
    # primary votes by hand: angry 2 + other 1; neutral 2; happy 2 + surprise 1
    assert got["MSP-PODCAST_0001_0001.wav"][:8] == [0, 0, 0, 2, 0, 0, 0, 0]
    assert got["MSP-PODCAST_0002_0001.wav"][:8] == [0, 2, 0, 0, 0, 1, 0, 0]
    # MR: 2 of 3 votes for angry (other counts in the denominator) -> kept; PR too.
    assert "MSP-PODCAST_0002_0001.wav" in set(task.split(1, "test", "MR").ids)


@pytest.mark.parametrize(("edit", "message", "row"), [
    (lambda s: s.replace("WORKER02; Angry; A:", "WORKER02 A:"), "lacks 'WORKER; Primary;'", 3),
    (lambda s: s + "MSP-PODCAST_0001_0001.wav\n", "want FileName and the annotation", 13),
])
def test_malformed_detailed_rows_name_the_row(tmp_path: Path, edit, message, row):
    src = release(tmp_path / "MSP-Podcast")
    path = src / "Labels" / "labels_detailed.csv"
    path.write_text(edit(path.read_text()))
    with pytest.raises(InputError) as info:
        read_msp_podcast(src)
    assert message in info.value.problem and info.value.row == row
    assert info.value.file == str(path)


def test_consensus_problems_are_errors(tmp_path: Path):
    src = release(tmp_path / "MSP-Podcast")
    path = src / "Labels" / "labels_consensus.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([*lines, lines[2]]) + "\n")
    with pytest.raises(InputError, match="listed twice") as info:
        read_msp_podcast(src)
    assert info.value.row == 6
    (src / "Labels" / "labels_detailed.csv").unlink()
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match="no per-rater file"):
        read_msp_podcast(src)
