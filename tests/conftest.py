"""Shared fixtures: an isolated SERBENCH_HOME, the demo corpus, ../shared/data."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SERBENCH_SHARED_DATA", REPO.parent / "shared" / "data"))


def shared(*parts: str) -> Path:
    """A path under ../shared/data, skipping the test (with the reason) when absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"reference data not found at {path} (CI has ../shared/data beside the "
                    "checkout; set SERBENCH_SHARED_DATA to point elsewhere)")
    return path


@pytest.fixture(scope="session")
def demo_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SERBENCH_HOME with the demo corpus generated once per test session."""
    from serbench.demo import corpus

    home = tmp_path_factory.mktemp("serbench_home_demo")
    old = os.environ.get("SERBENCH_HOME")
    os.environ["SERBENCH_HOME"] = str(home)
    try:
        corpus.ensure_demo_corpus()
    finally:
        if old is None:
            os.environ.pop("SERBENCH_HOME")
        else:
            os.environ["SERBENCH_HOME"] = old
    return home


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, demo_home: Path) -> Path:
    """A fresh SERBENCH_HOME per test, with the session's demo corpus copied in (fast)."""
    h = tmp_path / "home"
    (h / "corpora").mkdir(parents=True)
    for d in (demo_home / "corpora").iterdir():
        os.symlink(d, h / "corpora" / d.name)
    monkeypatch.setenv("SERBENCH_HOME", str(h))
    return h


@pytest.fixture
def tasks_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An extra task folder searched before the repository's (for test-only tasks)."""
    d = tmp_path / "tasks"
    d.mkdir()
    monkeypatch.setenv("SERBENCH_TASKS_DIR", str(d))
    return d


def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


@pytest.fixture
def tiny(tasks_dir, home, tmp_path):
    """A 4-clip task (test_table_reader's corpus): fold 1 tests c1, fold 2 tests c3."""
    import yaml
    from test_table_reader import write_corpus

    from serbench.tasks import prepare

    spec = {"name": "tiny", "corpus": {"reader": "csv"}, "classes": ["angry", "happy", "neutral"],
            "label_map": {"ang": "angry", "hap": "happy", "neu": "neutral"},
            "folds": {"group_by": "speaker_id", "splits": [{"test": ["s1"], "dev": ["s2"]},
                                                             {"test": ["s3"], "dev": ["s4"]}]},
            "frozen": False}
    (tasks_dir / "tiny").mkdir()
    (tasks_dir / "tiny" / "task.yaml").write_text(yaml.safe_dump(spec))
    return prepare("tiny", write_corpus(tmp_path / "corpus"))[0]
