"""Rater fusion ("Every Rating Matters", ICASSP-2019): individual rater models late-fused
with consensus models.

Sourced (docs/methods.md#c.1): individual annotator models trained on each rater's
labels, late-fused with models trained on aggregated hard and soft labels;
61.48% UAR on IEMOCAP against 57.45% (CrowdH) and 57.12% (CrowdS).  The rest is
a reconstruction (docs/methods.md#c.2, [INFERRED]), every choice behind a flag:

* **Kept raters**: at least ``min_ratings`` in-set answers on the training clips,
  most prolific first, at most ``max_raters``.  Clips none of them rated still
  train the consensus heads; the record's ``coverage`` counts them.
* **Shared encoder, one head per model** (default, ``separate=False``): the
  BLSTM encoder of ``blstm-fc`` with a hard consensus head H (CE on the
  consensus class; clips without one, tied under AR, are masked), a soft head S
  (soft CE on the smoothed vote distribution) and one head per kept rater (CE on
  that rater's answer, masked where the rater did not rate the clip).  Loss
  ``L_H + L_S + rater_weight * mean over observed answers of L_r`` (the mean,
  not the sum, is serbench's choice: it keeps the three terms on one scale).
  ``separate=True`` trains H, S and every rater as separate BLSTM-FC models.
* **Late fusion** (``fusion``): ``learned`` (default: logistic regression on the
  dev posteriors' logs against dev consensus labels), ``loglinear`` or
  ``average`` of the members H, S and R, where R is the mean posterior of the
  rater models (``members="all"`` feeds every rater model separately); ``H``,
  ``S`` or ``R`` alone give the single members, for ablations.
* Tasks whose ratings are vote counts only (no rater ids) are refused with the
  name of the source file that has them.
* **Per-rater predictions** (``predict_rater_proba``, docs/methods.md#rater-eval):
  a kept rater gets the posterior of their own head (their own model with
  ``separate=True``); any other rater the fused clip prediction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from serbench.baselines.blstm_fc import BlstmFc, BlstmNet, head
from serbench.methods import fusion, training
from serbench.methods.losses import masked_ce, soft_ce
from serbench.methods.raters import RaterAnswers, keep_raters, rater_answers
from serbench.params import check_range
from serbench.submission import Data, FitSpec

FUSIONS = ("learned", "loglinear", "average", "H", "S", "R")


class MultiHeadBlstm(BlstmNet):
    """BLSTM encoder with H, S and per-rater heads; output [B, 2 + M, K]."""

    def __init__(self, dim: int, k: int, n_raters: int, hidden: int, layers: int, fc: int,
                 dropout: float, pooling: str) -> None:
        super().__init__(dim, k, hidden, layers, fc, dropout, pooling)  # self.head is H
        width = (4 if pooling == "meanstd" else 2) * hidden  # the pooled state, as in BlstmNet
        self.soft = head(width, fc, dropout, k)
        self.raters = head(width, fc, dropout, n_raters * k)
        self.k, self.m = k, n_raters

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        z = self.encode(x, lengths)
        raters = self.raters(z).view(-1, self.m, self.k)
        return torch.cat([self.head(z)[:, None], self.soft(z)[:, None], raters], dim=1)


class JointObjective(training.RaterObjective):
    """``L_H + L_S + w * mean_{observed (i, r)} CE(rater head r, answer_ir)``."""

    def __init__(self, spec: FitSpec, raters: tuple[str, ...], rater_weight: float) -> None:
        super().__init__(spec, raters)
        self.rater_weight = rater_weight

    def loss(self, output: torch.Tensor, batch: training.Targets) -> torch.Tensor:
        output = output.float()
        l_h = masked_ce(output[:, 0], batch["hard"])
        l_s = soft_ce(output[:, 1], batch["soft"])
        l_r = masked_ce(output[:, 2:], batch["raters"])
        return l_h + l_s + self.rater_weight * l_r


class RaterFusion(BlstmFc):
    """Per-rater models late-fused with hard and soft consensus models (BLSTM-FC backbone)."""

    name = "rater-fusion"
    version = "1.0"

    def __init__(self, min_ratings: int = 20, max_raters: int | None = 64,
                 separate: bool = False, fusion: str = "learned", members: str = "grouped",
                 rater_weight: float = 1.0, fusion_c: float = 1.0, **blstm: object) -> None:
        if "loss" in blstm or "penalty_alpha" in blstm:
            raise ValueError("rater-fusion sets its own losses (CE for H and raters, soft CE "
                             "for S); drop 'loss' / 'penalty_alpha'")
        super().__init__(**blstm)  # type: ignore[arg-type]
        if fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}")
        if members not in ("grouped", "all"):
            raise ValueError("members must be 'grouped' (H, S, mean of raters) or 'all'")
        check_range("min_ratings", min_ratings, low=1)
        check_range("max_raters", max_raters, low=1, none=True)
        check_range("rater_weight", rater_weight, low=0)
        check_range("fusion_c", fusion_c, low=0, open_low=True)
        self._config.update(min_ratings=min_ratings, max_raters=max_raters, separate=separate,
                            fusion=fusion, members=members, rater_weight=rater_weight,
                            fusion_c=fusion_c)

    # ------------------------------------------------------------------ training

    def _net(self, dim: int, k: int) -> BlstmNet:
        return self.net(dim, k)

    def fit(self, train: Data, dev: Data, spec: FitSpec) -> None:
        c = self.c
        raters, n = keep_raters(train.ratings, spec.classes, min_ratings=c["min_ratings"],
                                max_raters=c["max_raters"])
        dim = self.prepare_fit(train, spec)
        tr = rater_answers(train.ids, train.ratings, spec.classes, raters, n)
        dv = rater_answers(dev.ids, dev.ratings, spec.classes, raters)
        self.raters = raters
        self.coverage: dict[str, Any] = {"train": tr.coverage(), "dev": dv.coverage()}
        if c["separate"]:
            self._fit_separate(train, dev, spec, tr, dv)
        else:
            self.model = MultiHeadBlstm(self.input_dim(dim), spec.k, len(raters), c["hidden"],
                                        c["layers"], c["fc"], c["dropout"], c["pooling"])
            objective = JointObjective(spec, raters, c["rater_weight"])
            self.summary = training.fit(self.model, self.collate, train, dev, spec, self.cfg,
                                        objective)
        self.fuser = None
        if c["fusion"] == "learned":
            self.fuser = fusion.LearnedFusion(c["fusion_c"], spec.seed).fit(
                self._members(dev), dev.labels)

    def _fit_separate(self, train: Data, dev: Data, spec: FitSpec, tr: RaterAnswers,
                      dv: RaterAnswers) -> None:
        """H, S and one BLSTM-FC per kept rater, each selected on its own dev answers."""
        dim = len(self.mean)
        cfg = self.cfg
        self.models: list[tuple[BlstmNet, str]] = []
        hard = train.take(np.flatnonzero(train.labels >= 0))
        hard_dev = dev.take(np.flatnonzero(dev.labels >= 0))
        for data, dev_data, loss in ((hard, hard_dev, "ce"), (train, dev, "kl")):
            net = self._net(dim, spec.k)
            training.fit(net, self.collate, data, dev_data, spec,
                         training.TrainConfig(loss=loss, lr=cfg.lr, batch_size=cfg.batch_size,
                                              max_epochs=cfg.max_epochs, patience=cfg.patience))
            self.models.append((net, loss))
        eye = np.eye(spec.k)
        for r in range(len(tr.raters)):
            rows, rows_dev = np.flatnonzero(tr.answers[:, r] >= 0), np.flatnonzero(
                dv.answers[:, r] >= 0)
            if len(rows_dev) == 0:  # no dev answers: select on the consensus dev set
                sub_dev, rows_dev = dev, np.arange(len(dev))
                dev_labels = np.maximum(dev.labels, 0)
            else:
                sub_dev, dev_labels = dev, dv.answers[rows_dev, r]
            data = Data(train.ids[rows], train.audio_paths[rows], eye[tr.answers[rows, r]],
                        tr.answers[rows, r], train.features)
            dev_data = Data(sub_dev.ids[rows_dev], sub_dev.audio_paths[rows_dev],
                            eye[dev_labels], dev_labels, train.features)
            net = self._net(dim, spec.k)
            training.fit(net, self.collate, data, dev_data, spec,
                         training.TrainConfig(loss="ce", lr=cfg.lr, batch_size=cfg.batch_size,
                                              max_epochs=cfg.max_epochs, patience=cfg.patience))
            self.models.append((net, "ce"))

    # ------------------------------------------------------------------ prediction

    def _posteriors(self, data: Data) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """H [N, K], S [N, K] and the rater models [M, N, K]."""
        if self.c["separate"]:
            ps = [training.predict(net, self.collate, data, loss, self.spec)
                  for net, loss in self.models]
            return ps[0], ps[1], np.stack(ps[2:])
        out = training.outputs(self.model, self.collate, data, self.spec)
        p = torch.softmax(out, dim=-1).numpy().astype(np.float64)
        return p[:, 0], p[:, 1], p[:, 2:].transpose(1, 0, 2)

    def _members(self, data: Data) -> list[np.ndarray]:
        return self._select(*self._posteriors(data))

    def _select(self, h: np.ndarray, s: np.ndarray, r: np.ndarray) -> list[np.ndarray]:
        """The fusion members from H, S and the rater models."""
        choice = self.c["fusion"]
        if choice in ("H", "S", "R"):
            return [{"H": h, "S": s, "R": r.mean(axis=0)}[choice]]
        if self.c["members"] == "all":
            return [h, s, *r]
        return [h, s, r.mean(axis=0)]

    def _fused(self, members: list[np.ndarray]) -> np.ndarray:
        if self.fuser is not None:
            return self.fuser.predict_proba(members)
        if len(members) == 1:
            return members[0]
        return fusion.fuse(members, self.c["fusion"])

    def predict_proba(self, batch: Data) -> np.ndarray:
        return self._fused(self._members(batch))

    def predict_rater_proba(self, batch: Data, rater_ids: Sequence[str]) -> np.ndarray:
        """Each kept rater's own head; the fused clip prediction for every other rater."""
        h, s, r = self._posteriors(batch)
        fused = self._fused(self._select(h, s, r))
        head = {name: i for i, name in enumerate(self.raters)}
        out = np.repeat(fused[:, None, :], len(rater_ids), axis=1)
        own = [j for j, name in enumerate(rater_ids) if name in head]
        for j in own:
            out[:, j] = r[head[rater_ids[j]]]
        seen = self.coverage.setdefault("test", {"raters_asked": set(), "raters_with_head": set()})
        seen["raters_asked"].update(rater_ids)
        seen["raters_with_head"].update(rater_ids[j] for j in own)
        return out

    def rater_coverage(self) -> dict[str, Any] | None:
        cov = dict(getattr(self, "coverage", {}) or {})
        if "test" in cov:
            cov["test"] = {k: len(v) for k, v in cov["test"].items()}
        return cov or None
