"""openSMILE functionals + scikit-learn SVM / logistic regression: the classical reference.

What a ten-line classical system reaches on real speech, inside the harness
and under its rules (Eyben et al., 2016, "The Geneva Minimalistic Acoustic
Parameter Set (GeMAPS) for Voice Research and Affective Computing";
Schuller et al., 2016, "The INTERSPEECH 2016 Computational Paralinguistics
Challenge", ComParE_2016 functionals with a linear SVM):

* features: ``feature_set`` ``egemaps`` (88 eGeMAPSv02 functionals) or
  ``compare`` (6373 ComParE_2016 functionals), extracted once per corpus and
  cached (:mod:`serbench.features.functionals`);
* normalisation (:mod:`serbench.features.normalise`): ``global`` z-scores with
  the training clips' statistics, ``group`` z-scores each speaker (or session,
  ``group_column``) with its own clips' statistics, which is transductive on
  the test speaker and recorded as ``transductive: true`` in the config;
  ``none`` leaves the features raw;
* classifier ``svm_linear``, ``svm_rbf`` (``sklearn.svm.SVC``) or ``logreg``
  (``sklearn.linear_model.LogisticRegression``), classes balanced;
* soft targets (AR): each clip is repeated once per class it has votes for,
  with the vote share as its sample weight, so the weighted empirical risk is
  the expected risk under the vote distribution; one-hot targets (MR/PR) give
  one copy of weight 1;
* selection: every ``C`` of the grid (and ``gamma`` for the RBF kernel) is fitted
  on the training split and scored by UAR on the dev split's consensus labels;
  the best is refitted (on training clips only) with calibrated probabilities
  (Platt scaling, ``SVC(probability=True)``, for the SVMs; the logistic model's
  own).  The test split is never seen before prediction.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import recall_score
from sklearn.model_selection import StratifiedKFold
from sklearn.svm import SVC

from serbench.features import normalise as norm
from serbench.features.functionals import OpenSmileFunctionals, check_feature_set
from serbench.submission import Data, FitSpec, Submission

CLASSIFIERS = ("svm_linear", "svm_rbf", "logreg")
#: Default grids, chosen before any test score was seen (decades around sklearn's C = 1).
DEFAULT_C: dict[str, tuple[float, ...]] = {
    "svm_linear": (1e-4, 1e-3, 1e-2, 1e-1, 1.0),
    "svm_rbf": (0.1, 1.0, 10.0, 100.0),
    "logreg": (1e-4, 1e-3, 1e-2, 1e-1, 1.0),
}
DEFAULT_GAMMA = ("scale",)


def repeat_soft(x: np.ndarray, targets: np.ndarray, min_share: float = 0.0
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Rows repeated per class with a vote share above ``min_share``: (x, class, share, row).

    For a distribution target ``t_i`` the weighted loss sum_i sum_k t_ik l(x_i, k)
    is what a classifier trained on the repeated rows with weights ``t_ik``
    minimises, so hard-label learners take soft targets without change.
    """
    targets = np.asarray(targets, dtype=np.float64)
    rows, cls = np.nonzero(targets > min_share)
    return np.asarray(x)[rows], cls, targets[rows, cls], rows


def balanced_weights(y: np.ndarray, w: np.ndarray, k: int) -> np.ndarray:
    """Sample weights times ``W / (K_present * W_k)``: every class carries equal total weight.

    ``W_k`` is the weight mass of class k; this is scikit-learn's
    ``class_weight="balanced"`` computed on weight mass instead of row counts
    (which repetition would distort).
    """
    mass = np.bincount(y, weights=w, minlength=k)
    present = mass > 0
    scale = np.zeros(k)
    scale[present] = w.sum() / (present.sum() * mass[present])
    return w * scale[y]


def clip_folds(rows: np.ndarray, y: np.ndarray, seed: int, n_splits: int = 5
               ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Cross-fitting folds over repeated rows: clips stratified by their first voted class, every
    copy of a clip in its clip's fold (so no clip is calibrated on a model that saw it)."""
    clips, first = np.unique(rows, return_index=True)
    label = y[first]  # repeat_soft lists each clip's classes in order; any one stratifies
    counts = np.bincount(label)
    n_splits = max(2, min(n_splits, int(counts[counts > 0].min())))
    folds = StratifiedKFold(n_splits, shuffle=True, random_state=seed % 2**31)
    fold_of = np.empty(len(clips), dtype=int)
    for f, (_, test) in enumerate(folds.split(np.zeros(len(clips)), label)):
        fold_of[test] = f
    where = fold_of[np.searchsorted(clips, rows)]
    return [(np.flatnonzero(where != f), np.flatnonzero(where == f)) for f in range(n_splits)]


class OpenSmileSvm(Submission):
    """openSMILE functionals -> z-normalisation -> SVM or logistic regression."""

    name = "opensmile-svm"
    version = "1.0"

    def __init__(self, feature_set: str = "egemaps", normalisation: str = "global",
                 group_column: str = "speaker_id", classifier: str = "svm_linear",
                 c_grid: tuple[float, ...] | list[float] | None = None,
                 gamma_grid: tuple[Any, ...] | list[Any] | None = None,
                 calibration: str = "temperature", sample_rate: int = 16000) -> None:
        check_feature_set(feature_set)
        norm.check_normalisation(normalisation, group_column)
        if classifier not in CLASSIFIERS:
            raise ValueError(f"classifier must be one of {CLASSIFIERS}, got {classifier!r}")
        if calibration not in ("temperature", "sigmoid"):
            raise ValueError(f"calibration must be 'temperature' or 'sigmoid', got {calibration!r}")
        c_values = [float(c) for c in (c_grid or DEFAULT_C[classifier])]
        gammas = list(gamma_grid or DEFAULT_GAMMA) if classifier == "svm_rbf" else []
        super().__init__(feature_set=feature_set, normalisation=normalisation,
                         group_column=group_column, classifier=classifier,
                         c_grid=c_values, gamma_grid=gammas, calibration=calibration,
                         sample_rate=sample_rate,
                         transductive=normalisation == "group")

    def feature_spec(self) -> OpenSmileFunctionals:
        return OpenSmileFunctionals(self._config["feature_set"], self._config["sample_rate"])

    # ------------------------------------------------------------------ features

    def _raw(self, data: Data) -> np.ndarray:
        return np.concatenate([np.asarray(data.features[u], dtype=np.float64).reshape(1, -1)
                               for u in data.ids])

    def _inputs(self, data: Data, spec: FitSpec) -> np.ndarray:
        x = self._raw(data)
        how = self._config["normalisation"]
        if how == "global":
            return norm.zscore(x, *self.moments)
        if how == "group":
            column = self._config["group_column"]
            g = norm.group_of(data.groups, data.ids, column, task=f"task {spec.task}")
            new = [h for h in set(g) if h not in self.group_stats]
            self.group_stats.update(norm.group_moments(data.features, data.groups, column, new))
            out = np.empty_like(x, dtype=np.float32)
            for h in set(g):
                rows = g == h
                out[rows] = norm.zscore(x[rows], *self.group_stats[h])
            return out
        return x.astype(np.float32)

    # ------------------------------------------------------------------ model

    def _kernel(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """The SVM's kernel between rows of ``a`` and the training rows ``b`` (precomputed:
        one Gram matrix serves every C of the grid, the Platt folds and prediction)."""
        a, b = np.asarray(a, dtype=np.float32), np.asarray(b, dtype=np.float32)
        dot = (a @ b.T).astype(np.float64)
        if self._config["classifier"] == "svm_linear":
            return dot
        d = (np.sum(a.astype(np.float64) ** 2, axis=1)[:, None]
             + np.sum(b.astype(np.float64) ** 2, axis=1)[None, :] - 2.0 * dot)
        return np.exp(-self.gamma * np.maximum(d, 0.0))

    def _model(self, c: float, probability: bool, seed: int, rows: np.ndarray | None = None,
               y: np.ndarray | None = None) -> Any:
        """The classifier; with ``probability``, calibrated SVM scores.

        Calibration follows scikit-learn's recommended form
        (``CalibratedClassifierCV(SVC(), ensemble=False)``) with ``calibration``: ``temperature``
        (default: one temperature on the softmax of the decision values, Guo et al., 2017, so
        the arg max stays the SVM's own decision) or ``sigmoid`` (Platt, one-vs-rest).  The
        decision values come from 5-fold cross-fitting on the training rows, stratified by
        clip, the copies of one clip kept in one fold.
        """
        if self._config["classifier"] == "logreg":
            return LogisticRegression(C=c, max_iter=3000)
        svm = SVC(C=c, kernel="precomputed", decision_function_shape="ovr")
        if not probability:
            return svm
        assert rows is not None and y is not None
        return CalibratedClassifierCV(svm, method=self._config["calibration"],
                                      cv=clip_folds(rows, y, seed), ensemble=False)

    def _design(self, x: np.ndarray) -> np.ndarray:
        """What the model is fitted on / applied to: the kernel against the training rows."""
        if self._config["classifier"] == "logreg":
            return x
        return self._kernel(x, self.x_train)

    def _gamma(self, g: Any, x: np.ndarray) -> float:
        """``"scale"`` is scikit-learn's default, 1 / (D * var(X)) on the training rows."""
        return 1.0 / (x.shape[1] * float(x.var())) if g == "scale" else float(g)

    def fit(self, train: Data, dev: Data, spec: FitSpec) -> None:
        self.spec = spec
        self.group_stats: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        if self._config["normalisation"] == "global":
            self.moments = norm.moments(self._raw(train))
        x_train = self._inputs(train, spec)
        x, y, w, rows = repeat_soft(x_train, train.targets)
        w = balanced_weights(y, w, spec.k)
        self.x_train = x
        dev_x = self._inputs(dev, spec) if len(dev) else np.zeros((0, x.shape[1]))
        keep = dev.labels >= 0 if len(dev) else np.zeros(0, dtype=bool)
        grid = [(c, g) for g in (self._config["gamma_grid"] or [None])
                for c in self._config["c_grid"]]
        self.selection: list[dict[str, Any]] = []
        self._gram: dict[Any, np.ndarray] = {}
        best = grid[0]
        if keep.any() and len(grid) > 1:
            scores = []
            cache: dict[Any, tuple[np.ndarray, np.ndarray]] = {}
            for c, g in grid:
                if g not in cache:
                    self.gamma = self._gamma(g, x_train) if g is not None else 0.0
                    cache[g] = (self._design(x), self._design(dev_x[keep]))
                    self._gram[g] = cache[g][0]
                design, dev_design = cache[g]
                model = self._model(c, probability=False, seed=spec.seed)
                model.fit(design, y, sample_weight=w)
                pred = model.predict(dev_design)
                uar = float(recall_score(dev.labels[keep], pred, average="macro",
                                         labels=np.unique(dev.labels[keep]), zero_division=0))
                scores.append(uar)
                self.selection.append({"C": c, "gamma": g, "dev_uar": round(uar, 4)})
            best = grid[int(np.argmax(scores))]  # ties: the first, i.e. the smallest C
        self.chosen = {"C": best[0], "gamma": best[1]}
        self.gamma = self._gamma(best[1], x_train) if best[1] is not None else 0.0
        self.model = self._model(best[0], probability=True, seed=spec.seed, rows=rows, y=y)
        design = self._gram.get(best[1])
        self._gram = {}
        self.model.fit(self._design(x) if design is None else design, y, sample_weight=w)

    def predict_proba(self, batch: Data) -> np.ndarray:
        p = self.model.predict_proba(self._design(self._inputs(batch, self.spec)))
        out = np.zeros((len(batch), self.spec.k))
        out[:, self.model.classes_] = p  # a class absent from training gets probability 0
        return out / out.sum(axis=1, keepdims=True)
