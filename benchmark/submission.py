"""The submission plugin API: subclass :class:`Submission` in one file to enter the benchmark.

A submission is asked, for every run cell (task, fold, training rule, seed),
to ``fit`` on the cell's training split (selecting on its dev split) and then
to ``predict_proba`` the fold's test clips.  Models that only infer leave
``fit`` alone.  The harness owns everything else: folds, targets, features,
seeds, devices, timing, validation of the outputs and the run record.

Minimal example (a complete, runnable submission)::

    import numpy as np
    from serbench.submission import Submission

    class Prior(Submission):
        name = "prior"
        version = "1.0"

        def fit(self, train, dev, spec):
            self.p = train.targets.mean(axis=0)

        def predict_proba(self, batch):
            return np.tile(self.p / self.p.sum(), (len(batch), 1))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd

from .targets import hard_labels, label_smooth, multi_hot
from .vocab import TargetKind

OutputKind = Literal["distribution", "independent"]
#: The target kind a rule gives by default (consensus rules are one-hot).  DS and DS1
#: are consensus rules too: by default a submission trains on the posterior's argmax
#: (``Data.hard()``); one that declares ``target_kinds = {..., "DS": "distribution"}``
#: (or uses a soft loss) trains on the Dawid-Skene posterior itself (``Data.targets``).
RULE_TARGET: dict[str, TargetKind] = {"MR": "hard", "PR": "hard", "AR": "distribution",
                                      "DS": "hard", "DS1": "hard"}


@dataclass(frozen=True)
class FitSpec:
    """What a submission is trained for in one run cell."""

    task: str
    classes: tuple[str, ...]
    fold: int
    train_rule: str
    target_kind: TargetKind
    seed: int
    device: str
    smoothing: float
    amp_dtype: str | None = None  # "bfloat16" / "float16" on GPU, None on CPU
    #: Call ``report(step, total, message)`` during training to drive the progress bar.
    report: Callable[[int, int, str], None] | None = field(default=None, compare=False,
                                                            repr=False)

    @property
    def k(self) -> int:
        return len(self.classes)

    def progress(self, step: int, total: int, message: str = "") -> None:
        if self.report is not None:
            self.report(step, total, message)


@dataclass
class Data:
    """Clips handed to a submission: ids, targets and the means to reach their audio.

    ``targets`` are the rule's unsmoothed targets (one-hot for MR/PR, the vote
    distribution for AR, the Dawid-Skene posterior for DS/DS1); ``labels`` the
    consensus class (-1 where an AR clip is tied).  ``features`` maps an utterance
    id to its cached feature array when the submission declared ``features``;
    ``audio_paths`` always.
    ``ratings`` holds every rating of these clips (for rater-aware models);
    ``split_ratings`` every rating of every clip of the fold's split, whatever
    the training rule kept (the co-occurrence penalty counts them: docs/methods.md#b.2
    builds the matrix from all training annotations).
    ``groups`` is the task's unlabelled grouping metadata (``speaker_id``,
    ``session``) of *every* clip, indexed by utterance id, like ``features``:
    per-speaker normalisation reads it (see :mod:`serbench.features.normalise`).
    At prediction time targets and labels are empty: only ids and inputs.
    """

    ids: np.ndarray
    audio_paths: np.ndarray
    targets: np.ndarray
    labels: np.ndarray
    features: Any = None
    ratings: pd.DataFrame | None = field(default=None, repr=False)
    split_ratings: pd.DataFrame | None = field(default=None, repr=False)
    groups: pd.DataFrame | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.ids)

    def smoothed(self, epsilon: float) -> np.ndarray:
        return label_smooth(self.targets, epsilon)

    def multi_hot(self) -> np.ndarray:
        return multi_hot(self.targets)

    def hard(self, rng: np.random.Generator | None = None) -> np.ndarray:
        """Consensus classes; tied AR clips get a random top class with ``rng``."""
        return hard_labels(self.targets, rng)

    def take(self, index: Sequence[int] | np.ndarray) -> Data:
        index = np.asarray(index)
        return Data(self.ids[index], self.audio_paths[index],
                    self.targets[index] if len(self.targets) else self.targets,
                    self.labels[index] if len(self.labels) else self.labels,
                    self.features, self.ratings, self.split_ratings, self.groups)


class Submission:
    """Base class of every submission.

    Class attributes: ``name`` (letters, digits, ``. _ + -``), ``version``,
    ``features`` (a feature spec from :mod:`serbench.features`, or None for
    raw audio paths).  A submission whose features depend on its configuration
    overrides :meth:`feature_spec` instead.

    Constructor keyword arguments are the submission's configuration, declared
    with type hints and defaults (``def __init__(self, lr: float = 1e-3)``):
    ``--config`` is checked against them before anything runs
    (:mod:`serbench.params`), and they are recorded with every cell
    (``config()``).  The runner constructs a submission once per cell (and once
    per grid to read its configuration and features), so construction must be
    cheap and free of side effects: load models and data in ``fit`` or
    ``restore``, not in ``__init__``.
    """

    name: ClassVar[str] = ""
    version: ClassVar[str] = "0"
    features: ClassVar[Any] = None
    #: Training rule -> target kind; override to train e.g. with multi-hot targets.  A
    #: rule missing from an override gets its default (:data:`RULE_TARGET`).
    target_kinds: ClassVar[dict[str, TargetKind]] = RULE_TARGET
    #: ``"distribution"`` (rows sum to 1)
    #: or ``"independent"`` (one probability in [0, 1] per class, e.g. sigmoid outputs).
    #: Independent outputs are scored as they are by the single-label (argmax),
    #: multi-label (1/K bits) and ranking metrics and normalised to sum to 1 only for
    #: the distribution metrics.
    outputs: ClassVar[OutputKind] = "distribution"

    def __init__(self, **config: Any) -> None:
        self._config = dict(config)

    def config(self) -> dict[str, Any]:
        """The configuration recorded with every run cell (JSON-serialisable)."""
        return dict(self._config)

    def feature_spec(self) -> Any:
        """The feature spec the runner caches for this configuration (default: ``features``)."""
        return self.features

    def fit(self, train: Data, dev: Data, spec: FitSpec) -> None:
        """Train on ``train`` (select on ``dev``); inference-only submissions skip it."""

    def predict_proba(self, batch: Data) -> np.ndarray:
        """Class probabilities [len(batch), K]: rows summing to 1, or independent
        per-class probabilities when ``outputs = "independent"``."""
        raise NotImplementedError

    def predict_rater_proba(self, batch: Data, rater_ids: Sequence[str]) -> np.ndarray:
        """Optional: what each rater will answer, [len(batch), len(rater_ids), K].

        ``out[i, j]`` is the distribution of rater ``rater_ids[j]``'s primary answer
        on clip ``batch.ids[i]``: rows summing to 1 (whatever ``outputs`` says).
        The runner asks for the raters who voted on at least one clip of the batch
        and keeps the (clip, rater) pairs that were voted; a rater the model has no
        model of should get what :meth:`predict_proba` gives.  The rater-level
        metrics (docs/methods.md#rater-eval) score it; a submission without it is
        scored with its one clip distribution for every rater.
        """
        raise NotImplementedError

    def rater_coverage(self) -> dict[str, Any] | None:
        """Optional: how many raters the fitted model covers (kept raters, clips without
        one, test raters with their own head), written into every run record."""
        return None

    def checkpoint(self) -> dict[str, Any]:
        """Optional: everything ``predict_proba`` needs after ``fit``, as named torch tensors.

        The runner saves them as safetensors (``serbench run --save-models``) and
        hands them back to :meth:`restore` (``--load-models``); no pickle either way.
        """
        raise NotImplementedError(f"{type(self).__name__} does not save checkpoints")

    def restore(self, tensors: dict[str, Any], spec: FitSpec, features: Any) -> None:
        """Optional: become the fitted model that :meth:`checkpoint` described.

        Called instead of ``fit`` on a fresh instance built with the recorded
        configuration; ``features`` is the task's feature store (or None).
        """
        raise NotImplementedError(f"{type(self).__name__} does not load checkpoints")

    @classmethod
    def trains(cls) -> bool:
        return cls.fit is not Submission.fit

    @classmethod
    def predicts_raters(cls) -> bool:
        """Whether the class implements :meth:`predict_rater_proba`."""
        return cls.predict_rater_proba is not Submission.predict_rater_proba

    @classmethod
    def checkpoints(cls) -> bool:
        """Whether the class implements both :meth:`checkpoint` and :meth:`restore`."""
        return cls.checkpoint is not Submission.checkpoint and \
            cls.restore is not Submission.restore
