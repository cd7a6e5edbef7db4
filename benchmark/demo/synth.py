"""Source-filter synthesis of speech-like clips with controllable prosody.

A glottal pulse train (F0 contour with declination, accents and jitter) goes
through a spectral-tilt filter and a cascade of three formant resonators per
syllable; syllables get a noise-burst onset and a smooth envelope, words are
separated by pauses.  It is not intelligible speech; it carries the prosodic
cues (F0 level and range, level, rate, spectral tilt, jitter) that SER models
pick up, so a model trained on it learns something real about the labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .profiles import VOWELS


def lfilter(b: Any, a: Any, x: np.ndarray) -> np.ndarray:
    """scipy's ``lfilter``, imported when a clip is synthesised: every command that reads a
    task imports this module, and only generating the demo corpus filters."""
    from scipy.signal import lfilter as _lfilter

    return np.asarray(_lfilter(b, a, x))

SAMPLE_RATE = 16000


@dataclass(frozen=True)
class Voice:
    """A synthetic speaker's neutral voice."""

    f0: float  # Hz, mean of the neutral voice
    range_st: float  # semitones, half-range of the neutral F0 contour
    formant_scale: float  # 1.0 adult male, ~1.15 female
    rate: float  # syllables per second in neutral speech
    level_db: float  # overall level offset


@dataclass(frozen=True)
class Prosody:
    """Prosodic targets of one clip (speaker voice with an emotion applied)."""

    f0: float
    range_st: float
    rate: float
    level_db: float
    tilt_db: float
    jitter_pct: float


def apply_profile(voice: Voice, profile: dict[str, float], strength: float) -> Prosody:
    """Shift a neutral voice towards an emotion profile by ``strength`` in [0, 1]."""
    s = strength
    return Prosody(
        f0=voice.f0 * 2.0 ** (s * profile["f0_st"] / 12.0),
        range_st=voice.range_st * (1.0 + s * (profile["range"] - 1.0)),
        rate=voice.rate * (1.0 + s * (profile["rate"] - 1.0)),
        level_db=voice.level_db + s * profile["level_db"],
        tilt_db=s * profile["tilt"],
        jitter_pct=1.0 + s * (profile["jitter"] - 1.0),
    )


def _resonator(freq: float, bw: float, sr: int) -> np.ndarray:
    r = np.exp(-np.pi * bw / sr)
    return np.array([1.0, -2.0 * r * np.cos(2.0 * np.pi * freq / sr), r * r])


def _formant_filter(formants: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
    den = np.array([1.0])
    for f, bw in zip(formants, (80.0, 100.0, 130.0), strict=True):
        den = np.convolve(den, _resonator(float(f), bw, sr))
    return np.array([den.sum()]), den  # unit gain at DC


def _pulse_train(f0_track: np.ndarray, jitter_pct: float, rng: np.random.Generator) -> np.ndarray:
    """Impulses at glottal closures following an F0 track (Hz per sample), with jitter."""
    n = len(f0_track)
    out = np.zeros(n)
    t = 0.0
    while True:
        i = int(t)
        if i >= n:
            break
        out[i] = 1.0
        period = SAMPLE_RATE / f0_track[i]
        t += period * (1.0 + 0.01 * jitter_pct * rng.standard_normal())
    return out


def synthesize(
    prosody: Prosody,
    vowels: np.ndarray,
    words: list[int],
    formant_scale: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Render one clip.

    ``vowels`` are indices into :data:`~serbench.demo.profiles.VOWELS`, one per
    syllable; ``words`` gives the number of syllables of each word (pauses go
    between words).
    """
    sr = SAMPLE_RATE
    syl_dur = (1.0 / prosody.rate) * (0.8 + 0.4 * rng.random(len(vowels)))
    pauses = 0.06 + 0.08 * rng.random(len(words))
    lead = 0.12
    total = lead * 2 + syl_dur.sum() + pauses[:-1].sum()
    n = int(total * sr)
    # F0 contour: declination over the clip plus one accent per word.
    time = np.arange(n) / sr
    semis = prosody.range_st * (0.6 - 1.2 * time / total)
    starts = []
    t = lead
    k = 0
    for w, n_syl in enumerate(words):
        word_start = t
        for _ in range(n_syl):
            starts.append(t)
            t += syl_dur[k]
            k += 1
        centre = 0.5 * (word_start + t)
        accent = prosody.range_st * (0.4 + 0.8 * rng.random())
        semis += accent * np.exp(-0.5 * ((time - centre) / (0.25 * (t - word_start) + 1e-3)) ** 2)
        if w < len(words) - 1:
            t += pauses[w]
    f0_track = prosody.f0 * 2.0 ** (semis / 12.0)
    source = _pulse_train(f0_track, prosody.jitter_pct, rng)
    source += 0.05 * rng.standard_normal(n) * source.std()  # aspiration
    out = np.zeros(n)
    for s, d, v in zip(starts, syl_dur, vowels, strict=True):
        a, b = int(s * sr), min(int((s + d) * sr), n)
        seg = source[a:b]
        formants = VOWELS[v] * formant_scale * (1.0 + 0.03 * rng.standard_normal(3))
        num, den = _formant_filter(formants, sr)
        voiced = lfilter(num, den, seg)
        env = np.sin(np.pi * np.linspace(0.0, 1.0, len(seg))) ** 0.6
        out[a:b] += voiced * env
        # Consonant onset: a short high-passed noise burst.
        m = min(int(0.035 * sr), b - a)
        burst = lfilter([1.0, -0.95], [1.0], rng.standard_normal(m)) * np.hanning(m)
        out[a : a + m] += 0.3 * burst * np.abs(voiced).max()
    # Spectral tilt over the whole clip: a one-pole low-pass whose pole moves
    # towards 1 (steeper slope, less high-frequency energy) as tilt_db falls.
    pole = float(np.clip(0.75 - 0.04 * prosody.tilt_db, 0.4, 0.95))
    out = lfilter([1.0 - pole], [1.0, -pole], out)
    rms = np.sqrt(np.mean(out**2)) + 1e-12
    out = out / rms * 0.05 * 10.0 ** (prosody.level_db / 20.0)
    out += 1e-4 * rng.standard_normal(n)  # room noise floor
    return np.clip(out, -0.99, 0.99).astype(np.float32)
