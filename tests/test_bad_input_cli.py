"""Bad-input campaign through the real CLI: every damaged source is exit 2, one message, no
traceback, and the table prepared before is left exactly as it was.

Each reader that has real data in ``../shared/data`` is run as a user runs it
(``serbench prepare TASK --source DIR`` in a subprocess) on a copy of its source
with one file damaged the way files get damaged: cut at a random byte (an
interrupted copy), re-encoded (UTF-16, Latin-1), bytes overwritten, or the
source made read-only (which must not matter).  hypothesis picks the damage;
``SERBENCH_CLI_EXAMPLES`` (default 3 per reader) sets how many.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import shared

EXAMPLES = int(os.environ.get("SERBENCH_CLI_EXAMPLES", "3"))
CAMPAIGN = settings(max_examples=EXAMPLES, deadline=None, derandomize=False,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])

#: task -> (source folder under ../shared/data, the file damaged, relative to the source)
READERS = {
    "crema-d": ("crema-d", "tabulatedVotes.csv"),
    "emodb": ("emodb", "erkennung.txt"),
    "iemocap-9class": ("chou-labels/iemocap-9class", "D_2.csv"),
}
DAMAGE = st.one_of(
    st.tuples(st.just("cut"), st.floats(0.0, 1.0)),
    st.tuples(st.just("utf16"), st.just(0.0)),
    st.tuples(st.just("latin1-bytes"), st.floats(0.0, 1.0)),
    st.tuples(st.just("overwrite"), st.floats(0.0, 1.0)),
    st.tuples(st.just("read-only"), st.just(0.0)),
)


def serbench(*args: str, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "SERBENCH_HOME": str(home), "COLUMNS": "100"}
    return subprocess.run([sys.executable, "-m", "serbench.cli", *args], capture_output=True,
                          text=True, env=env, timeout=300)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def mirror(src: Path, dst: Path, damaged: str) -> Path:
    """``dst`` with links to every file of ``src`` except ``damaged``, which is copied."""
    for path in src.rglob("*"):
        rel = path.relative_to(src)
        if path.is_dir():
            (dst / rel).mkdir(parents=True, exist_ok=True)
        elif str(rel) == damaged:
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, dst / rel)
        else:
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            (dst / rel).symlink_to(path)
    return dst


def damage(path: Path, kind: str, where: float) -> None:
    data = path.read_bytes()
    at = int(where * (len(data) - 1))
    if kind == "cut":
        path.write_bytes(data[:at])
    elif kind == "utf16":
        path.write_bytes(data.decode("utf-8", errors="replace").encode("utf-16"))
    elif kind == "latin1-bytes":
        path.write_bytes(data[:at] + "ÄÖÜß".encode("latin-1") + data[at:])
    elif kind == "overwrite":
        path.write_bytes(data[:at] + b'\x00",;\xff' + data[at + 5:])
    elif kind == "read-only":
        os.chmod(path, stat.S_IRUSR)
        os.chmod(path.parent, stat.S_IRUSR | stat.S_IXUSR)


@pytest.fixture(scope="module", params=sorted(READERS))
def prepared(request, tmp_path_factory):
    task = request.param
    folder, damaged = READERS[task]
    source = shared(*folder.split("/"))
    home = tmp_path_factory.mktemp(f"home-{task}")
    res = serbench("prepare", task, "--source", str(source), home=home)
    assert res.returncode == 0, res.stderr
    table = home / "tasks" / task / "ratings.parquet"
    return task, source, damaged, home, table


@CAMPAIGN
@given(hurt=DAMAGE)
def test_a_damaged_source_is_exit_2_and_one_message(prepared, tmp_path_factory, hurt):
    task, source, damaged, home, table = prepared
    kind, where = hurt
    before = digest(table)  # an accepted example before this one may have rewritten it
    copy = mirror(source, tmp_path_factory.mktemp("src"), damaged)
    damage(copy / damaged, kind, where)
    try:
        res = serbench("prepare", task, "--source", str(copy), home=home)
    finally:
        os.chmod(copy, stat.S_IRWXU)
        os.chmod(copy / damaged, stat.S_IRUSR | stat.S_IWUSR)
    assert res.returncode in (0, 2), (kind, where, res.returncode, res.stderr[-2000:])
    assert "Traceback" not in res.stderr, (kind, where, res.stderr[-2000:])
    if kind == "read-only":
        assert res.returncode == 0, res.stderr  # reading needs no write permission
    if res.returncode == 2:
        assert res.stderr.count("error:") == 1, res.stderr
        assert digest(table) == before, "the table prepared before was changed"
