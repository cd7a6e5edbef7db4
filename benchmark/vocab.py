"""The closed vocabularies of serbench, each declared once.

Every other module imports these names instead of repeating the strings, so
that adding a rule, a split or a status is one edit here plus what handles it,
and mypy checks every use.

>>> RULES
('MR', 'PR', 'AR', 'DS', 'DS1')
>>> DEFAULT_RULES
('MR', 'PR', 'AR')
>>> SPLITS
('train', 'dev', 'test')
"""

from __future__ import annotations

from typing import Literal, get_args

#: Aggregation rules: majority (MR), plurality (PR), all-inclusive (AR); docs/methods.md#a.1;
#: and the model-based Dawid-Skene (DS) and one-coin Dawid-Skene (DS1) rules
#: (serbench.aggregation), which a task declares beside them.
Rule = Literal["MR", "PR", "AR", "DS", "DS1"]
RULES: tuple[Rule, ...] = get_args(Rule)
#: The rules of a task that names none: the vote-count rules.
DEFAULT_RULES: tuple[Rule, ...] = ("MR", "PR", "AR")
#: Rules fitted as one model over every vote of the task (targets: posteriors).
MODEL_RULES: tuple[Rule, ...] = ("DS", "DS1")

#: The splits of a fold.
Split = Literal["train", "dev", "test"]
SPLITS: tuple[Split, ...] = get_args(Split)

#: What a submission is trained on: one class, the 1/K multi-hot bits, or the vote distribution.
TargetKind = Literal["hard", "multi_hot", "distribution"]
TARGET_KINDS: tuple[TargetKind, ...] = get_args(TargetKind)

#: What became of a grid cell.
CellStatus = Literal["done", "skipped", "failed"]

#: The rating question a task reads: the single-choice primary or the multi-choice secondary.
Question = Literal["primary", "secondary"]
QUESTIONS: tuple[Question, ...] = get_args(Question)

__all__ = ["DEFAULT_RULES", "MODEL_RULES", "QUESTIONS", "RULES", "SPLITS", "TARGET_KINDS",
           "CellStatus", "Question", "Rule", "Split", "TargetKind"]
