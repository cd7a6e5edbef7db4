"""Audio decoding: soundfile to read, soxr to resample, mono, optional maximum duration.

``datasets``' Audio feature needs torchcodec, which is not available
everywhere; decoding here keeps the harness independent of it.  Every
failure names the file.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import soxr

from .errors import InputError

DEFAULT_MAX_SECONDS = 12.0  # the released recipe truncates at 12 s
RATE_RANGE = (1000, 384000)  # sample rates outside this are corrupt headers, not speech


@lru_cache(maxsize=65536)
def _header(path: str, size: int, mtime_ns: int) -> Any:
    del size, mtime_ns  # part of the key: a replaced file is read again
    return sf.info(path)


def header(path: str | Path) -> Any:
    """The file's soundfile header, read once per file version (size and mtime in the key).

    Preparing a task reads each header for the clip's duration and again for the
    sample-rate census; the second read comes from here.
    """
    path = Path(path)
    try:
        st = path.stat()
        return _header(str(path), st.st_size, st.st_mtime_ns)
    except (RuntimeError, sf.LibsndfileError, OSError) as exc:
        raise InputError(f"unreadable audio: {exc}", file=path,
                         fix="re-extract the file from the corpus release") from None


def duration(path: str | Path) -> float:
    """Seconds of audio in ``path`` from its header (no decoding); unreadable or empty raises."""
    path = Path(path)
    info = header(path)
    if info.frames == 0:
        raise InputError("audio file has no samples", file=path,
                         fix="re-extract the file, or remove it from the corpus")
    return float(info.duration)


def load(path: str | Path, sample_rate: int = 16000,
         max_seconds: float | None = DEFAULT_MAX_SECONDS) -> np.ndarray:
    """Mono float32 waveform at ``sample_rate``, truncated to ``max_seconds``."""
    path = Path(path)
    if not path.is_file():
        raise InputError("audio file not found", file=path,
                         fix="check the corpus folder given to serbench prepare")
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, sf.LibsndfileError, OSError) as exc:
        raise InputError(f"unreadable audio: {exc}", file=path,
                         fix="re-extract the file from the corpus release") from exc
    if data.shape[0] == 0:
        raise InputError("audio file has no samples", file=path,
                         fix="this clip cannot be scored; re-extract it or ask the task "
                             "maintainers to document it as a known broken file")
    if not RATE_RANGE[0] <= sr <= RATE_RANGE[1]:
        raise InputError(f"implausible sample rate {sr} Hz in the header", file=path,
                         fix="the file header is corrupt; re-extract the file")
    wav = data.mean(axis=1)
    if not np.isfinite(wav).all():
        raise InputError("audio has NaN or infinite samples", file=path)
    if sr != sample_rate:
        wav = soxr.resample(wav, sr, sample_rate, quality="HQ").astype(np.float32)
    if max_seconds is not None:
        wav = wav[: int(max_seconds * sample_rate)]
    if len(wav) == 0:
        raise InputError(f"audio is shorter than one sample at {sample_rate} Hz", file=path,
                         fix="re-extract the file; a clip this short cannot be scored")
    return np.ascontiguousarray(wav, dtype=np.float32)
