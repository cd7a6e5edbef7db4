"""Property-based bad-input campaign: whatever the corruption, a clear InputError or a clean pass.

Each property generates corrupted inputs (hypothesis) for one entry point and
asserts that it either accepts the input or raises :class:`InputError` naming
the file, never another exception (which the CLI would show as a traceback);
what it accepts must really be valid.  Found by this campaign and fixed: a
WAV header claiming a 26 MHz sample rate decoded to an empty waveform without
an error (now refused: implausible rate, or nothing left after resampling).
"""

import io
import os
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from serbench import audio, ratings
from serbench.errors import InputError
from serbench.readers.table import read_table
from serbench.records import read_predictions
from serbench.tasks import manifest as mf

# 60 cases per property in CI; SERBENCH_HYPOTHESIS_EXAMPLES=2000 for a longer campaign
SETTINGS = settings(max_examples=int(os.environ.get("SERBENCH_HYPOTHESIS_EXAMPLES", "60")),
                    deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])
CLASSES = ("a", "b", "c")
IDS = np.array(["u1", "u2", "u3", "u4"])
CELLS = st.one_of(st.none(), st.just(""), st.just("  "), st.text(max_size=6),
                  st.sampled_from(["u1", "u2", "r1", "primary", "secondary", "a", "b"]),
                  st.floats(allow_nan=True), st.integers(-3, 3))


def _good_ratings() -> pd.DataFrame:
    rows = [(u, f"r{j}", "abc"[(i + j) % 3], "primary", f"s{i % 2}") for i, u in enumerate(IDS)
            for j in range(3)]
    df = pd.DataFrame(rows, columns=["utterance_id", "rater_id", "label", "question",
                                     "speaker_id"])
    df["session"], df["audio_path"], df["duration"] = None, None, None
    df["source"], df["source_row"] = "votes.csv", range(2, len(df) + 2)
    return df


@SETTINGS
@given(edits=st.lists(st.tuples(st.integers(0, 11), st.sampled_from(
    ["utterance_id", "rater_id", "label", "question", "speaker_id", "duration"]), CELLS),
    min_size=1, max_size=4), drop=st.sampled_from([None, "label", "speaker_id", "question"]),
    dup=st.booleans())
def test_ratings_tables(edits, drop, dup):
    df = _good_ratings().astype(object)
    for row, col, value in edits:
        df.at[row, col] = value
    if dup:
        df = pd.concat([df, df.iloc[[0]]], ignore_index=True)
    if drop:
        df = df.drop(columns=[drop])
    try:
        ratings.validate(df, name="votes.csv")
    except InputError as exc:
        assert "votes.csv" in str(exc)


@pytest.fixture(scope="module")
def pred_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("preds")


@SETTINGS
@given(probs=st.lists(st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32),
                               min_size=3, max_size=3), min_size=4, max_size=4),
       ids=st.lists(st.sampled_from([*list(IDS), "u9", ""]), min_size=4, max_size=4),
       columns=st.sampled_from([["p_a", "p_b", "p_c"], ["p_a", "p_c", "p_b"], ["p_a", "p_b"],
                                ["p_a", "p_b", "p_c", "p_d"]]),
       fmt=st.sampled_from(["parquet", "csv", "garbage"]))
def test_prediction_files(pred_dir, probs, ids, columns, fmt):
    p = np.array(probs, dtype=np.float64)[:, : len(columns)]
    if len(columns) > 3:
        p = np.hstack([np.array(probs, dtype=np.float64), np.zeros((4, 1))])
    df = pd.DataFrame(p, columns=columns)
    df.insert(0, "utterance_id", ids)
    path = pred_dir / f"predictions.{fmt if fmt != 'garbage' else 'parquet'}"
    if fmt == "parquet":
        df.to_parquet(path)
    elif fmt == "csv":
        df.to_csv(path, index=False)
    else:
        path.write_bytes(b"PAR1" + bytes(probs[0][0] == probs[0][0]) * 7)
    try:
        got = read_predictions(path, CLASSES, IDS)
    except InputError as exc:
        assert path.name in str(exc)
        return
    # accepted: it must really be a valid, aligned probability matrix
    assert got.shape == (4, 3) and np.isfinite(got).all() and (got >= 0).all()
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-5)


@SETTINGS
@given(cells=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3), CELLS), max_size=4),
       header=st.sampled_from(["utterance_id,group,fold_1,fold_2",
                               "utterance_id,group,fold_1", "id,group,fold_1,fold_2", ""]))
def test_manifests(tmp_path_factory, cells, header):
    table = [["u1", "s1", "test", "train"], ["u2", "s2", "train", "test"],
             ["u3", "s3", "dev", "dev"], ["u4", "s4", "train", "train"]]
    for r, c, v in cells:
        table[r][c] = "" if v is None else str(v).replace(",", ";").replace("\n", " ")
    path = tmp_path_factory.mktemp("mf") / "manifest.csv"
    path.write_text(header + "\n" + "\n".join(",".join(r) for r in table) + "\n")
    try:
        m = mf.read_manifest(path, 2)
    except InputError as exc:
        assert "manifest.csv" in str(exc)
        return
    assert set(m.columns) >= {"utterance_id", "group", "fold_1", "fold_2"}
    assert m[["fold_1", "fold_2"]].isin(["train", "dev", "test"]).all().all()


def _wav_bytes(samples: np.ndarray, sr: int) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, samples, sr, format="WAV", subtype="FLOAT")
    return buf.getvalue()


@SETTINGS
@given(kind=st.sampled_from(["truncate", "flip", "zero", "nan", "random", "header_sr"]),
       cut=st.integers(0, 200), value=st.integers(0, 255),
       sr=st.sampled_from([8000, 22050, 44100]))
def test_audio_files(tmp_path_factory, kind, cut, value, sr):
    wav = (np.sin(np.arange(sr // 10) / 5.0) * 0.1).astype(np.float32)
    data = bytearray(_wav_bytes(wav, sr))
    if kind == "truncate":
        data = data[:cut]
    elif kind == "flip":
        data[min(cut, len(data) - 1)] = value
    elif kind == "zero":
        data = bytearray(_wav_bytes(np.zeros(0, dtype=np.float32), sr))
    elif kind == "nan":
        bad = wav.copy()
        bad[cut % len(bad)] = np.nan
        data = bytearray(_wav_bytes(bad, sr))
    elif kind == "random":
        data = bytearray(np.random.default_rng(cut).integers(0, 256, cut + 1, dtype=np.uint8))
    else:  # a header that claims an absurd sample rate
        data[24:28] = struct.pack("<I", value * 1_000_003)
    path = tmp_path_factory.mktemp("wav") / "clip.wav"
    path.write_bytes(bytes(data))
    try:
        out = audio.load(path)
    except InputError as exc:
        assert "clip.wav" in str(exc)
        return
    assert out.dtype == np.float32 and np.isfinite(out).all() and len(out) > 0


@SETTINGS
@given(text=st.text(alphabet=st.sampled_from(list("ab,\"\n u1r2s;?é\x00")), max_size=80),
       header=st.booleans())
def test_generic_ratings_files(tmp_path_factory, text, header):
    path = tmp_path_factory.mktemp("csv") / "ratings.csv"
    head = "utterance_id,rater_id,label,speaker_id\n" if header else ""
    path.write_bytes((head + text).encode("utf-8", errors="surrogatepass"))
    try:
        res = read_table(path)
    except InputError as exc:
        assert "ratings.csv" in str(exc)
        return
    assert res.table["utterance_id"].str.strip().ne("").all()


@pytest.fixture(scope="module")
def saved_checkpoint() -> bytes:
    from serbench import checkpoints

    return checkpoints.to_bytes({"w": torch.arange(12.0).reshape(3, 4), "b": torch.ones(2)},
                                {"fold": 1})


@SETTINGS
@given(kind=st.sampled_from(["truncate", "flip", "random", "header_len"]),
       cut=st.integers(0, 200), value=st.integers(0, 255))
def test_checkpoint_files(tmp_path_factory, saved_checkpoint, kind, cut, value):
    """A damaged model.safetensors: refused with the file named, or parsed into tensors.

    Found by this property: a bit flip inside the JSON header can leave a valid file
    whose tensor is renamed ("w" -> "v"); only the sha256 kept in the run record
    catches that, so ``--load-models`` always checks it, and with it nothing but the
    original bytes passes.
    """
    import hashlib

    from serbench import checkpoints

    data = bytearray(saved_checkpoint)
    if kind == "truncate":
        data = data[:cut % len(data)]
    elif kind == "flip":
        data[cut % len(data)] ^= value or 1
    elif kind == "random":
        data = bytearray(np.random.default_rng(cut).integers(0, 256, cut, dtype=np.uint8))
    else:
        data[:8] = struct.pack("<Q", cut * 1_000_003)
    path = tmp_path_factory.mktemp("ckpt") / "model.safetensors"
    path.write_bytes(bytes(data))
    original = hashlib.sha256(saved_checkpoint).hexdigest()
    if bytes(data) != saved_checkpoint:
        with pytest.raises(InputError, match="sha256"):
            checkpoints.read(path, sha256=original)
    try:
        tensors, meta = checkpoints.read(path)
    except InputError as exc:
        assert str(path) in str(exc)
        return
    assert all(isinstance(v, torch.Tensor) for v in tensors.values()) and isinstance(meta, dict)


def _accepted(read, source: Path, name: str) -> pd.DataFrame | None:
    """The reader's table, or None once its InputError is checked to name ``name``."""
    try:
        return read(source).table
    except InputError as exc:
        assert name in str(exc)
        return None


RATER_LINE = st.text(alphabet=st.sampled_from(list("e1;: AngrySad,.NX\tUTD-IMPROV-S01AF01P")),
                     max_size=60)


@SETTINGS
@given(lines=st.lists(RATER_LINE, max_size=6), header=st.booleans())
def test_msp_improv_evaluation_files(tmp_path_factory, lines, header):
    """Random lines in Evaluation.txt: parsed into valid rows, or an error naming the line."""
    from serbench.readers.msp_improv import read_msp_improv

    root = tmp_path_factory.mktemp("improv")
    head = ["UTD-IMPROV-S01A-F01-P-FM01.avi; A; A:3.0; V:2.5; D:3.0 ; N:3.0;"] if header else []
    (root / "Evaluation.txt").write_text("\n".join([*head, *lines]) + "\n")
    t = _accepted(read_msp_improv, root, "Evaluation.txt")
    if t is not None:
        assert len(t) and t["rater_id"].str.strip().ne("").all() and t["label"].ne("").all()


@SETTINGS
@given(fields=st.lists(st.text(alphabet=st.sampled_from(list("W1; Angry,Sad:A4.0 \"")),
                               max_size=40), max_size=5))
def test_msp_podcast_detailed_files(tmp_path_factory, fields):
    """Random annotation fields in labels_detailed.csv: valid votes or an error naming the row."""
    import csv

    from serbench.readers.msp_podcast import read_msp_podcast

    root = tmp_path_factory.mktemp("podcast")
    (root / "Labels").mkdir()
    (root / "Labels" / "labels_consensus.csv").write_text(
        "FileName,EmoClass,SpkrID,Split_Set\nf1.wav,A,1,Train\n")
    with open(root / "Labels" / "labels_detailed.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["FileName", "Labels"])
        w.writerows(["f1.wav", f] for f in fields)
    t = _accepted(read_msp_podcast, root, "labels_detailed.csv")
    if t is not None:
        assert t["label"].str.strip().ne("").all() and t["rater_id"].str.strip().ne("").all()
