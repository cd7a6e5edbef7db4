"""Corpus readers: raw source -> ratings table rows.

A reader is a function ``read(source: Path | None, **options) -> ReadResult``
registered under a name that task YAML files use (``corpus.reader``).  Readers
return raw labels; the task maps them to classes.  They count and document
every drop (``ReadResult.drops``) instead of silently losing a rating.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .base import ReadResult
from .crema_d import read_crema_d
from .demo import read_demo
from .emobox import read_emobox
from .emodb import read_emodb
from .hf_datasets import read_hf_dataset
from .iemocap import read_iemocap
from .msp_improv import read_msp_improv
from .msp_podcast import read_msp_podcast
from .released import read_released_labels
from .speechbrain import read_speechbrain
from .table import read_table

Reader = Callable[..., ReadResult]

READERS: dict[str, Reader] = {
    "demo": read_demo,
    "crema-d": read_crema_d,
    "emodb": read_emodb,
    "iemocap": read_iemocap,
    "msp-improv": read_msp_improv,
    "msp-podcast": read_msp_podcast,
    "biic-podcast": read_msp_podcast,  # BIIC-Podcast shares MSP-Podcast's Labels/ layout
    "released-labels": read_released_labels,
    "csv": read_table,
    "datasets": read_hf_dataset,  # a save_to_disk folder or a hub id, with a column map
    "emobox": read_emobox,  # EmoBox JSON-lines manifests
    "speechbrain": read_speechbrain,  # SpeechBrain JSON manifests
}


def get_reader(name: str) -> Reader:
    try:
        return READERS[name]
    except KeyError:
        raise KeyError(f"unknown corpus reader {name!r}; known: {sorted(READERS)}") from None


__all__ = ["READERS", "Path", "ReadResult", "Reader", "get_reader"]
