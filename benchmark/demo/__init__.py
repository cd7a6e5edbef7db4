"""The built-in synthetic demo corpus (no external data needed).

Clearly synthetic: source-filter "speech-like" audio from 10 synthetic speakers
whose prosody follows published acoustic profiles of six emotions, rated by a
pool of simulated raters whose confusions follow the human confusion pattern
measured on CREMA-D voice-only ratings.  See :mod:`serbench.demo.profiles`.
"""

from .corpus import DEMO_VERSION, ensure_demo_corpus, generate

__all__ = ["DEMO_VERSION", "ensure_demo_corpus", "generate"]
