"""Constants behind the demo corpus, each with its source.

Human confusions (rows = intended emotion, columns = share of votes) were
measured by us from CREMA-D's ``tabulatedVotes.csv`` (CheyneyComputerScience/
CREMA-D @ 1658cd34, ODbL), voice-only rows (row index // 100000 == 1), summing
the vote counts of all clips of an intended emotion and intensity level::

    t = pandas.read_csv("tabulatedVotes.csv"); v = t[t.iloc[:, 0] // 100000 == 1]
    v.groupby([intended, level])[list("ADFHNS")].sum(), row-normalised

Acoustic profiles are shifts relative to a speaker's neutral voice, rounded
from the direction and rough size of the effects reviewed by Juslin & Laukka
(2003, Psychol. Bull. 129(5), Table 7) and measured by Banse & Scherer (1996,
JPSP 70(3)): anger and happiness raise F0 level, F0 range, intensity and
high-frequency energy; fear raises F0 and rate with more jitter; sadness lowers
F0, range, intensity and rate and steepens the spectral slope; disgust is
slower with slightly lower F0.  They are a plausible caricature, not a model
of any real speaker.
"""

from __future__ import annotations

import numpy as np

EMOTIONS = ("anger", "disgust", "fear", "happy", "neutral", "sad")
#: CREMA-D letters, in the order of :data:`EMOTIONS`.
LETTERS = ("A", "D", "F", "H", "N", "S")

# Voice-only vote shares per intended emotion (rows) over A D F H N S (columns),
# measured on CREMA-D tabulatedVotes.csv as described in the module docstring.
# Level "XX" (unspecified; 6077 clips) includes the neutral clips; LO / MD / HI
# (455 clips each) exist for the five non-neutral emotions only, so their
# neutral row repeats the XX neutral row.
_NEU_XX = [0.039, 0.059, 0.050, 0.020, 0.762, 0.070]
CREMA_D_VOICE_CONFUSION: dict[str, np.ndarray] = {
    "XX": np.array(
        [
            [0.528, 0.217, 0.057, 0.016, 0.172, 0.010],
            [0.121, 0.278, 0.097, 0.028, 0.384, 0.092],
            [0.065, 0.060, 0.330, 0.024, 0.377, 0.143],
            [0.071, 0.073, 0.084, 0.295, 0.447, 0.030],
            _NEU_XX,
            [0.021, 0.071, 0.126, 0.014, 0.519, 0.249],
        ]
    ),
    "LO": np.array(
        [
            [0.279, 0.226, 0.029, 0.034, 0.401, 0.030],
            [0.046, 0.259, 0.064, 0.013, 0.474, 0.144],
            [0.014, 0.074, 0.122, 0.032, 0.592, 0.166],
            [0.018, 0.041, 0.026, 0.218, 0.661, 0.036],
            _NEU_XX,
            [0.012, 0.068, 0.039, 0.005, 0.648, 0.230],
        ]
    ),
    "MD": np.array(
        [
            [0.528, 0.238, 0.029, 0.046, 0.150, 0.010],
            [0.143, 0.370, 0.058, 0.039, 0.298, 0.092],
            [0.055, 0.087, 0.178, 0.031, 0.511, 0.139],
            [0.054, 0.106, 0.040, 0.275, 0.483, 0.040],
            _NEU_XX,
            [0.009, 0.070, 0.069, 0.013, 0.590, 0.248],
        ]
    ),
    "HI": np.array(
        [
            [0.825, 0.111, 0.030, 0.009, 0.020, 0.005],
            [0.178, 0.319, 0.098, 0.025, 0.283, 0.096],
            [0.111, 0.061, 0.567, 0.087, 0.109, 0.065],
            [0.131, 0.108, 0.153, 0.316, 0.238, 0.054],
            _NEU_XX,
            [0.015, 0.070, 0.129, 0.009, 0.486, 0.291],
        ]
    ),
}
for _m in CREMA_D_VOICE_CONFUSION.values():
    _m /= _m.sum(axis=1, keepdims=True)  # undo the 3-decimal rounding

# Number of voice-only raters per CREMA-D clip (numResponses, 7442 clips):
# value -> number of clips.  Measured from tabulatedVotes.csv.
CREMA_D_RATERS_PER_CLIP = {4: 2, 5: 9, 6: 57, 7: 316, 8: 1155, 9: 2663, 10: 2890, 11: 346, 12: 4}

# Acoustic profile per emotion, relative to the speaker's neutral voice:
# F0 shift (semitones), F0 range factor, level (dB), speaking-rate factor,
# spectral tilt change (dB per octave; positive = flatter, more high-frequency
# energy) and jitter (% of period).
PROFILES: dict[str, dict[str, float]] = {
    "anger": {
        "f0_st": 4.0,
        "range": 1.5,
        "level_db": 6.0,
        "rate": 1.15,
        "tilt": 4.0,
        "jitter": 1.6,
    },
    "disgust": {
        "f0_st": -1.0,
        "range": 0.9,
        "level_db": 0.0,
        "rate": 0.85,
        "tilt": 0.5,
        "jitter": 1.6,
    },
    "fear": {"f0_st": 6.0, "range": 1.1, "level_db": 1.5, "rate": 1.2, "tilt": 1.0, "jitter": 2.6},
    "happy": {"f0_st": 5.0, "range": 1.6, "level_db": 4.0, "rate": 1.1, "tilt": 2.0, "jitter": 1.2},
    "neutral": {
        "f0_st": 0.0,
        "range": 1.0,
        "level_db": 0.0,
        "rate": 1.0,
        "tilt": 0.0,
        "jitter": 1.0,
    },
    "sad": {
        "f0_st": -2.5,
        "range": 0.6,
        "level_db": -5.0,
        "rate": 0.8,
        "tilt": -3.0,
        "jitter": 2.0,
    },
}
#: How much of the profile an intensity level expresses (CREMA-D level codes).
LEVEL_STRENGTH = {"LO": 0.4, "MD": 0.7, "HI": 1.0, "XX": 0.7}

# First three formants (Hz) of five vowels for an adult male voice
# (Peterson & Barney 1952, rounded); female speakers scale them by ~1.15.
VOWELS = np.array(
    [
        [730, 1090, 2440],  # /a/
        [530, 1840, 2480],  # /e/
        [270, 2290, 3010],  # /i/
        [570, 840, 2410],  # /o/
        [300, 870, 2240],  # /u/
    ],
    dtype=np.float64,
)
