"""The closed vocabularies of serbench, each declared once.

Every other module imports these names instead of repeating the strings, so
that adding a rule, a split or a status is one edit here plus what handles it,
and mypy checks every use.

>>> RULES
('MR', 'PR', 'AR')
>>> SPLITS
('train', 'dev', 'test')
"""

from __future__ import annotations

from typing import Literal, get_args

#: Aggregation rules: majority (MR), plurality (PR), all-inclusive (AR); docs/methods.md#a.1.
Rule = Literal["MR", "PR", "AR"]
RULES: tuple[Rule, ...] = get_args(Rule)

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

__all__ = ["QUESTIONS", "RULES", "SPLITS", "TARGET_KINDS", "CellStatus", "Question", "Rule",
           "Split", "TargetKind"]
