"""IEMOCAP reader on fixture files written in the release's documented EmoEvaluation format.

Format: IEMOCAP_full_release/Session<s>/dialog/EmoEvaluation/<dialog>.txt, as described in the
release's README and Busso et al. (2008), "IEMOCAP: interactive emotional dyadic motion capture
database", Language Resources and Evaluation 42(4): a "% [START_TIME - END_TIME] TURN_NAME
EMOTION [V, A, D]" header per turn, then one "C-<evaluator>:" line per categorical evaluation
(multiple choices separated by ";", a comment in parentheses) and "A-" dimensional lines.
"""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

from serbench.errors import InputError
from serbench.readers.iemocap import read_iemocap
from serbench.tasks import freeze, prepare

S1 = """% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]

[6.2901 - 8.2357]\tSes01F_impro01_F000\tneu\t[2.5000, 2.5000, 2.5000]
C-E2:\tNeutral;\t()
C-E3:\tNeutral;\t()
C-F1:\tNeutral; Frustration;\t(curious)
A-E3:\tval 3; act 2; dom  2;\t()

[10.0100 - 11.3925]\tSes01F_impro01_M001\tang\t[2.0000, 3.5000, 3.5000]
C-E1:\tAnger; Frustration;\t()
C-E2:\tAnger;\t(shouting)
C-E3:\tOther:annoyed;\t()
C-M1:\tAnger;\t()
"""
S2 = """% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]

[1.0000 - 2.5000]\tSes02M_script01_F002\texc\t[4.0000, 4.0000, 3.0000]
C-E1:\tExcited; Happiness;\t()
C-E4:\tHappiness;\t()
C-F1:\tExcited;\t()
"""


def release(root: Path, s1: str = S1) -> Path:
    for s, name, text in ((1, "Ses01F_impro01", s1), (2, "Ses02M_script01", S2)):
        d = root / f"Session{s}" / "dialog" / "EmoEvaluation"
        d.mkdir(parents=True)
        (d / f"{name}.txt").write_text(text)
    wav = root / "Session1" / "sentences" / "wav" / "Ses01F_impro01"
    wav.mkdir(parents=True)
    sf.write(wav / "Ses01F_impro01_F000.wav", np.zeros(16000, dtype=np.float32), 16000)
    return root


def test_every_evaluator_line_becomes_votes(tmp_path):
    res = read_iemocap(release(tmp_path))
    t = res.table
    assert (t["question"] == "secondary").all()
    f000 = t[t["utterance_id"] == "Ses01F_impro01_F000"]
    assert sorted(zip(f000["rater_id"], f000["label"], strict=True)) == [
        ("E2", "Neutral"), ("E3", "Neutral"), ("Ses01-F1", "Frustration"), ("Ses01-F1", "Neutral")]
    m001 = t[t["utterance_id"] == "Ses01F_impro01_M001"]
    assert sorted(m001["label"]) == ["Anger", "Anger", "Anger", "Frustration", "Other"]
    assert set(m001["speaker_id"]) == {"Ses01_M"} and set(m001["session"]) == {"1"}
    # self-evaluations of different sessions are different raters
    assert "Ses02-F1" in set(t["rater_id"]) and "Ses01-F1" in set(t["rater_id"])
    # the only wav present: 1 s; the other two turns have none and are counted
    assert f000["duration"].iloc[0] == 1.0 and t["audio_path"].notna().sum() == len(f000)
    assert res.drops == {"turns without sentences/wav file (kept without audio)": 2}
    assert int(t[t["utterance_id"] == "Ses01F_impro01_M001"]["source_row"].min()) == 10


def test_self_evaluations_can_be_left_out(tmp_path):
    res = read_iemocap(release(tmp_path), self_evaluations=False)
    assert not res.table["rater_id"].str.contains("-").any()
    assert res.drops["self-evaluation votes left out (self_evaluations: false)"] == 4


def test_malformed_lines_name_file_and_line(tmp_path):
    release(tmp_path, S1.replace("C-E3:\tNeutral;\t()", "C-E3\tNeutral"))
    with pytest.raises(InputError, match="row 5") as exc:
        read_iemocap(tmp_path)
    assert "Ses01F_impro01.txt" in str(exc.value)
    with pytest.raises(InputError, match="EmoEvaluation"):
        read_iemocap(tmp_path / "nowhere")


def test_four_class_task_on_the_reader(tasks_dir, home, tmp_path):
    """The common 4-class setup: happy and excited merged, the rest out of set."""
    task = {"name": "iemocap-4-fixture", "corpus": {"reader": "iemocap"},
            "classes": ["neutral", "happy", "sad", "angry"], "question": "secondary",
            "label_map": {"Neutral": "neutral", "Happiness": "happy", "Excited": "happy",
                          "Sadness": "sad", "Anger": "angry"},
            "other": {"labels": ["Frustration", "Other"]},
            "folds": {"group_by": "session", "splits": [{"test": ["1"], "dev": ["2"]},
                                                        {"test": ["2"], "dev": ["1"]}]},
            "metrics": ["uar"], "primary_metric": "uar"}
    (tasks_dir / task["name"]).mkdir()
    (tasks_dir / task["name"] / "task.yaml").write_text(yaml.safe_dump(task))
    src = release(tmp_path / "IEMOCAP_full_release")
    freeze(task["name"], src)
    built, _ = prepare(task["name"], src)
    # by hand (in-set votes): F000 neutral 3; M001 angry 3; F002 happy 4 (E1 ticked excited
    # and happiness: two selections, two votes, as every multi-choice selection counts)
    got = dict(zip(built.counts.ids, built.counts.counts.tolist(), strict=True))
    assert got == {"Ses01F_impro01_F000": [3, 0, 0, 0], "Ses01F_impro01_M001": [0, 0, 0, 3],
                   "Ses02M_script01_F002": [0, 4, 0, 0]}


def test_shipped_four_class_task_prepares_unfrozen_with_loso_folds(home, tmp_path):
    """tasks/iemocap-4class on a 5-session fixture: LOSO folds, merged happy, not frozen."""
    root = tmp_path / "IEMOCAP_full_release"
    release(root)
    for s in (3, 4, 5):  # one scripted turn per extra session, in S2's format
        d = root / f"Session{s}" / "dialog" / "EmoEvaluation"
        d.mkdir(parents=True)
        (d / f"Ses0{s}M_script01.txt").write_text(
            S2.replace("Ses02M", f"Ses0{s}M").replace("Excited; Happiness", "Sadness"))
    task, prov = prepare("iemocap-4class", root)
    assert prov["frozen"] is False and any("not frozen" in n for n in prov["notes"])
    assert task.n_folds == 5
    for fold, (test, dev) in enumerate([(1, 2), (2, 3), (3, 4), (4, 5), (5, 1)], start=1):
        sessions = {s: {u[4] for u in task.split(fold, s, "AR").ids} for s in ("test", "dev")}
        assert sessions == {"test": {str(test)}, "dev": {str(dev)}}
    got = dict(zip(task.counts.ids, task.counts.counts.tolist(), strict=True))
    # By hand: S2's turn has Excited+Happiness (E1), Happiness (E4), Excited (F1) -> happy 4.
    assert got["Ses02M_script01_F002"][:4] == [0, 4, 0, 0]
    # Sessions 3-5: E1 Sadness (the Excited;Happiness pair replaced), E4 Happiness, F1 Excited.
    assert got["Ses03M_script01_F002"][:4] == [0, 2, 1, 0]


NEUTRAL_TURN = """% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]

[1.0000 - 2.0000]\tSes0{s}F_impro02_M000\tneu\t[3.0000, 3.0000, 3.0000]
C-E1:\tNeutral;\t()
C-E2:\tNeutral;\t()
"""


def test_raw_nine_class_rebuild_verifies_against_released_files(home, tmp_path):
    """The README's recipe: prepare iemocap-9class-raw, then tasks verify --against."""
    import json

    from serbench.tasks.verify import verify

    root = tmp_path / "IEMOCAP_full_release"
    release(root)
    for s in (3, 4, 5):
        d = root / f"Session{s}" / "dialog" / "EmoEvaluation"
        d.mkdir(parents=True)
        (d / f"Ses0{s}F_impro02.txt").write_text(NEUTRAL_TURN.format(s=s))
    task, prov = prepare("iemocap-9class-raw", root)
    assert prov["frozen"] is False
    # Partition 1 tests session 4 and develops on 5.  MR by hand: F000 neutral 3 of 4 votes,
    # M001 angry 3 of 5 (Other counts), the three all-neutral turns; F002 ties excited/happy.
    released = tmp_path / "released"
    released.mkdir()
    (released / "config.json").write_text(json.dumps(
        {"categorical": {"emo_type": list(task.spec.classes)}}))
    header = ",".join(["", *task.spec.classes, "SpkrID", "Gender", "Split_Set"])
    uniform = ",".join(["0.111111"] * 9)
    rows = [("Ses01F_impro01_F000", "Train"), ("Ses01F_impro01_M001", "Train"),
            ("Ses03F_impro02_M000", "Train"), ("Ses04F_impro02_M000", "Test"),
            ("Ses05F_impro02_M000", "Development")]

    def write(rows):
        (released / "M_1.csv").write_text("\n".join(
            [header, *(f"{u}.wav,{uniform},1,Male,{s}" for u, s in rows)]) + "\n")

    write(rows)
    (report,) = verify(task, released, targets=False)
    assert report.ok and (report.partition, report.rule, report.n_task) == (1, "MR", 5)
    write([*rows[:4], ("Ses05F_impro02_M000", "Train"), ("Ses02M_script01_F002", "Train")])
    (report,) = verify(task, released, targets=False)
    assert report.only_release == ["Ses02M_script01_F002"]
    assert report.split_differs == ["Ses05F_impro02_M000"] and not report.ok
