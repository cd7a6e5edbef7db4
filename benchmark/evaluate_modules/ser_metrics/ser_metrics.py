"""serbench's SER metrics as a local Hugging Face ``evaluate`` module (no hub access).

Load with ``serbench.evaluation.load()`` (or ``evaluate.load(path_to_this_folder)``),
then ``compute(predictions=probs, references=targets, metrics=[...])``.
References are the test rule's targets: one-hot rows for MR / PR test sets
(single-label metrics need them), distributions for AR.  The numbers are
those of :mod:`serbench.metrics`.
"""

import datasets
import evaluate
import numpy as np

from serbench import metrics as M

_DESCRIPTION = "UAR, macro-F1, the 1/K multi-label F1 and distribution metrics of serbench."
_KWARGS = """
Args:
    predictions: [N, K] predicted probabilities (rows sum to 1).
    references: [N, K] targets: one-hot (MR/PR) or distributions (AR).
    metrics: names from serbench.metrics.ALL (default: all that apply).
    double_softmax: reproduce the released code's second softmax (default False).
Returns:
    dict metric name -> value.
"""


class SerMetrics(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS,
            features=datasets.Features({
                "predictions": datasets.Sequence(datasets.Value("float64")),
                "references": datasets.Sequence(datasets.Value("float64")),
            }),
        )

    def _compute(self, predictions, references, metrics=None, double_softmax=False):
        probs = np.asarray(predictions, dtype=np.float64)
        targets = np.asarray(references, dtype=np.float64)
        one_hot = bool(np.all(np.isin(targets, (0.0, 1.0))) and np.all(targets.sum(1) == 1))
        names = list(metrics) if metrics else [
            m for m in M.ALL if one_hot or M.METRICS[m].kind != "single"]
        if not one_hot and any(M.METRICS[m].kind == "single" for m in names):
            raise ValueError("single-label metrics need one-hot references (MR/PR test sets)")
        labels = targets.argmax(axis=1) if one_hot else None
        return M.compute(names, targets, probs, labels, double_softmax=double_softmax)
