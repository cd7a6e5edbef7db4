"""The built-in demo corpus: deterministic, synthetic prosody as profiled, human-like votes."""

import filecmp
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from serbench.demo import generate
from serbench.demo.profiles import CREMA_D_VOICE_CONFUSION, EMOTIONS, LETTERS
from serbench.tasks import load_task


@pytest.fixture(scope="module")
def corpus(demo_home: Path) -> Path:
    return next((demo_home / "corpora").iterdir())


def test_regenerated_demo_matches_the_frozen_task(home):
    task = load_task("demo")  # prepares from the generated corpus and checks the fingerprint
    s = task.summary()
    assert s["n_utterances"] == 360 and s["n_raters"] == 40
    assert s["rules"]["AR"] == 360 and s["rules"]["MR"] < s["rules"]["PR"] < 360


def test_generation_is_byte_identical(corpus: Path, tmp_path: Path):
    again = generate(tmp_path / "again")
    for name in ("votes.csv", "clips.csv", "audio/spk03_t02_FEA_MD.wav"):
        assert filecmp.cmp(corpus / name, again / name, shallow=False), name


def test_corpus_shape(corpus: Path):
    clips = pd.read_csv(corpus / "clips.csv")
    votes = pd.read_csv(corpus / "votes.csv")
    assert len(clips) == 360 and clips["speaker_id"].nunique() == 10
    per_clip = votes[votes["question"] == "primary"].groupby("utterance_id").size()
    assert per_clip.min() >= 4 and per_clip.max() <= 12
    assert set(votes.loc[votes["question"] == "secondary", "label"]) <= set(LETTERS)
    assert clips["duration"].min() > 1.0 and clips["duration"].max() < 4.0
    assert clips["duration"].std() > 0.3  # a realistic spread of lengths


def _pitch(x: np.ndarray, sr: int) -> float:
    """Median autocorrelation F0 of the 8 loudest 50 ms frames."""
    frames = [x[i:i + 800] for i in range(0, len(x) - 800, 400)]
    loud = sorted(frames, key=lambda f: float(np.sum(f**2)))[-8:]
    f0 = []
    for f in loud:
        ac = np.correlate(f, f, "full")[799:]
        lo, hi = sr // 500, sr // 60
        f0.append(sr / (lo + int(np.argmax(ac[lo:hi]))))
    return float(np.median(f0))


def test_prosody_follows_the_profiles(corpus: Path):
    clips = pd.read_csv(corpus / "clips.csv")
    feats = []
    for row in clips.itertuples():
        x, sr = sf.read(corpus / row.audio)
        spec = np.abs(np.fft.rfft(x)) ** 2
        f = np.fft.rfftfreq(len(x), 1 / sr)
        feats.append({
            "intended": row.intended, "gender": row.gender,
            "level": 10 * np.log10(np.mean(x**2)),
            "hf": 10 * np.log10(spec[f > 2000].sum() / spec[f < 1000].sum()),
            "f0": _pitch(x, sr),
        })
    m = pd.DataFrame(feats).groupby(["gender", "intended"]).mean()
    for g in ("F", "M"):
        for feat in ("level", "hf", "f0"):
            assert m.loc[(g, "anger"), feat] > m.loc[(g, "neutral"), feat] > m.loc[(g, "sad"), feat]
        assert m.loc[(g, "fear"), "f0"] > m.loc[(g, "neutral"), "f0"]
        assert m.loc[(g, "happy"), "f0"] > m.loc[(g, "neutral"), "f0"]


def test_votes_follow_the_crema_d_confusions(corpus: Path):
    clips = pd.read_csv(corpus / "clips.csv")
    votes = pd.read_csv(corpus / "votes.csv")
    v = votes[votes["question"] == "primary"].merge(clips, on="utterance_id")
    v = v[v["level"] == "XX"]
    observed = pd.crosstab(v["intended"], v["label"], normalize="index")
    observed = observed.loc[list(EMOTIONS), list(LETTERS)].to_numpy()
    expected = CREMA_D_VOICE_CONFUSION["XX"]
    assert np.abs(observed - expected).max() < 0.12
    # Each emotion is chosen more often for its own clips than for neutral clips (rows 4).
    for k in range(len(EMOTIONS)):
        if EMOTIONS[k] != "neutral":
            assert observed[k, k] > observed[4, k] + 0.1
