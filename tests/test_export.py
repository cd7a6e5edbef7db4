"""serbench export: a task as a datasets DatasetDict, checked against the raw ratings by hand."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import datasets
import numpy as np
import pytest
import yaml
from test_table_reader import write_corpus

from conftest import shared
from serbench.errors import FingerprintMismatch, InputError
from serbench.export import export_metadata, export_task, load_export
from serbench.tasks import load_task, prepare


@pytest.fixture
def demo(home):
    return load_task("demo")


def test_every_column_matches_the_raw_ratings(demo, tmp_path):
    out = export_task(demo, tmp_path / "demo-export")
    dd = datasets.load_from_disk(str(out))
    assert sorted(dd) == sorted(f"fold{f}_{s}" for f in range(1, 6)
                                for s in ("train", "dev", "test"))
    k, eps = 6, 0.05
    classes = list(demo.spec.classes)
    raw = demo.ratings.astype({"utterance_id": str, "mapped_class": str})
    for f in range(1, 6):  # every clip once per fold, in the manifest's split
        n = sum(len(dd[f"fold{f}_{s}"]) for s in ("train", "dev", "test"))
        assert n == raw["utterance_id"].nunique() == 360
        test = dd[f"fold{f}_test"]
        assert set(test["speaker_id"]) == set(demo.spec.folds[f - 1].test)
    test = dd["fold1_test"]
    assert test.features["label"].names == classes
    for row in test.select(range(0, len(test), 7)):  # every 7th clip, worked out from raw ratings
        mine = raw[raw["utterance_id"] == row["utterance_id"]]
        primary = mine[mine["question"] == "primary"]  # the task's question; secondary kept too
        votes = np.array([(primary["mapped_class"] == c).sum() for c in classes])
        other = int((primary["mapped_class"] == "other").sum())
        assert row["votes"] == votes.tolist() and row["votes_other"] == other
        top_unique = (votes == votes.max()).sum() == 1 and votes.max() > 0
        assert row["label"] == (int(votes.argmax()) if top_unique else -1)
        assert row["in_pr"] == top_unique
        assert row["in_mr"] == (top_unique and 2 * votes.max() > votes.sum() + other)
        assert row["in_ar"] == (votes.sum() > 0)
        v = votes / votes.sum()
        np.testing.assert_allclose(row["distribution"], v)
        np.testing.assert_allclose(row["smoothed"], (1 - eps) * v + eps / (k - 1) * (1 - v))
        assert row["multi_hot"] == (v > 1 / k).astype(int).tolist()
        if top_unique:
            np.testing.assert_allclose(row["smoothed_onehot"],
                                       [0.95 if i == votes.argmax() else 0.01 for i in range(k)])
        else:
            assert row["smoothed_onehot"] is None
        got = sorted((r["rater_id"], r["label"], r["question"]) for r in row["ratings"])
        want = sorted(zip(mine["rater_id"], mine["label"], mine["question"], strict=True))
        assert got == want and row["n_ratings"] == len(mine)
        assert Path(row["audio_path"]).is_file() and row["fold"] == 1 and row["split"] == "test"
    # membership is the task's own: what serbench run trains and scores on
    for rule in ("MR", "PR", "AR"):
        kept = {u for u, m in zip(test["utterance_id"], test[f"in_{rule.lower()}"],
                                  strict=True) if m}
        assert kept == set(demo.split(1, "test", rule).ids)


def test_info_carries_the_fingerprint_and_version(demo, tmp_path):
    out = export_task(demo, tmp_path / "x")
    dd = datasets.load_from_disk(str(out))
    info = dd["fold2_dev"].info
    assert str(info.version) == f"{demo.spec.version}.0.0" and info.config_name == "demo"
    meta = export_metadata(dd)
    assert meta["fingerprint"] == demo.fingerprint["fingerprint"] == export_metadata(out)[
        "fingerprint"]
    assert meta["task"] == "demo" and meta["version"] == demo.spec.version == 2
    assert meta["classes"][0] == "anger"
    assert len(load_export(out, demo)) == 15


def test_an_export_of_other_targets_is_refused(demo, tmp_path):
    out = export_task(demo, tmp_path / "x")
    fp = demo.fingerprint["fingerprint"]
    infos = sorted(out.glob("*/dataset_info.json"))
    for info in infos:  # as if exported from a build with other targets
        data = json.loads(info.read_text())
        data["description"] = data["description"].replace(fp, "0" * 64)
        info.write_text(json.dumps(data))
        if info == infos[0]:
            with pytest.raises(InputError, match="different serbench metadata"):
                load_export(out, demo)
    with pytest.raises(FingerprintMismatch, match="000000000000") as exc:
        load_export(out, demo)
    assert fp[:12] in str(exc.value) and "export again" in str(exc.value)


def test_nothing_is_overwritten_unless_asked(demo, tmp_path):
    out = export_task(demo, tmp_path / "x")
    stamp = (out / "dataset_dict.json").stat().st_mtime_ns
    with pytest.raises(InputError, match="already exists"):
        export_task(demo, out)
    assert (out / "dataset_dict.json").stat().st_mtime_ns == stamp
    export_task(demo, out, overwrite=True)
    assert len(load_export(out, demo)) == 15
    mine = tmp_path / "my-thesis"
    mine.mkdir()
    (mine / "chapter1.tex").write_text("precious")
    with pytest.raises(InputError, match="not a previous serbench export"):
        export_task(demo, mine, overwrite=True)
    assert (mine / "chapter1.tex").read_text() == "precious"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left


def test_audio_column_holds_the_files_without_decoding(tasks_dir, home, tmp_path):
    src = write_corpus(tmp_path / "corpus")
    task = {"name": "tiny", "corpus": {"reader": "csv"}, "classes": ["angry", "happy", "neutral"],
            "label_map": {"ang": "angry", "hap": "happy", "neu": "neutral"},
            "folds": {"group_by": "speaker_id", "splits": [{"test": ["s1"], "dev": ["s2"]}]},
            "frozen": False}
    (tasks_dir / "tiny").mkdir()
    (tasks_dir / "tiny" / "task.yaml").write_text(yaml.safe_dump(task))
    built, _ = prepare("tiny", src)
    out = export_task(built, tmp_path / "tiny-export", audio=True)
    ds = datasets.load_from_disk(str(out))["fold1_test"]
    assert isinstance(ds.features["audio"], datasets.Audio)
    assert ds["utterance_id"] == ["c1"]
    raw = ds.cast_column("audio", datasets.Audio(decode=False))[0]
    assert raw["audio"]["bytes"] == Path(raw["audio_path"]).read_bytes()  # embedded, portable
    assert raw["duration"] == 0.5


def test_cli_export_and_its_refusal(home, tmp_path):
    out = tmp_path / "cli-export"
    cmd = [sys.executable, "-m", "serbench.cli", "export", "demo", "--to", str(out),
           "--json"]
    ok = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["path"] == str(out)
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert again.returncode == 2
    assert "already exists" in again.stderr and "Traceback" not in again.stderr


def test_crema_d_exports_every_clip_and_rating(home, tmp_path):
    """CREMA-D voice-only: 7,442 clips, 68,568 ratings in every fold (timing: benchmarks/)."""
    source = shared("crema-d")
    prepare("crema-d", source)
    task = load_task("crema-d")
    t0 = time.perf_counter()
    out = export_task(task, tmp_path / "crema")
    seconds = time.perf_counter() - t0
    dd = datasets.load_from_disk(str(out))
    for f in range(1, 6):
        parts = [dd[f"fold{f}_{s}"] for s in ("train", "dev", "test")]
        assert sum(len(p) for p in parts) == 7442
        assert sum(sum(p["n_ratings"]) for p in parts) == 68568
    assert seconds < 120  # generous: the 30 s target is measured by benchmarks/bench_export.py

