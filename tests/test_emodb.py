"""The EmoDB reader and task on the real corpus in ../shared/data/emodb, and its bad input."""

import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import shared
from serbench import plugins
from serbench.errors import InputError
from serbench.readers.emodb import read_emodb, read_recognition
from serbench.records import find_records
from serbench.runner import Runner
from serbench.scoring import score_record
from serbench.tasks import prepare

# Class sizes of the 535 released EmoDB utterances as published with the corpus
# (Burkhardt et al. 2005, and every EmoDB paper since): anger 127, boredom 81,
# disgust 46, fear 69, happiness 71, neutral 79, sadness 62.
PUBLISHED = {"W": 127, "L": 81, "E": 46, "A": 69, "F": 71, "N": 79, "T": 62}
SPEAKERS = ["03", "08", "09", "10", "11", "12", "13", "14", "15", "16"]


@pytest.fixture(scope="module")
def emodb() -> Path:
    return shared("emodb")


def test_reader_reads_the_release(emodb):
    res = read_emodb(emodb)
    t = res.table
    assert len(t) == 535 and t["utterance_id"].is_unique
    assert t["label"].value_counts().to_dict() == PUBLISHED
    assert sorted(t["speaker_id"].unique()) == SPEAKERS
    # the emotion letter is the 6th character of the file name
    assert (t["utterance_id"].str[5] == t["label"]).all()
    assert t["rater_id"].isna().all() and res.counts_only
    assert np.allclose(t["duration"], 2.0)  # the processed copy: 2 s clips


def test_recognition_table(emodb):
    rec = read_recognition(emodb / "erkennung.txt")
    assert len(rec) == 816  # every clip of the perception test, released or not
    released = rec[rec["utterance_id"].isin(read_emodb(emodb).table["utterance_id"])]
    # the corpus's selection rule: recognised by at least 80% of the 20 listeners
    assert len(released) == 535 and released["recognition"].min() >= 80
    first = rec.iloc[0]
    assert (first["utterance_id"], first["recognition"], first["naturalness"]) == \
        ("03a01Ab", 65.0, 35.0)


def test_task_is_leave_one_speaker_out(home, emodb):
    task, _ = prepare("emodb", emodb)
    assert task.n_folds == 10
    for rule in ("MR", "PR", "AR"):
        assert sum(len(task.split(f, "test", rule)) for f in range(1, 11)) == 535
    for f, spk in enumerate(SPEAKERS, start=1):
        test = task.split(f, "test", "MR").ids
        assert {u[:2] for u in test} == {spk}
        assert not {u[:2] for u in task.split(f, "train", "MR").ids} & {spk}


@pytest.mark.parametrize("name, message", [
    ("bad.wav", "does not follow the EmoDB pattern"),
    ("03a01Xa.wav", "unknown EmoDB emotion letter"),
])
def test_bad_file_names_are_refused(tmp_path, emodb, name, message):
    (tmp_path / "wav").mkdir()
    shutil.copy(emodb / "wav" / "03a01Fa.wav", tmp_path / "wav" / "03a01Fa.wav")
    shutil.copy(emodb / "wav" / "03a01Fa.wav", tmp_path / "wav" / name)
    with pytest.raises(InputError, match=message) as exc:
        read_emodb(tmp_path)
    assert name in str(exc.value)


def test_unreadable_audio_and_empty_folders_are_refused(tmp_path):
    (tmp_path / "wav").mkdir()
    with pytest.raises(InputError, match=r"no \.wav files"):
        read_emodb(tmp_path)
    (tmp_path / "wav" / "03a01Fa.wav").write_bytes(b"RIFF\x00\x00not a wav")
    with pytest.raises(InputError, match="unreadable audio") as exc:
        read_emodb(tmp_path)
    assert "03a01Fa.wav" in str(exc.value)


def test_malformed_recognition_table_names_the_row(tmp_path, emodb):
    (tmp_path / "wav").mkdir()
    shutil.copy(emodb / "wav" / "03a01Fa.wav", tmp_path / "wav")
    (tmp_path / "erkennung.txt").write_text("Nr.\tSatz\terkannt\tnatuerlich\n"
                                            "1\t03a01Fa.wav\t90,00\t75,00\n2\t03a01Nc.wav\n",
                                            encoding="latin-1")
    with pytest.raises(InputError) as exc:
        read_emodb(tmp_path)
    assert "erkennung.txt" in str(exc.value) and "row 3" in str(exc.value)


def test_blstm_fc_on_emodb_one_fold(home, emodb, tmp_path):
    task, _ = prepare("emodb", emodb)
    r = Runner(task, plugins.resolve("blstm-fc"), {"max_epochs": 2, "hidden": 16},
               runs=tmp_path / "runs", device="cpu")
    r.prepare_features()
    res = [r.run_cell(k) for k in r.cells([1], ["MR"], [0])]
    assert [x.status for x in res] == ["done"], [x.message for x in res]
    scores = score_record(task, find_records(tmp_path / "runs")[0][0], n_resamples=10)
    assert scores.n == {"MR": 49, "PR": 49, "AR": 49}  # speaker 03 has 49 released clips
    assert 0 <= scores.point["MR"]["uar"] <= 1
