"""Where a run record says it came from: package versions, torch threads, the git commit.

The versions and the commit are read once per process (the code that runs is the code that
was imported, even if the checkout moves on during a long run) and copied per record.
"""

from __future__ import annotations

import contextlib
import functools
import platform
import subprocess
from importlib import metadata
from pathlib import Path

from . import __version__


def versions() -> dict[str, str]:
    return dict(_versions())


@functools.lru_cache(maxsize=1)
def _versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "serbench": __version__}
    for pkg in ("numpy", "torch", "transformers", "scikit-learn"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[pkg] = metadata.version(pkg)
    return out


def threads() -> int:
    """Torch's CPU threads: CPU results differ in the last bits between thread counts."""
    import torch

    return torch.get_num_threads()


@functools.lru_cache(maxsize=1)
def git_commit() -> str | None:
    try:
        res = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5, cwd=Path(__file__).resolve().parent)
        return res.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


__all__ = ["git_commit", "threads", "versions"]
