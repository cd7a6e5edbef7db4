"""The built-in demo corpus: deterministic, synthetic prosody as profiled, human-like votes."""

import filecmp
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from scipy.stats import spearmanr

from serbench.demo import generate
from serbench.demo.corpus import labels
from serbench.demo.perception import RaterPool
from serbench.demo.profiles import (
    CREMA_D_RATERS_PER_CLIP,
    CREMA_D_VOICE_CONFUSION,
    EMOTIONS,
    LETTERS,
    PROFILES,
)
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
    for name in ("votes.csv", "clips.csv", "raters.csv", "audio/spk03_t02_FEA_MD.wav"):
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


def _primary_counts(corpus: Path) -> tuple[pd.DataFrame, np.ndarray]:
    clips = pd.read_csv(corpus / "clips.csv")
    votes = pd.read_csv(corpus / "votes.csv")
    v = votes[votes["question"] == "primary"]
    counts = pd.crosstab(v["utterance_id"], v["label"]).reindex(
        index=clips["utterance_id"], columns=list(LETTERS), fill_value=0)
    return clips, counts.to_numpy(dtype=float)


def test_votes_follow_the_crema_d_confusions(corpus: Path):
    """Per intended emotion, vote shares within 0.05 of CREMA-D voice's rows.

    The target row of an emotion mixes CREMA-D's per-level rows with the demo's
    level mix (3 LO/MD/HI sentences and 3 XX per speaker; neutral is XX only).
    """
    clips, counts = _primary_counts(corpus)
    for k, emotion in enumerate(EMOTIONS):
        sel = (clips["intended"] == emotion).to_numpy()
        observed = counts[sel].sum(axis=0) / counts[sel].sum()
        levels = clips.loc[sel, "level"]
        expected = sum(CREMA_D_VOICE_CONFUSION[lv][k] * n
                       for lv, n in levels.value_counts().items()) / sel.sum()
        assert np.abs(observed - expected).max() < 0.05, emotion


def _alpha_nominal(counts: np.ndarray) -> float:
    """Krippendorff's alpha (nominal) written out from pairable values, independently of
    serbench.agreement: D_o over all ordered pairs of votes within a clip, D_e over all
    ordered pairs of pairable votes."""
    counts = counts[counts.sum(axis=1) >= 2]
    n_i = counts.sum(axis=1)
    disagree_within = (n_i**2 - (counts**2).sum(axis=1)) / (n_i - 1)
    d_o = disagree_within.sum() / n_i.sum()
    totals = counts.sum(axis=0)
    n = totals.sum()
    d_e = (n**2 - (totals**2).sum()) / (n * (n - 1))
    return float(1 - d_o / d_e)


def test_agreement_and_raters_per_clip_are_crema_d_s(corpus: Path):
    _, counts = _primary_counts(corpus)
    assert abs(_alpha_nominal(counts) - 0.281) < 0.03  # CREMA-D voice, tabulatedVotes.csv
    per_clip = counts.sum(axis=1)
    assert per_clip.min() >= 4 and per_clip.max() <= 12
    sizes = np.array(sorted(CREMA_D_RATERS_PER_CLIP))
    weights = np.array([CREMA_D_RATERS_PER_CLIP[s] for s in sizes], dtype=float)
    assert abs(per_clip.mean() - (sizes * weights).sum() / weights.sum()) < 0.3


def test_the_truth_is_stored_and_the_audio_carries_it(corpus: Path):
    clips = pd.read_csv(corpus / "clips.csv")
    mix = clips[[f"mix_{e}" for e in EMOTIONS]].to_numpy()
    answer = clips[[f"answer_{e}" for e in EMOTIONS]].to_numpy()
    np.testing.assert_allclose(mix.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(answer.sum(axis=1), 1.0, atol=1e-5)
    # Loudness follows the mixture's profile level within each speaker: the level
    # shift of the blend is sum_k m_k * level_db_k (neutral 0), so sadness-heavy
    # clips are quieter and anger-heavy ones louder, whatever the intended label.
    shift = mix @ np.array([PROFILES[e]["level_db"] for e in EMOTIONS])
    level = np.array([10 * np.log10(np.mean(sf.read(corpus / a)[0] ** 2)) for a in clips["audio"]])
    for spk in clips["speaker_id"].unique():
        sel = (clips["speaker_id"] == spk).to_numpy()
        assert spearmanr(shift[sel], level[sel]).statistic > 0.8, spk


def test_heterogeneity_changes_the_raters_only():
    none, high = labels("none"), labels("high")
    np.testing.assert_array_equal(none[3], high[3])  # the same mixtures, so the same audio
    assert np.allclose(none[1].sensitivity, 1.0) and np.ptp(none[1].attentiveness) == 0
    assert high[1].sensitivity.std() > 0.5 and np.ptp(high[1].attentiveness) > 0.03


def test_raters_interact_with_the_acoustics():
    """A rater sensitive to anger hears more anger only in clips that carry anger."""
    k = len(EMOTIONS)
    sens = np.ones((2, k))
    sens[1, 0] = 4.0  # rater 2 is four times as sensitive to anger
    pool = RaterPool(("a", "b"), sens, np.broadcast_to(np.eye(k), (2, k, k)).copy(),
                     np.ones(2))
    angry = np.array([0.3, 0.0, 0.0, 0.0, 0.7, 0.0])
    calm = np.array([0.0, 0.0, 0.0, 0.0, 0.7, 0.3])
    p = pool.answer_probs(angry)
    # By hand: rater 2 hears 0.3 * 4 = 1.2 anger against 0.7 neutral: 1.2 / 1.9.
    assert p[0, 0] == pytest.approx(0.3) and p[1, 0] == pytest.approx(1.2 / 1.9)
    q = pool.answer_probs(calm)
    np.testing.assert_allclose(q[0], q[1])  # no anger in the clip: the bias does nothing
