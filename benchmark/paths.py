"""Where serbench keeps its caches.

``SERBENCH_HOME`` wins; otherwise ``$XDG_CACHE_HOME/serbench`` or
``~/.cache/serbench``.  Nothing here is precious: every file under it can be
rebuilt from a source with ``serbench prepare``.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from .errors import InputError


def home() -> Path:
    """The cache root, created on first use (where it can be: reading needs no write)."""
    env = os.environ.get("SERBENCH_HOME")
    if env:
        root = Path(env).expanduser()
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        root = (Path(xdg) if xdg else Path.home() / ".cache") / "serbench"
    for part in (root, *root.parents):  # the home, or a folder above it, is a file
        if part.exists() and not part.is_dir():
            raise InputError(f"the serbench home {root} is a file, not a folder" if part == root
                             else f"the serbench home {root} cannot be made ({part} is a file, "
                                  "not a folder)",
                             fix="point SERBENCH_HOME at a folder (it is created if missing)")
    # a read-only home still serves reads; a write there fails with one message
    with contextlib.suppress(OSError):
        root.mkdir(parents=True, exist_ok=True)
    return root


def task_cache(task: str) -> Path:
    """Folder holding a task's prepared ratings table and its provenance."""
    return home() / "tasks" / task


def corpus_cache(name: str) -> Path:
    """Folder holding a generated or converted corpus (e.g. the demo audio)."""
    return home() / "corpora" / name


def confined(root: str | Path, relative: str | Path, *, what: str,
             file: str | Path | None = None, row: int | None = None) -> Path:
    """``root / relative``, refused unless it stays inside ``root``.

    Task files, manifests and ratings tables name files relative to a folder the
    user chose; an absolute path or a ``..`` that climbs out of it (for example
    ``../../.ssh/id_rsa`` in a downloaded task) is an error naming the file and
    row, never a file read somewhere else.  Symbolic links inside ``root`` are
    followed: a link is the user's own choice, a path in a shared file is not.
    """
    from .errors import InputError

    rel = Path(str(relative))
    if rel.is_absolute() or ".." in rel.parts:
        raise InputError(f"{what} {str(relative)!r} leaves its folder {root}", file=file, row=row,
                         fix="name files relative to that folder, without '..' or a leading '/'")
    return Path(root) / rel
