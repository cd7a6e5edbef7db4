"""Untrusted files: safetensors checkpoints, safe YAML, paths confined to their folders."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from serbench import checkpoints, plugins
from serbench.errors import InputError
from serbench.readers.table import read_table
from serbench.runner import Runner
from serbench.tasks import load_task
from serbench.tasks.spec import load_spec

REPO = Path(__file__).resolve().parents[1]
SMALL = {"max_epochs": 2, "hidden": 8}


def test_saved_models_reload_to_the_same_predictions(home: Path, tmp_path: Path):
    task = load_task("demo")
    cls = plugins.resolve("blstm-fc")
    saver = Runner(task, cls, SMALL, runs=tmp_path / "a", device="cpu", save_models=True)
    saver.prepare_features()
    keys = saver.cells([1, 2], ["AR"], [0])
    assert [saver.run_cell(k).status for k in keys] == ["done", "done"]
    folder = keys[0].folder(tmp_path / "a")
    rec = json.loads((folder / "record.json").read_text())
    assert rec["checkpoint"]["file"] == "model.safetensors"
    data = (folder / "model.safetensors").read_bytes()
    assert not data.startswith(b"\x80")  # not a pickle: an 8-byte length, then a JSON header
    header = json.loads(data[8:8 + int.from_bytes(data[:8], "little")])
    meta = json.loads(header["__metadata__"]["serbench"])
    assert meta["fold"] == 1 and meta["config"]["hidden"] == 8

    loader = Runner(task, cls, SMALL, runs=tmp_path / "b", device="cpu",
                    load_models=tmp_path / "a")
    loader.prepare_features()
    assert [loader.run_cell(k).status for k in keys] == ["done", "done"]
    for k in keys:
        a = pd.read_parquet(k.folder(tmp_path / "a") / "predictions.parquet")
        b = pd.read_parquet(k.folder(tmp_path / "b") / "predictions.parquet")
        pd.testing.assert_frame_equal(a, b, check_exact=True)
    loaded = json.loads((keys[0].folder(tmp_path / "b") / "record.json").read_text())
    assert loaded["loaded_from"]["sha256"] == rec["checkpoint"]["sha256"]

    # A tampered checkpoint, or another configuration, is refused with the file named.
    (folder / "model.safetensors").write_bytes(data[:-4] + b"\x00\x00\x00\x00")
    with pytest.raises(InputError, match="does not match the sha256"):
        Runner(task, cls, SMALL, runs=tmp_path / "c", device="cpu",
               load_models=tmp_path / "a").run_cell(keys[0])
    with pytest.raises(InputError, match="another configuration"):
        Runner(task, cls, {**SMALL, "hidden": 16}, runs=tmp_path / "d", device="cpu",
               load_models=tmp_path / "a").run_cell(keys[1])


def test_checkpoint_reader_refuses_a_pickle(tmp_path: Path):
    import pickle

    path = tmp_path / "model.safetensors"
    path.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    with pytest.raises(InputError, match="not a safetensors checkpoint"):
        checkpoints.read(path)


def test_save_models_needs_a_submission_that_can(home: Path, tmp_path: Path):
    with pytest.raises(InputError, match="cannot save or load models"):
        Runner(load_task("demo"), plugins.resolve("ssl-mlp"), runs=tmp_path, device="cpu",
               save_models=True)


def test_no_unsafe_torch_load_in_the_source():
    """Every torch.load in the harness and baselines passes weights_only=True."""
    calls = []
    for path in [*REPO.joinpath("benchmark").rglob("*.py"),
                 *REPO.joinpath("submissions").rglob("*.py")]:
        for m in re.finditer(r"torch\.load\(([^)]*)\)", path.read_text()):
            calls.append((path.name, m.group(1)))
    assert all("weights_only=True" in args for _, args in calls), calls


def test_task_yaml_cannot_construct_objects(tmp_path: Path):
    marker = tmp_path / "pwned"
    file = tmp_path / "task.yaml"
    file.write_text(f"name: evil\nversion: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(InputError, match="not valid YAML"):
        load_spec(file)
    assert not marker.exists()


@pytest.mark.parametrize("audio", ["../outside.wav", "/etc/passwd", "clips/../../outside.wav"])
def test_ratings_table_audio_paths_stay_in_their_folder(tmp_path: Path, audio: str):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "ratings.csv").write_text(
        "utterance_id,speaker_id,label,rater_id,audio\n"
        "u1,s1,angry,r1,\n"
        f"u2,s1,sad,r1,{audio}\n")
    with pytest.raises(InputError) as info:
        read_table(corpus)
    err = info.value
    assert "leaves its folder" in err.problem and err.row == 3
    assert err.file == str(corpus / "ratings.csv")


def test_task_options_cannot_point_outside_the_source(tmp_path: Path):
    (tmp_path / "secret.csv").write_text("utterance_id,speaker_id,label\nu,s,angry\n")
    (tmp_path / "corpus").mkdir()
    with pytest.raises(InputError, match="leaves its folder"):
        read_table(tmp_path / "corpus", file="../secret.csv")
    from serbench.readers.released import read_released_labels

    with pytest.raises(InputError, match="leaves its folder"):
        read_released_labels(tmp_path / "corpus", rule_file="../../x", partition=1)


def test_prediction_file_named_by_a_record_stays_in_its_folder(tmp_path: Path):
    from serbench.records import read_record

    rec = {"schema": 1, "task": "demo", "task_fingerprint": "x", "fold": 1, "train_rule": "AR",
           "seed": 0, "submission": {"name": "s"}, "predictions": "../../../etc/passwd"}
    path = tmp_path / "record.json"
    path.write_text(json.dumps(rec))
    with pytest.raises(InputError, match="plain file name"):
        read_record(path)
    assert np.isfinite(0)  # reached: the refusal is an InputError, not a crash
