"""Fingerprints: hashes of the kept ids and their targets per fold, split and rule.

Two labs whose fingerprints agree score the same clips against the same
targets.  A cell's digest is the SHA-256 of its sorted lines
``<utterance id>\\t<target>``, where the target is the class name for MR/PR,
the vote distribution with 6 decimals for AR (before smoothing; the
smoothing epsilon is part of the task's configuration hash), and for the
model rules DS/DS1 the consensus class name and the posterior with 4 decimals
(an EM fit, so 4 decimals keep the digest safe from last-bit differences
between machines while every target that matters is pinned).  The task
fingerprint hashes the configuration hash and every cell digest.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import FingerprintMismatch
from ..vocab import MODEL_RULES

#: Decimals of a model rule's posterior in a cell digest.
MODEL_DECIMALS = 4


def cell_digest(
    ids: Sequence[str], targets: np.ndarray, labels: np.ndarray, rule: str, classes: Sequence[str]
) -> str:
    order = np.argsort(np.asarray(ids, dtype=str), kind="stable")
    h = hashlib.sha256()
    for i in order:
        if rule == "AR":
            target = ",".join(f"{v:.6f}" for v in targets[i])
        elif rule in MODEL_RULES:
            target = classes[int(labels[i])] + "\t" + ",".join(
                f"{v:.{MODEL_DECIMALS}f}" for v in targets[i])
        else:
            target = classes[int(labels[i])]
        h.update(f"{ids[i]}\t{target}\n".encode())
    return h.hexdigest()


def task_fingerprint(config_hash: str, cells: dict[str, Any]) -> str:
    blob = json.dumps(
        {"config": config_hash, "cells": cells}, sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def short(fp: str) -> str:
    return fp[:12]


def compare(frozen: dict[str, Any], built: dict[str, Any], *, file: str) -> None:
    """Raise :class:`FingerprintMismatch` naming every cell that differs."""
    if frozen.get("fingerprint") == built.get("fingerprint"):
        return
    problems = []
    if frozen.get("config") != built.get("config"):
        problems.append(
            "the task configuration (classes, mapping, folds, rules, smoothing) changed"
        )
    for fold, rules in built.get("cells", {}).items():
        for rule, splits in rules.items():
            for split, cell in splits.items():
                old = frozen.get("cells", {}).get(fold, {}).get(rule, {}).get(split)
                if old != cell:
                    was = "absent" if old is None else f"{old['n']} clips"
                    problems.append(
                        f"{fold} {rule} {split}: frozen {was}, built {cell['n']} clips"
                        + (
                            " (same ids/targets count, different content)"
                            if old and old["n"] == cell["n"]
                            else ""
                        )
                    )
    raise FingerprintMismatch(
        "the prepared data gives other clips or targets than the frozen task "
        f"(fingerprint {short(frozen.get('fingerprint', ''))} expected, "
        f"{short(built.get('fingerprint', ''))} built):\n  - " + "\n  - ".join(problems[:20]),
        file=file,
        fix="check that --source is the corpus release named in the task file; to define a "
        "new variant on purpose, copy the task under a new name and freeze it",
    )
