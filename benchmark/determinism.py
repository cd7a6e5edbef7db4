"""Seeds and the determinism mode of a cell.

Every cell seeds Python, numpy and torch from (training seed, fold, rule), so a
cell is the same whatever order the grid runs in.  The determinism mode asks
torch for bit-reproducible kernels: free on the CPU, 5-10 % slower on a GPU
(measured, README), where it is therefore off by default; the record states it.
See docs/methods.md#loss.selection.
"""

from __future__ import annotations

import os
import random
import sys

import numpy as np

#: Each training rule's offset in the cell seed (DS and DS1 added after MR, PR, AR).
RULE_OFFSET = {"MR": 1, "PR": 2, "AR": 3, "DS": 4, "DS1": 5}


def cell_seed(seed: int, fold: int, rule: str) -> int:
    return (seed * 1_000_003 + fold * 101 + RULE_OFFSET.get(rule, 0)) % 2**31


def seed_everything(seed: int, deterministic: bool = True) -> None:
    """Seed Python, numpy and torch; in deterministic mode ask torch for deterministic kernels.

    ``deterministic=False`` (the fast mode) lets torch pick its
    fastest kernels, some of which are not bit-reproducible on a GPU.
    """
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    # The call imports torch's compiler stack (over a second) to set its flag too; in the fast
    # mode, with nothing switched on yet and that stack not loaded, there is nothing to undo.
    if deterministic or torch.are_deterministic_algorithms_enabled() \
            or "torch._inductor.config" in sys.modules:
        torch.use_deterministic_algorithms(deterministic, warn_only=True)
    torch.backends.cudnn.deterministic = deterministic


def default_determinism(device: str) -> bool:
    """Deterministic on the CPU (it costs nothing there), fast on a GPU."""
    return not device.startswith("cuda")


def preload() -> None:
    """Do once, in the parent, what the first :func:`seed_everything` of a process imports.

    torch imports its compiler stack (``torch._inductor``, over a second of
    CPU) on the first ``use_deterministic_algorithms`` call.  Cells computed
    in forked children would each pay it; after this they inherit it.  The
    process's determinism setting is left as it was.
    """
    import torch

    torch.use_deterministic_algorithms(
        torch.are_deterministic_algorithms_enabled(),
        warn_only=torch.is_deterministic_algorithms_warn_only_enabled())

