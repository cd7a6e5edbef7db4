"""Which device cells run on: ``auto`` resolved, a missing GPU refused, CUDA state checked."""

from __future__ import annotations

from .errors import InputError


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when a GPU is visible, else ``cpu``; refuse a missing GPU."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError("--device cuda asked for, but torch sees no GPU",
                         fix="use --device cpu or auto, or install a CUDA build of torch")
    if device not in ("cpu",) and not device.startswith("cuda"):
        raise InputError(f"unknown device {device!r}", fix="use auto, cpu or cuda[:N]")
    return device


def cuda_initialised() -> bool:
    import torch

    return bool(torch.cuda.is_initialized())
