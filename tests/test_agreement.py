"""Fleiss' kappa and Krippendorff's alpha against their published worked examples and CREMA-D."""

import numpy as np
import pandas as pd
import pytest

from conftest import shared
from serbench.agreement import fleiss_kappa, krippendorff_alpha, summary
from serbench.readers.crema_d import read_crema_d

# Fleiss' kappa worked example (10 subjects, 14 raters, 5 categories): kappa = 0.210
# (en.wikipedia.org/wiki/Fleiss%27_kappa, Worked example).
FLEISS = np.array([[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0],
                   [2, 2, 8, 1, 1], [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2],
                   [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]])
# Krippendorff (2011), "Computing Krippendorff's alpha-reliability", section C: 4 observers,
# 12 units, missing values, nominal alpha = 0.743.  Counts per unit of values 1..5; unit 12
# has a single value and is not pairable.
KRIPPENDORFF = np.array([[3, 0, 0, 0, 0], [0, 3, 1, 0, 0], [0, 0, 4, 0, 0], [0, 0, 4, 0, 0],
                         [0, 4, 0, 0, 0], [1, 1, 1, 1, 0], [0, 0, 0, 4, 0], [3, 1, 0, 0, 0],
                         [0, 4, 0, 0, 0], [0, 0, 0, 0, 3], [2, 0, 0, 0, 0], [0, 0, 1, 0, 0]])


def test_published_examples():
    assert fleiss_kappa(FLEISS) == pytest.approx(0.210, abs=5e-4)
    assert krippendorff_alpha(KRIPPENDORFF) == pytest.approx(0.743, abs=5e-4)
    assert summary(KRIPPENDORFF)["clips"] == 11


def test_perfect_and_chance_agreement():
    perfect = np.array([[3, 0], [0, 3], [3, 0]])
    assert fleiss_kappa(perfect) == pytest.approx(1.0)
    assert krippendorff_alpha(perfect) == pytest.approx(1.0)
    assert np.isnan(fleiss_kappa(np.array([[1, 0], [0, 1]])))  # nothing pairable


def test_crema_d_voice_agreement_is_the_lowest_of_the_three_modalities():
    src = shared("crema-d")
    alpha = {}
    for modality in ("voice", "face", "audiovisual"):
        t = read_crema_d(src, modality=modality).table
        counts = pd.crosstab(t["utterance_id"], t["label"]).to_numpy()
        alpha[modality] = krippendorff_alpha(counts)
        # the vectorised statistic equals a plain per-clip loop of Fleiss' definition
        m = counts.sum(1)
        p_i = [(sum(int(x) ** 2 for x in row) - n) / (n * (n - 1))
               for row, n in zip(counts, m, strict=True) if n >= 2]
        p_k = counts.sum(0) / counts.sum()
        want = (np.mean(p_i) - (p_k ** 2).sum()) / (1 - (p_k ** 2).sum())
        assert fleiss_kappa(counts) == pytest.approx(want, abs=1e-12)
    # Cao et al. (2014) report that voice-only ratings agree least
    assert alpha["voice"] < alpha["face"] and alpha["voice"] < alpha["audiovisual"]


def test_released_label_tasks_report_agreement_as_not_available(home):
    """Counts recovered from released distributions drop unanimous raters: no biased alpha."""
    from serbench.tasks import prepare

    task, _ = prepare("iemocap-9class", shared("chou-labels", "iemocap-9class"))
    ag = task.summary()["agreement"]
    assert ag["krippendorff_alpha"] is None and ag["fleiss_kappa"] is None
    assert "distributions" in ag["why"]
