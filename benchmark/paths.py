"""Where serbench keeps its caches.

``SERBENCH_HOME`` wins; otherwise ``$XDG_CACHE_HOME/serbench`` or
``~/.cache/serbench``.  Nothing here is precious: every file under it can be
rebuilt from a source with ``serbench prepare``.
"""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    """The cache root, created on first use."""
    env = os.environ.get("SERBENCH_HOME")
    if env:
        root = Path(env).expanduser()
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        root = (Path(xdg) if xdg else Path.home() / ".cache") / "serbench"
    root.mkdir(parents=True, exist_ok=True)
    return root


def task_cache(task: str) -> Path:
    """Folder holding a task's prepared ratings table and its provenance."""
    return home() / "tasks" / task


def corpus_cache(name: str) -> Path:
    """Folder holding a generated or converted corpus (e.g. the demo audio)."""
    return home() / "corpora" / name
