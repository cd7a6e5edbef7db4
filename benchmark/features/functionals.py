"""openSMILE utterance-level functionals: one fixed-size vector per clip.

The classical speech-emotion reference (Eyben et al., 2016, "The Geneva
Minimalistic Acoustic Parameter Set (GeMAPS) for Voice Research and Affective
Computing"; Schuller et al., 2016, "The INTERSPEECH 2016 Computational
Paralinguistics Challenge") summarises each clip by statistics of its frame
descriptors: 88 eGeMAPSv02 functionals or 6373 ComParE_2016 functionals.  A
clip's features are cached as a [1, D] float32 array (one "frame"), so the
same feature cache serves them as every frame-level spec.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError
from .specs import FeatureSpec

#: Feature-set name in serbench configs -> openSMILE ``FeatureSet`` member.
FEATURE_SETS: dict[str, str] = {"egemaps": "eGeMAPSv02", "compare": "ComParE_2016"}
DIMENSIONS: dict[str, int] = {"egemaps": 88, "compare": 6373}
INSTALL = "pip install 'serbench[egemaps]'  (or: pip install opensmile)"


def require_opensmile() -> Any:
    """The ``opensmile`` module, or one clear :class:`InputError` with the install command."""
    try:
        import opensmile
    except ImportError as exc:
        raise InputError("openSMILE features need the opensmile package, which is not "
                         "installed", fix=INSTALL) from exc
    return opensmile


def check_feature_set(name: str) -> str:
    if name not in FEATURE_SETS:
        raise InputError(f"unknown openSMILE feature set {name!r}",
                         fix=f"use one of {sorted(FEATURE_SETS)}")
    return name


@dataclass(frozen=True)
class OpenSmileFunctionals(FeatureSpec):
    """openSMILE functionals of a whole clip: [1, 88] (eGeMAPSv02) or [1, 6373] (ComParE_2016)."""

    feature_set: str = "egemaps"
    sample_rate: int = 16000

    def __post_init__(self) -> None:
        check_feature_set(self.feature_set)

    def extract(self, waves: list[np.ndarray], device: str = "cpu") -> list[np.ndarray]:
        opensmile = require_opensmile()
        smile = opensmile.Smile(
            feature_set=getattr(opensmile.FeatureSet, FEATURE_SETS[self.feature_set]),
            feature_level=opensmile.FeatureLevel.Functionals)
        out = []
        for w in waves:
            row = smile.process_signal(w, self.sample_rate).to_numpy(dtype=np.float32)
            out.append(np.nan_to_num(row.reshape(1, -1), nan=0.0, posinf=0.0, neginf=0.0))
        return out
