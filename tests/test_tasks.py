"""Task definitions: YAML validation, frozen manifests, fingerprints, splits."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from serbench import paths
from serbench.errors import FingerprintMismatch, InputError, NotPrepared
from serbench.methods.cooccurrence import fold_cooccurrence, fold_penalty_matrix
from serbench.targets import label_smooth
from serbench.tasks import freeze, get_spec, load_task, prepare
from serbench.tasks.spec import parse_task

# Tiny released-label corpus: 3 classes, 4 sessions, vote counts chosen by hand.
VOTES = {
    "S1_u1": (3, 0, 0), "S1_u2": (2, 1, 0), "S2_u1": (1, 1, 0), "S2_u2": (1, 1, 1),
    "S3_u1": (0, 2, 1), "S3_u2": (0, 0, 2), "S4_u1": (2, 2, 1), "S4_u2": (2, 3, 1),
}
TASK = {
    "name": "tiny",
    "corpus": {"reader": "released-labels",
               "options": {"session_regex": r"^S(\d+)_", "question": "primary"}},
    "classes": ["a", "b", "c"],
    "label_map": {"a": "a", "b": "b", "c": "c"},
    "folds": {"group_by": "session", "splits": [{"test": ["1"], "dev": ["2"]},
                                                {"test": ["3"], "dev": ["4"]}]},
    "metrics": ["multilabel_macro_f1", "uar"],
}


def write_release(folder: Path, votes=VOTES) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"categorical": {"emo_type": ["a", "b", "c"]}}))
    lines = [",a,b,c,SpkrID,Gender,Split_Set"]
    for utt, c in votes.items():
        t = label_smooth(np.array(c) / sum(c))
        lines.append(f"{utt}.wav," + ",".join(f"{v:.6f}" for v in t) + f",{utt[1]},Female,Train")
    (folder / "D_1.csv").write_text("\n".join(lines) + "\n")
    return folder


@pytest.fixture
def tiny(tasks_dir: Path, home: Path, tmp_path: Path) -> Path:
    (tasks_dir / "tiny").mkdir()
    (tasks_dir / "tiny" / "task.yaml").write_text(yaml.safe_dump(TASK))
    src = write_release(tmp_path / "release")
    freeze("tiny", src)
    return src


def test_splits_and_targets_hand_computed(tiny: Path):
    task, prov = prepare("tiny", tiny)
    assert prov["counts_only"] is True
    # PR keeps unique tops: S1_u1 S1_u2 S3_u1 S3_u2 S4_u2; MR also needs "> half",
    # which S4_u2 (3 of 6) misses.
    assert sorted(task.counts.ids[task.rule("PR").keep]) == [
        "S1_u1", "S1_u2", "S3_u1", "S3_u2", "S4_u2"]
    assert sorted(task.counts.ids[task.rule("MR").keep]) == ["S1_u1", "S1_u2", "S3_u1", "S3_u2"]
    # Fold 1: test = session 1, dev = session 2, train = sessions 3 and 4.
    test_mr = task.split(1, "test", "MR")
    assert test_mr.ids.tolist() == ["S1_u1", "S1_u2"] and test_mr.labels.tolist() == [0, 0]
    assert task.split(1, "dev", "PR").ids.tolist() == []
    train_ar = task.split(1, "train", "AR")
    assert train_ar.ids.tolist() == ["S3_u1", "S3_u2", "S4_u1", "S4_u2"]
    np.testing.assert_allclose(train_ar.targets[0], [0, 2 / 3, 1 / 3])
    np.testing.assert_allclose(train_ar.smoothed(0.05)[3], label_smooth(np.array([2, 3, 1]) / 6))
    assert task.split(2, "test", "PR").ids.tolist() == ["S3_u1", "S3_u2"]
    s = task.summary()
    assert s["rules"] == {"MR": 4, "PR": 5, "AR": 8}
    assert s["folds"][1]["rules"]["PR"]["test"]["class_counts"] == {"a": 0, "b": 1, "c": 1}


def test_every_split_is_nested_and_consistent_across_rules(tiny: Path):
    task, _ = prepare("tiny", tiny)
    for fold in (1, 2):
        where = {}
        for rule in ("AR", "PR", "MR"):
            for split in ("train", "dev", "test"):
                for u in task.split(fold, split, rule).ids:
                    assert where.setdefault(u, split) == split
        mr, pr, ar = (set(task.split(fold, "test", r).ids) for r in ("MR", "PR", "AR"))
        assert mr <= pr <= ar


def test_changed_vote_is_a_fingerprint_mismatch_and_keeps_prepared_table(tiny: Path, tmp_path):
    prepare("tiny", tiny)
    stored = paths.task_cache("tiny") / "ratings.parquet"
    before = stored.read_bytes()
    changed = write_release(tmp_path / "changed", {**VOTES, "S3_u1": (0, 1, 2)})
    with pytest.raises(FingerprintMismatch) as exc:
        prepare("tiny", changed)
    msg = str(exc.value)
    assert "fold_2 PR test" in msg and "fingerprint.json" in msg and "fix:" in msg
    assert stored.read_bytes() == before  # nothing half-written, nothing replaced


def test_missing_utterance_is_a_manifest_mismatch(tiny: Path, tmp_path):
    fewer = write_release(tmp_path / "fewer", {k: v for k, v in VOTES.items() if k != "S2_u2"})
    with pytest.raises(InputError) as exc:
        prepare("tiny", fewer)
    assert "manifest.csv" in str(exc.value) and "S2_u2" in str(exc.value)


def test_unprepared_task_tells_the_command(tasks_dir: Path, home: Path):
    (tasks_dir / "tiny").mkdir()
    (tasks_dir / "tiny" / "task.yaml").write_text(yaml.safe_dump(TASK))
    with pytest.raises(NotPrepared, match="serbench prepare tiny --source"):
        load_task("tiny")


def test_released_reader_errors(tmp_path: Path, tiny: Path):
    bad = tmp_path / "bad"
    write_release(bad)
    text = (bad / "D_1.csv").read_text().splitlines()
    text[3] = text[3].replace("0.", "x.", 1)
    (bad / "D_1.csv").write_text("\n".join(text) + "\n")
    with pytest.raises(InputError) as exc:
        prepare("tiny", bad)
    assert "D_1.csv, row 4" in str(exc.value)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"colour": 1}, "unknown key"),
        ({"label_map": {"a": "zzz"}}, "not classes"),
        ({"metrics": ["accuracy_of_vibes"]}, "unknown metrics"),
        ({"rules": ["MR", "XR"]}, "rules must be"),
        ({"folds": {"splits": [{"test": ["1"], "dev": ["1"]}]}}, "disjoint"),
        ({"classes": ["a"]}, "classes must be"),
        # a misspelt key of a nested mapping used to be ignored (its setting silently lost)
        ({"rules": ["MR", "DS"], "aggregation": {"wrokers": "pooled"}},
         r"unknown key\(s\) under aggregation: 'wrokers' \(did you mean 'workers'\?\)"),
        ({"other": {"lables": ["x"]}}, "unknown key\\(s\\) under other: 'lables'"),
        ({"folds": {**TASK["folds"], "grop_by": "session"}}, "under folds: 'grop_by'"),
        ({"corpus": {**TASK["corpus"], "optons": {}}}, "under corpus: 'optons'"),
        ({"mr_exclusions": ["S1_u1"]}, "mr_exclusions must be a mapping"),
        ({"metrics": []}, "metrics is empty"),  # was an IndexError
        ({"name": ""}, "name is empty"),
    ],
)
def test_bad_task_files(change, message, tmp_path: Path):
    with pytest.raises(InputError, match=message) as exc:
        parse_task({**TASK, **change}, tmp_path / "task.yaml")
    assert "task.yaml" in str(exc.value)


def test_an_empty_task_file_says_it_is_empty(tmp_path: Path):
    with pytest.raises(InputError, match="the task file is empty"):
        parse_task(None, tmp_path / "task.yaml")
    with pytest.raises(InputError, match="must be a mapping of keys, not a list"):
        parse_task(["a"], tmp_path / "task.yaml")


def test_unknown_aggregation_key_is_one_message_through_the_cli(tasks_dir: Path, home: Path):
    """The file, the unknown key and the allowed keys (from AGGREGATION_KEYS), exit 2."""
    import os

    from serbench.tasks.spec import AGGREGATION_KEYS, DS_WORKERS

    (tasks_dir / "agg").mkdir()
    spec = {**TASK, "name": "agg", "rules": ["MR", "PR", "AR", "DS"],
            "aggregation": {"workers": "pooled", "wrokers": "raters"}}
    (tasks_dir / "agg" / "task.yaml").write_text(yaml.safe_dump(spec))
    res = subprocess.run([sys.executable, "-m", "serbench.cli", "tasks", "show", "agg"],
                         capture_output=True, text=True, timeout=120, env=dict(os.environ))
    assert res.returncode == 2, res.stderr
    assert res.stderr.startswith("error:") and "Traceback" not in res.stderr
    msg = " ".join(res.stderr.split())
    assert str(tasks_dir / "agg" / "task.yaml") in msg
    assert "unknown key(s) under aggregation: 'wrokers' (did you mean 'workers'?)" in msg
    assert list(AGGREGATION_KEYS) == ["workers"]
    assert f"allowed keys under aggregation: workers (one of {', '.join(DS_WORKERS)})" in msg


def test_unknown_fold_group_is_named(tasks_dir: Path, home: Path, tmp_path: Path):
    (tasks_dir / "tiny").mkdir()
    bad = {**TASK, "folds": {"group_by": "session", "splits": [{"test": ["9"], "dev": ["2"]}]}}
    (tasks_dir / "tiny" / "task.yaml").write_text(yaml.safe_dump(bad))
    with pytest.raises(InputError, match=r"fold 1 names session value\(s\) \['9'\]"):
        freeze("tiny", write_release(tmp_path / "r"))


def test_shipped_task_files_parse():
    for name in ("demo", "iemocap-9class", "msp-improv-4class"):
        spec = get_spec(name)
        assert spec.name == name and spec.rules == ("MR", "PR", "AR")
    crema = get_spec("crema-d")  # version 2 adds pooled Dawid-Skene
    assert crema.rules == ("MR", "PR", "AR", "DS") and crema.ds_workers == "pooled"
    assert len(get_spec("msp-improv-4class").mr_exclusions) == 5


def test_cooccurrence_uses_training_ratings_only(tiny: Path):
    task, _ = prepare("tiny", tiny)
    # Fold 1 trains on sessions 3 and 4. The released format keeps distributions only, so
    # the reader recovers the smallest proportional counts: (0,0,2) comes back as (0,0,1).
    # Votes are anonymous, so across-rater C = sum_i n_i n_i^T - diag(n_i).
    train = np.array([(0, 2, 1), (0, 0, 1), (2, 2, 1), (2, 3, 1)])
    expected = sum(np.outer(n, n) - np.diag(n) for n in train)
    np.testing.assert_array_equal(fold_cooccurrence(task, 1), expected)
    p = fold_penalty_matrix(task, 1)
    off = expected[~np.eye(3, dtype=bool)].max()
    np.testing.assert_allclose(p[0, 1], 1 - expected[0, 1] / off)


def _freeze_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "serbench.cli", "tasks", "freeze", *args],
                          capture_output=True, text=True, timeout=120)


def test_refreeze_refuses_a_different_build_without_a_version_bump(
        tiny: Path, tasks_dir: Path, tmp_path: Path):
    tdir = tasks_dir / "tiny"
    files = {f: (tdir / f).read_bytes() for f in ("manifest.csv", "fingerprint.json")}
    frozen = json.loads(files["fingerprint.json"])
    assert frozen["version"] == 1  # the freeze records the task version it froze
    # The same source again: a no-op that says so, every byte kept.
    res = _freeze_cli("tiny", "--source", str(tiny))
    assert res.returncode == 0, res.stderr
    assert "nothing written" in res.stdout
    assert {f: (tdir / f).read_bytes() for f in files} == files
    # A source with one clip missing: refused, nothing written.
    short = write_release(tmp_path / "short", {k: v for k, v in VOTES.items() if k != "S4_u2"})
    res = _freeze_cli("tiny", "--source", str(short))
    assert res.returncode == 2
    msg = res.stdout + res.stderr
    assert "Traceback" not in msg
    assert "task tiny is already frozen (version 1)" in msg
    assert f"fingerprint {frozen['fingerprint'][:12]} frozen" in msg
    assert "raise `version:`" in msg and "(now 1)" in msg
    assert {f: (tdir / f).read_bytes() for f in files} == files
    # Raising the version freezes the new build.
    spec = yaml.safe_load((tdir / "task.yaml").read_text())
    (tdir / "task.yaml").write_text(yaml.safe_dump({**spec, "version": 2}))
    res = _freeze_cli("tiny", "--source", str(short))
    assert res.returncode == 0, res.stderr
    new = json.loads((tdir / "fingerprint.json").read_text())
    assert new["version"] == 2 and new["fingerprint"] != frozen["fingerprint"]
    assert f"{new['fingerprint'][:12]} built" in msg  # the refusal named the new build
    assert "S4_u2" not in (tdir / "manifest.csv").read_text()


def test_refreeze_of_an_unversioned_fingerprint_needs_force(
        tiny: Path, tasks_dir: Path, tmp_path: Path):
    tdir = tasks_dir / "tiny"
    legacy = json.loads((tdir / "fingerprint.json").read_text())
    del legacy["version"]  # written before freeze recorded versions
    (tdir / "fingerprint.json").write_text(json.dumps(legacy))
    short = write_release(tmp_path / "short", {k: v for k, v in VOTES.items() if k != "S4_u2"})
    res = _freeze_cli("tiny", "--source", str(short))
    assert res.returncode == 2
    assert "a version not recorded" in res.stderr and "--force" in res.stderr
    assert json.loads((tdir / "fingerprint.json").read_text()) == legacy
    res = _freeze_cli("tiny", "--source", str(short), "--force")
    assert res.returncode == 0, res.stderr
    assert json.loads((tdir / "fingerprint.json").read_text())["fingerprint"] != \
        legacy["fingerprint"]
