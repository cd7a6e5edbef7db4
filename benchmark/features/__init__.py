"""Input features for submissions, extracted once per corpus and cached.

A feature spec (:class:`LogMel`, :class:`SSLHiddenStates`, :class:`SSLPooled`,
:class:`EGeMAPS`)
turns waveforms into arrays; :mod:`serbench.features.cache` stores them in a
memory-mapped Arrow file per (task, spec) that every cell, fold, rule and
seed reuses.
"""

from .cache import FeatureStore, build_store
from .specs import EGeMAPS, FeatureSpec, LogMel, SSLHiddenStates, SSLPooled

__all__ = ["EGeMAPS", "FeatureSpec", "FeatureStore", "LogMel", "SSLHiddenStates", "SSLPooled",
           "build_store"]
