"""serbench: a speech emotion recognition benchmark that counts every rater.

The data flows one way: corpus reader -> ratings table -> task (folds, rule
targets) -> runner -> predictions -> scorer -> leaderboard.  This module is the
front door: everything in ``__all__`` is the stable API; every other module is
internal and may change between versions.

From a notebook::

    import serbench
    result = serbench.run("demo", "blstm-fc", seeds=[0, 1, 2])   # the demo grid
    result.counts(), result.failed, result.board                 # cells and leaderboard
    train = serbench.cell_data("demo", fold=1, rule="AR", split="train")

Names are loaded on first use, so ``import serbench`` (and the CLI) stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: Public name -> the internal module that defines it.
_API: dict[str, str] = {
    # vocabularies, rules and targets
    "RULES": "vocab", "Rule": "vocab", "TargetKind": "vocab", "SPLITS": "vocab",
    "apply_rule": "rules", "RuleResult": "rules",
    "label_smooth": "targets", "multi_hot": "targets", "hard_labels": "targets",
    # tasks
    "Task": "tasks", "load_task": "tasks", "prepare": "tasks", "list_tasks": "tasks",
    # the submission API
    "Submission": "submission", "Data": "submission", "FitSpec": "submission",
    "LogMel": "features", "EGeMAPS": "features", "SSLHiddenStates": "features",
    "FeatureSpec": "features",
    "validate_config": "params",
    # running
    "run": "grid", "cell_data": "grid", "build_leaderboard": "grid", "GridResult": "grid",
    "DEFAULT_SEEDS": "grid", "Runner": "runner", "Hooks": "executors",
    # scoring
    "metrics": "", "score_probs": "scoring", "score_record": "scoring", "compare": "summaries",
    # errors
    "SerbenchError": "errors", "InputError": "errors",
}

__all__ = [
    "DEFAULT_SEEDS",
    "RULES",
    "SPLITS",
    "Data",
    "EGeMAPS",
    "FeatureSpec",
    "FitSpec",
    "GridResult",
    "Hooks",
    "InputError",
    "LogMel",
    "Rule",
    "RuleResult",
    "Runner",
    "SSLHiddenStates",
    "SerbenchError",
    "Submission",
    "TargetKind",
    "Task",
    "__version__",
    "apply_rule",
    "build_leaderboard",
    "cell_data",
    "compare",
    "hard_labels",
    "label_smooth",
    "list_tasks",
    "load_task",
    "metrics",
    "multi_hot",
    "prepare",
    "run",
    "score_probs",
    "score_record",
    "validate_config",
]


def __getattr__(name: str) -> Any:
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'serbench' has no attribute {name!r}")
    if module == "":
        value: Any = importlib.import_module(f".{name}", __name__)
    else:
        value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:  # the names as mypy and IDEs see them
    from . import metrics
    from .errors import InputError, SerbenchError
    from .executors import Hooks
    from .features import EGeMAPS, FeatureSpec, LogMel, SSLHiddenStates
    from .grid import DEFAULT_SEEDS, GridResult, build_leaderboard, cell_data, run
    from .params import validate_config
    from .rules import RuleResult, apply_rule
    from .runner import Runner
    from .scoring import score_probs, score_record
    from .submission import Data, FitSpec, Submission
    from .summaries import compare
    from .targets import hard_labels, label_smooth, multi_hot
    from .tasks import Task, list_tasks, load_task, prepare
    from .vocab import RULES, SPLITS, Rule, TargetKind
