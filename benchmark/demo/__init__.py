"""The built-in synthetic demo corpus (no external data needed).

Clearly synthetic: source-filter "speech-like" audio from 10 synthetic speakers.
Version 2: each clip expresses a known emotion mixture that its prosody carries
(published acoustic profiles of six emotions, blended), and simulated raters
with their own sensitivities, confusions and attentiveness answer; the
population is calibrated to CREMA-D voice-only ratings.  See
:mod:`serbench.demo.perception` and :mod:`serbench.demo.profiles`.
"""

from .corpus import DEMO_VERSION, ensure_demo_corpus, generate, labels
from .perception import DEFAULT_HETEROGENEITY, DEFAULT_KAPPA, HETEROGENEITY

__all__ = ["DEFAULT_HETEROGENEITY", "DEFAULT_KAPPA", "DEMO_VERSION", "HETEROGENEITY",
           "ensure_demo_corpus", "generate", "labels"]
