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

#: The entry-point group through which an installed package adds a reader
#: (``[project.entry-points."serbench.readers"] my-corpus = "pkg.module:read"``).
ENTRY_POINT_GROUP = "serbench.readers"

#: The readers that ship with serbench, by the name task files use.
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


#: Built-in readers whose source may be something other than a local path (a hub id).
SOURCE_NOT_A_PATH = frozenset({"datasets"})


def source_is_a_path(name: str) -> bool:
    """Whether the reader ``name`` reads its source from a local path, so that a source that
    does not exist can be refused before it runs.  Unknown for an installed entry point (a
    URL or an id may be what it expects): False."""
    return name in READERS and name not in SOURCE_NOT_A_PATH


def available() -> dict[str, Reader]:
    """Every reader a task file may name: the built-in ones, then installed entry points."""
    from importlib import metadata

    from ..errors import InputError

    found = dict(READERS)
    for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        if ep.name in found:
            continue
        try:
            fn = ep.load()
        except Exception as exc:
            raise InputError(f"reader entry point {ep.name} = {ep.value} failed to load: {exc}",
                             fix="reinstall the package that provides it") from exc
        if not callable(fn):
            raise InputError(f"reader entry point {ep.name} = {ep.value} is not a function")
        found[ep.name] = fn
    return found


def get_reader(name: str) -> Reader:
    """The reader called ``name``; an unknown name is one error listing the known ones."""
    from ..errors import InputError

    found = available()
    if name not in found:
        raise InputError(f"unknown corpus reader {name!r}; known: {', '.join(sorted(found))}",
                         fix="fix corpus.reader in the task file, or install the package that "
                             f"provides it (entry-point group {ENTRY_POINT_GROUP})")
    return found[name]


__all__ = [
    "ENTRY_POINT_GROUP",
    "READERS",
    "SOURCE_NOT_A_PATH",
    "Path",
    "ReadResult",
    "Reader",
    "available",
    "get_reader",
    "source_is_a_path",
]
