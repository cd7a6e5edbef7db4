"""CREMA-D voice-only task on the real rating tables, and the reader's file formats."""

import csv
from pathlib import Path

import pandas as pd
import pytest

from conftest import shared
from serbench.errors import InputError
from serbench.readers.crema_d import read_crema_d
from serbench.tasks import prepare
from serbench.tasks.verify import verify


def independent_counts(path: Path, modality: int = 1) -> dict[str, int]:
    """MR / PR / AR sizes over one modality's rows, with plain Python (no serbench code)."""
    kept = {"MR": 0, "PR": 0, "AR": 0}
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            if int(row[""]) // 100000 != modality:
                continue
            votes = [int(row[c]) for c in "ADFHNS"]
            top, total = max(votes), sum(votes)
            unique = votes.count(top) == 1
            kept["AR"] += total > 0
            kept["PR"] += unique
            kept["MR"] += unique and 2 * top > total
    return kept


@pytest.mark.shared
@pytest.mark.parametrize(("name", "modality"), [("crema-d", 1), ("crema-d-face", 2),
                                                ("crema-d-audiovisual", 3)])
def test_rule_counts_and_folds_per_modality(home, name: str, modality: int):
    src = shared("crema-d")
    task, prov = prepare(name, src)
    summary = task.summary()
    want = independent_counts(src / "tabulatedVotes.csv", modality)
    if "DS" in task.spec.rules:  # Dawid-Skene keeps every clip with a vote, like AR
        want["DS"] = want["AR"]
    assert summary["rules"] == want
    assert summary["n_utterances"] == 7442
    assert prov["counts_only"] is True and summary["n_raters"] == 0
    # Actors never cross splits; folds equal the released 5-fold CREMA-D split.
    for fold in range(1, 6):
        spk = {s: {u[:4] for u in task.split(fold, s, "AR").ids} for s in ("train", "dev", "test")}
        assert not (spk["train"] & spk["test"]) and not (spk["dev"] & spk["test"])
    reports = verify(task, shared("chou-labels", "crema-d-6class"), targets=False)
    assert len(reports) == 5 and all(r.ok for r in reports)


def write_responses(folder: Path) -> Path:
    """A finishedResponses.csv in the documented column format (CREMA-D docs/README.md)."""
    folder.mkdir()
    rows = [
        # localid, sessionNums, queryType, questNum, pos, ans, ttr, numTries, clipNum,
        # clipName, respEmo
        ("r1", 1, 1, 1, 1, "A_60", 900, 0, 1, "1001_IEO_ANG_HI", "A"),
        ("r2", 1, 1, 1, 1, "A_50", 900, 0, 1, "1001_IEO_ANG_HI", "A"),
        ("r3", 1, 1, 1, 1, "N_50", 900, 0, 1, "1001_IEO_ANG_HI", "N"),
        ("r3", 1, 1, 2, 9, "A_50", 900, 0, 1, "1001_IEO_ANG_HI", "A"),  # repeat: dropped
        ("r1", 1, 2, 1, 2, "H_50", 900, 0, 1, "1001_IEO_ANG_HI", "H"),  # face only: ignored
        ("r1", 1, 1, 3, 3, "S_50", 900, 0, 2, "1002_DFA_SAD_XX", "S"),
    ]
    with open(folder / "finishedResponses.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["localid", "sessionNums", "queryType", "questNum", "pos", "ans", "ttr",
                    "numTries", "clipNum", "clipName", "respEmo"])
        w.writerows(rows)
    return folder


def test_per_rater_responses(tmp_path: Path):
    res = read_crema_d(write_responses(tmp_path / "crema"))
    t = res.table
    assert res.counts_only is False
    assert sorted(zip(t["utterance_id"], t["rater_id"], t["label"], strict=True)) == [
        ("1001_IEO_ANG_HI", "r1", "A"), ("1001_IEO_ANG_HI", "r2", "A"),
        ("1001_IEO_ANG_HI", "r3", "N"), ("1002_DFA_SAD_XX", "r1", "S")]
    assert list(res.drops.values()) == [1]
    assert set(t["speaker_id"]) == {"1001", "1002"}


def test_tabulated_sum_mismatch_names_the_row(tmp_path: Path):
    folder = tmp_path / "crema"
    folder.mkdir()
    df = pd.DataFrame({"": [100001, 100002], "A": [1, 0], "D": [0, 0], "F": [0, 0], "H": [0, 1],
                       "N": [2, 0], "S": [0, 0], "fileName": ["1001_IEO_NEU_XX", "1001_IEO_HAP_LO"],
                       "numResponses": [3, 2]})
    df.to_csv(folder / "tabulatedVotes.csv", index=False)
    with pytest.raises(InputError) as exc:
        read_crema_d(folder)
    assert "tabulatedVotes.csv, row 3" in str(exc.value) and "numResponses" in str(exc.value)


def test_no_source_files(tmp_path: Path):
    with pytest.raises(InputError, match=r"neither finishedResponses\.csv nor tabulatedVotes\.csv"):
        read_crema_d(tmp_path)


def test_broken_release_wavs_are_counted_not_crashed_on(tmp_path: Path):
    """A git-lfs stub, a header without samples and garbage: each counted under its reason."""
    import numpy as np
    import soundfile as sf

    folder = write_responses(tmp_path / "crema")
    wavs = folder / "AudioWAV"
    wavs.mkdir()
    sf.write(wavs / "1001_IEO_ANG_HI.wav", np.zeros(16000, dtype=np.float32), 16000)
    (wavs / "1002_DFA_SAD_XX.wav").write_text(
        "version https://git-lfs.github.com/spec/v1\noid sha256:c6f9\nsize 72862\n")
    res = read_crema_d(folder)
    audio = dict(zip(res.table["utterance_id"], res.table["audio_path"], strict=True))
    assert isinstance(audio["1001_IEO_ANG_HI"], str) and pd.isna(audio["1002_DFA_SAD_XX"])
    assert res.drops[
        "clips with an AudioWAV file that is a git-lfs pointer, not audio (clone with git-lfs) "
        "(ratings kept, audio null)"] == 1
    assert len(res.table) == 4  # every rating kept
    sf.write(wavs / "1002_DFA_SAD_XX.wav", np.zeros(0, dtype=np.float32), 16000)
    assert read_crema_d(folder).drops[
        "clips with an AudioWAV file with no samples (ratings kept, audio null)"] == 1
    (wavs / "1002_DFA_SAD_XX.wav").write_bytes(b"RIFF\x00\x00garbage")
    assert read_crema_d(folder).drops[
        "clips with an unreadable AudioWAV file (ratings kept, audio null)"] == 1


@pytest.mark.parametrize(("column", "value", "message"), [
    ("respEmo", "X", "respEmo 'X' not understood"),
    ("clipName", "../../etc/passwd", "clipName '../../etc/passwd' not understood"),
    ("queryType", "7", "queryType '7' is not 1, 2 or 3"),
    ("localid", "", "localid '' not understood"),
])
def test_bad_response_rows_name_the_row(tmp_path: Path, column: str, value: str, message: str):
    folder = write_responses(tmp_path / "crema")
    df = pd.read_csv(folder / "finishedResponses.csv", dtype=str, keep_default_na=False)
    df.loc[2, column] = value
    df.to_csv(folder / "finishedResponses.csv", index=False)
    with pytest.raises(InputError) as info:
        read_crema_d(folder)
    assert info.value.row == 4 and message in info.value.problem
