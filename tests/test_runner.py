"""The runner and the plugin API: discovery, the README example, failures, resume, determinism."""

import json
import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from serbench import audio, plugins
from serbench.errors import InputError
from serbench.records import find_records
from serbench.runner import Runner
from serbench.scoring import score_record
from serbench.tasks import load_task

REPO = Path(__file__).resolve().parents[1]


def readme_example() -> str:
    text = (REPO / "README.md").read_text()
    m = re.search(r"<!-- example-submission -->\s*```python\n(.*?)```", text, re.S)
    assert m, "README lost its example submission"
    return m.group(1)


@pytest.fixture
def demo(home):
    return load_task("demo")


def test_readme_example_is_complete_and_runs(demo, tmp_path: Path):
    code = readme_example()
    assert len([line for line in code.splitlines() if line.strip()]) <= 30
    path = tmp_path / "my_submission.py"
    path.write_text(code)
    cls = plugins.resolve(f"{path}:ProsodyLogReg")
    runner = Runner(demo, cls, runs=tmp_path / "runs", device="cpu")
    results = [runner.run_cell(k) for k in runner.cells([1], None, [0])]
    assert [r.status for r in results] == ["done"] * 3, [r.message for r in results]
    records, bad = find_records(tmp_path / "runs")
    assert len(records) == 3 and not bad
    scores = score_record(demo, records[0], n_resamples=0)
    assert scores.n["AR"] == 72


def test_discovery_from_folder_path_and_entry_point(tmp_path: Path, monkeypatch):
    assert "blstm-fc" in plugins.available()
    src = textwrap.dedent('''
        import numpy as np
        from serbench.submission import Submission

        class Uniform(Submission):
            name = "uniform"
            def predict_proba(self, batch):
                return np.full((len(batch), 6), 1 / 6)
    ''')
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "uniform_sub.py").write_text(src)
    monkeypatch.setenv("SERBENCH_SUBMISSIONS_DIR", str(tmp_path / "folder"))
    assert plugins.available()["uniform"][1] == "submissions/"
    monkeypatch.delenv("SERBENCH_SUBMISSIONS_DIR")
    assert plugins.resolve(str(tmp_path / "folder" / "uniform_sub.py")).name == "uniform"
    # A package that ships a submission through the entry-point group.
    site = tmp_path / "site"
    (site / "ep_pkg-0.1.dist-info").mkdir(parents=True)
    (site / "ep_pkg.py").write_text(src.replace('"uniform"', '"from-entry-point"'))
    (site / "ep_pkg-0.1.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: ep-pkg\nVersion: 0.1\n")
    (site / "ep_pkg-0.1.dist-info" / "entry_points.txt").write_text(
        "[serbench.submissions]\nfrom-entry-point = ep_pkg:Uniform\n")
    monkeypatch.syspath_prepend(str(site))
    found = plugins.available()
    assert found["from-entry-point"][1] == "entry point serbench.submissions"
    assert plugins.resolve("from-entry-point")().predict_proba(np.zeros(2)).shape == (2, 6)
    with pytest.raises(InputError, match="unknown submission 'nope'"):
        plugins.resolve("nope")


BAD = textwrap.dedent('''
    import numpy as np
    from serbench.submission import Submission

    class Bad(Submission):
        name = "bad"
        def __init__(self, mode="raise"):
            super().__init__(mode=mode)
            self.mode = mode
        def fit(self, train, dev, spec):
            self.rule = spec.train_rule
            if self.mode == "raise" and self.rule == "MR":
                raise RuntimeError("boom in fit")
        def predict_proba(self, batch):
            p = np.full((len(batch), 6), 1 / 6)
            if self.rule != "MR":
                return p
            if self.mode == "shape":
                return p[:, :5]
            if self.mode == "nan":
                p[0, 0] = np.nan
            if self.mode == "sum":
                p = p * 1.1
            return p
''')


@pytest.mark.parametrize(("mode", "message"), [
    ("raise", "RuntimeError: boom in fit"),
    ("shape", r"returned shape \(\d+, 5\), expected \(\d+, 6\)"),
    ("nan", "NaN or inf"),
    ("sum", "do not sum to 1"),
])
def test_a_bad_submission_fails_only_its_cells(demo, tmp_path: Path, mode, message):
    path = tmp_path / "bad.py"
    path.write_text(BAD)
    runner = Runner(demo, plugins.resolve(str(path)), {"mode": mode}, runs=tmp_path / "runs",
                    device="cpu")
    results = [runner.run_cell(k) for k in runner.cells([1, 2], None, [0])]
    failed = [r for r in results if r.status == "failed"]
    assert {r.key.train_rule for r in failed} == {"MR"} and len(failed) == 2
    assert all(re.search(message, r.message) for r in failed)
    assert (failed[0].key.folder(tmp_path / "runs") / "error.txt").exists()
    assert len(find_records(tmp_path / "runs")[0]) == 4  # PR and AR cells of both folds


SLOW = textwrap.dedent('''
    import time
    import numpy as np
    from serbench.submission import Submission

    class Slow(Submission):
        name = "slow"
        def fit(self, train, dev, spec):
            if spec.fold > 1:
                time.sleep(30)
        def predict_proba(self, batch):
            return np.full((len(batch), 6), 1 / 6)
''')


def test_killed_run_resumes_losing_only_the_cell_in_flight(home, tmp_path: Path):
    path = tmp_path / "slow.py"
    path.write_text(SLOW)
    runs = tmp_path / "runs"
    cmd = [sys.executable, "-m", "serbench.cli", "run",
           "--seeds", "0", "--submission", f"{path}:Slow",
           "--rules", "AR", "--folds", "1,2,3", "--runs", str(runs), "--no-leaderboard",
           "--device", "cpu"]
    env = {**os.environ, "SERBENCH_HOME": str(home)}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = runs / "demo" / "slow" / "fold1-AR-seed0" / "record.json"
    deadline = time.time() + 120
    while not first.exists() and time.time() < deadline:
        time.sleep(0.2)
    assert first.exists()
    time.sleep(1.0)  # now inside fold 2's fit
    proc.kill()
    proc.wait()
    assert [r.key.fold for r in find_records(runs)[0]] == [1]
    assert not list(runs.rglob("*.tmp"))  # nothing half-written
    before = first.read_bytes()
    path.write_text(SLOW.replace("time.sleep(30)", "pass"))
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "2 run, 1 already done, 0 failed" in res.stdout
    assert first.read_bytes() == before  # the finished cell was not redone
    assert sorted(r.key.fold for r in find_records(runs)[0]) == [1, 2, 3]


def test_identical_cpu_runs_give_identical_predictions(demo, tmp_path: Path):
    cls = plugins.resolve("blstm-fc")
    config = {"hidden": 8, "fc": 8, "max_epochs": 2, "frame_step": 8}
    preds = []
    for name in ("a", "b"):
        runner = Runner(demo, cls, config, runs=tmp_path / name, device="cpu")
        runner.prepare_features()
        (key,) = runner.cells([1], ["AR"], [0])
        assert runner.run_cell(key).status == "done"
        preds.append(pd.read_parquet(key.folder(tmp_path / name) / "predictions.parquet"))
    pd.testing.assert_frame_equal(preds[0], preds[1], check_exact=True)
    p = preds[0].filter(like="p_").to_numpy()
    assert np.allclose(p.sum(axis=1), 1.0)


def test_test_clips_without_audio(tasks_dir: Path, home: Path, tmp_path: Path):
    """A task without audio: an error by default; uniform and recorded with the flag."""
    import yaml
    from test_tasks import TASK, write_release

    from serbench.tasks import freeze, prepare

    (tasks_dir / "tiny").mkdir()
    (tasks_dir / "tiny" / "task.yaml").write_text(yaml.safe_dump(TASK))
    src = write_release(tmp_path / "release")
    freeze("tiny", src)
    task, _ = prepare("tiny", src)
    path = tmp_path / "u.py"
    path.write_text(BAD)
    cls = plugins.resolve(str(path))
    runner = Runner(task, cls, {"mode": "none"}, runs=tmp_path / "runs", device="cpu")
    (key,) = runner.cells([1], ["AR"], [0])
    with pytest.raises(InputError, match="have no audio"):
        runner.run_cell(key)
    runner = Runner(task, cls, {"mode": "none"}, runs=tmp_path / "runs", device="cpu",
                    allow_missing_audio=True)
    assert runner.run_cell(key).status == "done"
    rec = json.loads((key.folder(tmp_path / "runs") / "record.json").read_text())
    assert rec["missing_audio_test"] == ["S1_u1", "S1_u2"]


def test_bad_audio_is_reported_by_path(tmp_path: Path):
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, dtype=np.float32), 16000)
    with pytest.raises(InputError, match="no samples") as exc:
        audio.load(empty)
    assert "empty.wav" in str(exc.value)
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"RIFF....WAVEfmt garbage")
    with pytest.raises(InputError, match="unreadable audio"):
        audio.load(junk)
    with pytest.raises(InputError, match="not found"):
        audio.load(tmp_path / "missing.wav")
    ok = tmp_path / "ok.wav"
    sf.write(ok, np.sin(np.arange(44100) / 10).astype(np.float32), 44100)
    wav = audio.load(ok, 16000, max_seconds=0.5)
    assert wav.dtype == np.float32 and len(wav) == 8000


def test_a_broken_private_submission_hides_nothing_else(tmp_path, monkeypatch):
    """A file of SERBENCH_SUBMISSIONS_DIR with a syntax error used to make every command exit 2,
    the baselines included; it is now listed with its error, as `tasks list` lists a broken
    task file, and named when the submission asked for is not found."""
    folder = tmp_path / "private"
    folder.mkdir()
    (folder / "broken.py").write_text("def (:\n")
    (folder / "good.py").write_text(textwrap.dedent('''
        import numpy as np
        from serbench.submission import Submission

        class Good(Submission):
            name = "good-one"
            def predict_proba(self, batch):
                return np.full((len(batch), 6), 1 / 6)
    '''))
    monkeypatch.setenv("SERBENCH_SUBMISSIONS_DIR", str(folder))
    assert {"good-one", "blstm-fc"} <= set(plugins.available())
    assert list(plugins.broken()) == [str(folder / "broken.py")]
    assert "SyntaxError" in plugins.broken()[str(folder / "broken.py")]
    with pytest.raises(InputError, match=r"broken\.py could not be imported"):
        plugins.resolve("no-such-one")
    env = {**os.environ, "SERBENCH_HOME": str(tmp_path / "home")}
    res = subprocess.run([sys.executable, "-m", "serbench.cli", "submissions", "list", "--json"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr
    rows = json.loads(res.stdout)
    assert rows[-1]["file"] == str(folder / "broken.py") and "SyntaxError" in rows[-1]["error"]
    assert "good-one" in {r.get("name") for r in rows}
    env["SERBENCH_SUBMISSIONS_DIR"] = str(tmp_path / "nope")
    res = subprocess.run([sys.executable, "-m", "serbench.cli", "submissions", "list"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 2 and "is not a folder" in res.stderr
