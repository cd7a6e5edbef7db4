"""Readers of other toolkits' corpora: datasets (disk / hub), EmoBox JSON-lines, SpeechBrain JSON.

Each fixture is written in the format its toolkit documents: EmoBox's
``data/<corpus>/<corpus>.jsonl`` lines (key, dataset, wav, type, sample_rate,
num_frame, task, length, emo, channel), SpeechBrain's manifests keyed by
utterance id with ``{data_root}`` placeholders (its IEMOCAP recipe's wav /
length / emo), and a ``datasets`` folder written by ``save_to_disk``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import datasets
import numpy as np
import pytest
import soundfile as sf
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from serbench.errors import InputError
from serbench.readers import get_reader
from serbench.readers.emobox import read_emobox
from serbench.readers.hf_datasets import read_hf_dataset
from serbench.readers.speechbrain import read_speechbrain
from serbench.tasks import prepare


def wav(path: Path, seconds: float, rate: int = 16000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.zeros(int(seconds * rate), dtype=np.float32), rate)
    return path


def task_file(tasks_dir: Path, name: str, reader: str, options: dict, label_map: dict,
              speakers: tuple[str, str, str]) -> None:
    spec = {"name": name, "corpus": {"reader": reader, "options": options},
            "classes": sorted(set(label_map.values())), "label_map": label_map,
            "folds": {"group_by": "speaker_id",
                      "splits": [{"test": [speakers[0]], "dev": [speakers[1]]},
                                 {"test": [speakers[2]], "dev": [speakers[0]]}]},
            "frozen": False}
    (tasks_dir / name).mkdir()
    (tasks_dir / name / "task.yaml").write_text(yaml.safe_dump(spec))


def test_new_readers_are_registered_under_their_task_names():
    assert get_reader("datasets") is read_hf_dataset
    assert get_reader("emobox") is read_emobox
    assert get_reader("speechbrain") is read_speechbrain


# ----------------------------------------------------------------------------- EmoBox

EMOBOX = [  # key, wav (relative to data_dir), emo, seconds
    ("cafe-01-C-1-1", "downloads/cafe/CaFE_48k/Colere/Faible/01-C-1-1.wav", "c", 0.5),
    ("cafe-01-J-1-1", "downloads/cafe/CaFE_48k/Joie/Faible/01-J-1-1.wav", "j", 0.75),
    ("cafe-02-N-1-1", "downloads/cafe/CaFE_48k/Neutre/02-N-1-1.wav", "n", 1.0),
    ("cafe-02-T-2-3", "downloads/cafe/CaFE_48k/Tristesse/Fort/02-T-2-3.wav", "t", 0.25),
    ("cafe-03-C-2-1", "downloads/cafe/CaFE_48k/Colere/Fort/03-C-2-1.wav", "c", 0.5),
]


def emobox_corpus(root: Path, lines=EMOBOX, extra: dict | None = None) -> Path:
    meta = root / "data" / "cafe"
    meta.mkdir(parents=True)
    with (meta / "cafe.jsonl").open("w") as fh:
        for key, rel, emo, seconds in lines:
            wav(root / rel, seconds, 48000)
            fh.write(json.dumps({"key": key, "dataset": "cafe", "wav": rel, "type": "raw",
                                 "sample_rate": 48000, "num_frame": seconds * 48000,
                                 "task": "category", "length": seconds, "emo": emo,
                                 "channel": 1} | (extra or {})) + "\n")
    return meta / "cafe.jsonl"


def test_emobox_manifest_to_a_task(tasks_dir, home, tmp_path):
    manifest = emobox_corpus(tmp_path)
    task_file(tasks_dir, "cafe", "emobox",
              {"data_dir": "../..", "speaker_pattern": r"^cafe-(\d+)-"},
              {"c": "anger", "j": "happiness", "n": "neutral", "t": "sadness"},
              ("01", "02", "03"))
    built, prov = prepare("cafe", manifest.parent)  # the folder holding cafe.jsonl
    t = built.ratings.sort_values("utterance_id")
    assert t["utterance_id"].tolist() == [k for k, *_ in EMOBOX]
    assert t["speaker_id"].tolist() == ["01", "01", "02", "02", "03"]
    assert t["mapped_class"].tolist() == ["anger", "happiness", "neutral", "sadness", "anger"]
    assert t["rater_id"].isna().all() and prov["counts_only"]
    np.testing.assert_allclose(t["duration"].astype(float), [s for *_, s in EMOBOX])
    assert t["audio_path"].str.endswith(".wav").all()
    assert list(built.split(1, "test", "AR").ids) == ["cafe-01-C-1-1", "cafe-01-J-1-1"]


@pytest.mark.parametrize("change, message", [
    ({"start_time": 0.0, "end_time": 0.2}, "segments (start_time / end_time)"),
    ({"type": "feature"}, "type 'feature' is not supported"),
    ({"task": "valence"}, "task 'valence' is not supported"),
])
def test_emobox_refuses_what_serbench_cannot_score(tmp_path, change, message):
    manifest = emobox_corpus(tmp_path, extra=change)
    with pytest.raises(InputError, match="row 1") as exc:
        read_emobox(manifest, data_dir="../..", speaker_pattern=r"^cafe-(\d+)-")
    assert message in str(exc.value)


def test_emobox_bad_manifests_are_named(tmp_path):
    twice = emobox_corpus(tmp_path / "twice", lines=[*EMOBOX, EMOBOX[1]])
    with pytest.raises(InputError, match=r"listed twice \(first on line 2\)") as exc:
        read_emobox(twice, data_dir="../..", speaker_pattern=r"^cafe-(\d+)-")
    assert "row 6" in str(exc.value) and "not fold files" in str(exc.value)
    manifest = emobox_corpus(tmp_path / "ok")
    with pytest.raises(InputError, match="speaker_pattern"):
        read_emobox(manifest, data_dir="../..")
    with pytest.raises(InputError, match="finds no speaker in clip id 'cafe-01-C-1-1'"):
        read_emobox(manifest, data_dir="../..", speaker_pattern=r"^x-(\d+)")
    with pytest.raises(InputError, match="not found under"):
        read_emobox(manifest, speaker_pattern=r"^cafe-(\d+)-")  # wav paths need data_dir
    res = read_emobox(manifest.parent / "cafe.jsonl", speaker_pattern=r"^cafe-(\d+)-",
                      allow_missing_audio=True)
    assert res.table["audio_path"].isna().all() and list(res.drops.values()) == [5]


# ----------------------------------------------------------------------------- SpeechBrain


def speechbrain_corpus(root: Path) -> Path:
    """IEMOCAP-recipe style: {data_root}/<session>/<emo>/<file>.wav, split over three files."""
    data = root / "IEMOCAP_ahsn"
    splits = {
        "train.json": {"Ses01F_impro01_F000": ("session1/ang", "ang", 0.5),
                       "Ses01F_impro01_M001": ("session1/neu", "neu", 1.0)},
        "valid.json": {"Ses02F_script01_F002": ("session2/hap", "hap", 0.25)},
        "test.json": {"Ses03M_impro03_M003": ("session3/sad", "sad", 0.75)},
    }
    manifests = root / "manifests"
    manifests.mkdir()
    for name, entries in splits.items():
        out = {}
        for utt, (folder, emo, seconds) in entries.items():
            wav(data / folder / f"{utt}.wav", seconds)
            out[utt] = {"wav": f"{{data_root}}/{folder}/{utt}.wav", "length": seconds,
                        "emo": emo}
        (manifests / name).write_text(json.dumps(out, indent=2))
    return manifests


def test_speechbrain_manifests_to_a_task(tasks_dir, home, tmp_path):
    manifests = speechbrain_corpus(tmp_path)
    task_file(tasks_dir, "sb-iemocap", "speechbrain",
              {"data_root": "../IEMOCAP_ahsn", "speaker_pattern": r"^Ses0(\d)"},
              {"ang": "angry", "hap": "happy", "neu": "neutral", "sad": "sad"},
              ("1", "2", "3"))
    built, prov = prepare("sb-iemocap", manifests)
    t = built.ratings.sort_values("utterance_id")
    assert t["utterance_id"].tolist() == ["Ses01F_impro01_F000", "Ses01F_impro01_M001",
                                          "Ses02F_script01_F002", "Ses03M_impro03_M003"]
    assert t["speaker_id"].tolist() == ["1", "1", "2", "3"]
    assert t["mapped_class"].tolist() == ["angry", "neutral", "happy", "sad"]
    np.testing.assert_allclose(t["duration"].astype(float), [0.5, 1.0, 0.25, 0.75])
    assert len(prov["files"]) == 3 and prov["counts_only"]


def test_speechbrain_speaker_key_and_errors(tmp_path):
    manifests = speechbrain_corpus(tmp_path)
    train = json.loads((manifests / "train.json").read_text())
    for utt in train:
        train[utt]["spk_id"] = "spk-" + utt[:6]
    (manifests / "train.json").write_text(json.dumps(train))
    res = read_speechbrain(manifests / "train.json", data_root="../IEMOCAP_ahsn")
    assert res.table["speaker_id"].tolist() == ["spk-Ses01F"] * 2
    with pytest.raises(InputError, match="have no 'spk_id'") as exc:
        read_speechbrain(manifests, data_root="../IEMOCAP_ahsn")
    assert "speaker_pattern" in str(exc.value)
    valid = json.loads((manifests / "valid.json").read_text())
    (manifests / "valid.json").write_text(json.dumps(valid | {"Ses01F_impro01_F000": {
        "wav": "{data_root}/session1/ang/Ses01F_impro01_F000.wav", "emo": "ang"}}))
    with pytest.raises(InputError, match=r"also in .*train\.json"):
        read_speechbrain(manifests, data_root="../IEMOCAP_ahsn", speaker_pattern="^Ses0(\\d)")
    (manifests / "valid.json").write_text(json.dumps({"u1": {"wav": "{corpus}/x.wav",
                                                             "emo": "ang"}}))
    with pytest.raises(InputError, match=r"unknown placeholder \{corpus\}") as exc:
        read_speechbrain(manifests / "valid.json")
    assert "replacements" in str(exc.value)
    (manifests / "valid.json").write_text(json.dumps({"u1": {"wav": "../../etc/passwd",
                                                             "emo": "ang"}}))
    with pytest.raises(InputError, match="leaves its folder"):
        read_speechbrain(manifests / "valid.json", speaker_pattern="(u)")


# ----------------------------------------------------------------------------- datasets


def per_rater_dataset(root: Path) -> Path:
    """A HF dataset of rater answers: ClassLabel emotions, an Audio column, own column names."""
    clips = {"clip_a": ("spk1", 0.5), "clip_b": ("spk2", 0.25), "clip_c": ("spk3", 1.0)}
    answers = [("clip_a", "w1", 0), ("clip_a", "w2", 0), ("clip_a", "w3", 1),
               ("clip_b", "w1", 2), ("clip_b", "w2", 1), ("clip_c", "w3", 2)]
    for clip, (_, seconds) in clips.items():
        wav(root / "audio" / f"{clip}.wav", seconds)
    ds = datasets.Dataset.from_dict(
        {"file": [a[0] for a in answers], "annotator": [a[1] for a in answers],
         "emotion": [a[2] for a in answers], "spk": [clips[a[0]][0] for a in answers],
         "wav": [str(root / "audio" / f"{a[0]}.wav") for a in answers]},
        features=datasets.Features({"file": datasets.Value("string"),
                                    "annotator": datasets.Value("string"),
                                    "emotion": datasets.ClassLabel(names=["ang", "hap", "neu"]),
                                    "spk": datasets.Value("string"),
                                    "wav": datasets.Value("string")}))
    ds = ds.cast_column("wav", datasets.Audio())  # save_to_disk embeds the bytes
    out = root / "hf"
    datasets.DatasetDict({"train": ds.select(range(4)), "test": ds.select(range(4, 6))}) \
        .save_to_disk(str(out))
    return out


COLUMNS = {"utterance_id": "file", "rater_id": "annotator", "label": "emotion",
           "speaker_id": "spk", "audio": "wav"}


def test_datasets_folder_with_a_column_map(tasks_dir, home, tmp_path):
    folder = per_rater_dataset(tmp_path)
    for f in (tmp_path / "audio").iterdir():  # only the embedded bytes are left
        f.unlink()
    res = read_hf_dataset(folder, columns=COLUMNS)
    t = res.table
    assert list(zip(t["utterance_id"], t["rater_id"], t["label"], strict=True)) == [
        ("clip_a", "w1", "ang"), ("clip_a", "w2", "ang"), ("clip_a", "w3", "hap"),
        ("clip_b", "w1", "neu"), ("clip_b", "w2", "hap"), ("clip_c", "w3", "neu")]
    assert not res.counts_only
    by_clip = t.drop_duplicates("utterance_id").set_index("utterance_id")
    np.testing.assert_allclose(by_clip["duration"].astype(float), [0.5, 0.25, 1.0])
    assert all(str(home) in p and Path(p).is_file() for p in by_clip["audio_path"])
    task_file(tasks_dir, "hf-tiny", "datasets", {"columns": COLUMNS},
              {"ang": "angry", "hap": "happy", "neu": "neutral"}, ("spk1", "spk2", "spk3"))
    built, _ = prepare("hf-tiny", folder)
    np.testing.assert_allclose(built.split(1, "test", "AR").targets, [[2 / 3, 1 / 3, 0]])
    only_test = read_hf_dataset(folder, columns=COLUMNS, split="test")
    assert only_test.table["utterance_id"].tolist() == ["clip_b", "clip_c"]


def test_datasets_vote_counts(tmp_path):
    ds = datasets.Dataset.from_dict({"utterance_id": ["u1", "u2"], "speaker_id": ["s1", "s2"],
                                     "n_ang": [2, 0], "n_neu": [1, 3]})
    ds.save_to_disk(str(tmp_path / "counts"))
    res = read_hf_dataset(tmp_path / "counts", vote_columns={"n_ang": "ang", "n_neu": "neu"})
    t = res.table
    assert list(zip(t["utterance_id"], t["label"], strict=True)) == [
        ("u1", "ang"), ("u1", "ang"), ("u1", "neu"), ("u2", "neu"), ("u2", "neu"), ("u2", "neu")]
    assert res.counts_only and t["source_row"].tolist() == [1, 1, 1, 2, 2, 2]


def test_datasets_column_map_naming_a_missing_column(tmp_path):
    folder = per_rater_dataset(tmp_path)
    with pytest.raises(InputError) as exc:
        read_hf_dataset(folder, columns=COLUMNS | {"session": "recording"})
    text = str(exc.value)
    assert "column 'recording' (for session) is not in the dataset" in text
    assert "'annotator'" in text and "corpus.options.columns" in text
    with pytest.raises(InputError, match=r"column 'speaker_id' .* not in the dataset"):
        read_hf_dataset(folder, columns={"utterance_id": "file", "label": "emotion"})


def test_hub_id_without_network_asks_for_a_local_copy(tasks_dir, tmp_path):
    task_file(tasks_dir, "hub-tiny", "datasets", {"columns": COLUMNS},
              {"ang": "angry", "hap": "happy"}, ("a", "b", "c"))
    env = os.environ | {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
                        "HF_HOME": str(tmp_path / "hf"), "SERBENCH_HOME": str(tmp_path / "h")}
    res = subprocess.run([sys.executable, "-m", "serbench.cli", "prepare", "hub-tiny",
                          "--source", "serbench-tests/no-such-corpus"],
                         capture_output=True, text=True, timeout=300, env=env)
    assert res.returncode == 2, res.stderr
    assert "pass a local copy" in res.stderr and "save_to_disk" in res.stderr
    assert "Traceback" not in res.stderr


def test_a_serbench_export_reads_back_into_the_same_task(tasks_dir, home, tmp_path):
    """demo -> export -> datasets reader -> a task with the demo's definition: same fingerprint."""
    from serbench.export import export_task
    from serbench.tasks import load_task

    demo = load_task("demo")
    out = export_task(demo, tmp_path / "demo-export")
    spec = yaml.safe_load((Path(__file__).parents[1] / "tasks" / "demo" / "task.yaml")
                          .read_text())
    spec |= {"name": "demo-back", "frozen": False,
             "corpus": {"reader": "datasets", "options": {"allow_absolute_audio": True}}}
    (tasks_dir / "demo-back").mkdir()
    (tasks_dir / "demo-back" / "task.yaml").write_text(yaml.safe_dump(spec))
    back, prov = prepare("demo-back", out)
    assert back.fingerprint["fingerprint"] == demo.fingerprint["fingerprint"]
    assert len(back.ratings) == len(demo.ratings)  # each vote once, not once per fold
    assert back.ratings["rater_id"].nunique() == demo.ratings["rater_id"].nunique()
    assert any("serbench export of task demo" in n for n in prov["notes"])
    with pytest.raises(InputError, match="allow_absolute_audio"):
        read_hf_dataset(out)  # the export's audio paths are absolute


def test_an_export_with_audio_reads_back_from_its_embedded_bytes(tasks_dir, home, tmp_path):
    from test_table_reader import write_corpus

    from serbench.export import export_task

    spec = {"name": "tiny", "corpus": {"reader": "csv"}, "classes": ["angry", "happy", "neutral"],
            "label_map": {"ang": "angry", "hap": "happy", "neu": "neutral"},
            "folds": {"group_by": "speaker_id", "splits": [{"test": ["s1"], "dev": ["s2"]}]},
            "frozen": False}
    (tasks_dir / "tiny").mkdir()
    (tasks_dir / "tiny" / "task.yaml").write_text(yaml.safe_dump(spec))
    tiny, _ = prepare("tiny", write_corpus(tmp_path / "corpus"))
    out = export_task(tiny, tmp_path / "tiny-export", audio=True)
    res = read_hf_dataset(out)
    t = res.table
    assert len(t) == len(tiny.ratings) and set(t["utterance_id"]) == {"c1", "c2", "c3", "c4"}
    assert all(str(home) in p for p in t["audio_path"])  # written from the bytes, not the paths
    assert (t["duration"] == 0.5).all()
    with pytest.raises(InputError, match="needs no column map"):
        read_hf_dataset(out, columns={"utterance_id": "utterance_id"})


# ----------------------------------------------------------------------------- property campaign

VALUES = st.one_of(st.none(), st.just(""), st.text(max_size=8), st.integers(-2, 2),
                   st.floats(allow_nan=True), st.lists(st.integers(0, 2), max_size=2),
                   st.dictionaries(st.sampled_from(["a", "b"]), st.integers(0, 2), max_size=2),
                   st.sampled_from(["../x.wav", "/etc/passwd", "{data_root}/a.wav", "{x}/a.wav",
                                    "a.wav", "cafe-01-C-1-1", "category", "raw"]))
SETTINGS = settings(max_examples=int(os.environ.get("SERBENCH_HYPOTHESIS_EXAMPLES", "60")),
                    deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@SETTINGS
@given(edits=st.lists(st.tuples(st.integers(0, 2), st.sampled_from(
    ["key", "wav", "emo", "task", "type", "speaker", "start_time"]), VALUES), max_size=3),
    garbage=st.sampled_from([None, "{not json", "[1, 2]", ""]))
def test_emobox_any_corruption_is_read_or_named(tmp_path_factory, edits, garbage):
    root = tmp_path_factory.mktemp("emobox")
    wav(root / "a.wav", 0.5)
    lines = [{"key": f"cafe-0{i}-C-1-1", "wav": "a.wav", "emo": "c", "task": "category",
              "type": "raw"} for i in range(3)]
    for i, field, value in edits:
        lines[i][field] = value
    text = "\n".join(json.dumps(x) for x in lines) + "\n" + (garbage or "")
    (root / "m.jsonl").write_text(text)
    try:
        res = read_emobox(root / "m.jsonl", speaker_pattern=r"^cafe-(\d+)")
    except InputError as exc:
        assert "m.jsonl" in str(exc) or "speaker_pattern" in str(exc)
        return
    assert len(res.table) == 3 and res.table["audio_path"].notna().all()


@SETTINGS
@given(edits=st.lists(st.tuples(st.sampled_from(["u1", "u2"]), st.sampled_from(
    ["wav", "emo", "spk_id", "length"]), VALUES), max_size=3),
    top=st.sampled_from([None, [], "x", 3]))
def test_speechbrain_any_corruption_is_read_or_named(tmp_path_factory, edits, top):
    root = tmp_path_factory.mktemp("sb")
    wav(root / "a.wav", 0.5)
    data: dict = {u: {"wav": "{data_root}/a.wav", "emo": "ang", "spk_id": "s1"}
                  for u in ("u1", "u2")}
    for u, field, value in edits:
        data[u][field] = value
    (root / "m.json").write_text(json.dumps(data if top is None else top))
    try:
        res = read_speechbrain(root / "m.json")
    except InputError as exc:
        assert "m.json" in str(exc)
        return
    assert len(res.table) == 2 and res.table["audio_path"].notna().all()
