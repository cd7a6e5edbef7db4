"""Load serbench's metrics as a Hugging Face ``evaluate`` module, offline.

``evaluate.load("f1")`` fetches from the hub; this loads the module shipped
inside the package instead, so it works with no network.
"""

from __future__ import annotations

from importlib import resources
from typing import Any


def module_path() -> str:
    return str(resources.files("serbench") / "evaluate_modules" / "ser_metrics")


def load(**kwargs: Any):
    """``evaluate.load`` of the local ``ser_metrics`` module."""
    import evaluate

    return evaluate.load(module_path(), **kwargs)
