"""Model checkpoints as safetensors: named tensors and a JSON header, never pickle.

A checkpoint may come from someone else's run folder.  ``torch.load`` on a
pickle runs whatever code the file names; a safetensors file is parsed as a
header plus raw tensor bytes, so loading one cannot execute anything.  The
runner serialises here (to bytes, so that a Ray worker can send a checkpoint
back to the driver that writes it) and submissions only ever see tensors.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch

from . import atomic
from .errors import InputError

FILE = "model.safetensors"
META_KEY = "serbench"


def to_bytes(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> bytes:
    """Serialise ``tensors`` (moved to CPU, made contiguous) with ``meta`` in the header."""
    from safetensors.torch import save

    if not isinstance(tensors, dict) or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in tensors.items()):
        raise TypeError("checkpoint() must return a dict of name -> torch.Tensor")
    flat = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    return save(flat, metadata={META_KEY: json.dumps(meta, sort_keys=True, default=str)})


def write(path: str | Path, data: bytes) -> str:
    """Write checkpoint bytes atomically; return their sha256 (kept in the run record)."""
    atomic.write_bytes(path, data)
    return hashlib.sha256(data).hexdigest()


def read(path: str | Path, sha256: str | None = None) -> tuple[dict[str, torch.Tensor],
                                                              dict[str, Any]]:
    """Tensors and metadata of a checkpoint; a changed or unreadable file is an error."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read checkpoint: {exc}", file=path,
                         fix="run the cell with --save-models first") from exc
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
        raise InputError("checkpoint does not match the sha256 in its run record", file=path,
                         fix="the file was changed or replaced; rerun the cell with "
                             "--save-models")
    try:
        tensors = load(data)
        header_len = int.from_bytes(data[:8], "little")
        header = json.loads(data[8:8 + header_len])
        meta = json.loads(header.get("__metadata__", {}).get(META_KEY, "{}"))
    except (SafetensorError, ValueError, TypeError, AttributeError) as exc:
        raise InputError(f"not a safetensors checkpoint: {exc}", file=path,
                         fix="checkpoints are written by serbench run --save-models") from exc
    return tensors, meta
