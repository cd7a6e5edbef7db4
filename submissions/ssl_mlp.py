"""ssl-mlp: a frozen SSL encoder, a learnable weighted sum of its layers, the released head.

SUPERB-style: the encoder (wav2vec 2.0, HuBERT, WavLM, data2vec-audio; any hub
id or local folder ``transformers`` loads) runs once per corpus through the
feature cache; a softmax-weighted sum of all hidden layers is mean-pooled over
time and fed to the released head (docs/methods.md): [Dropout(0.5) ->
Linear(D, 1024) -> BatchNorm -> ReLU] x 2 -> Linear(1024, K).

Features: ``pooled`` (default) caches each layer's mean over the clip's own
frames, computed on the device during extraction (:class:`SSLPooled`, a few
hundred KB per clip at most); ``frames`` caches every frame
(:class:`SSLHiddenStates`) and pools when training.  Both give the same
vectors to float16 precision.  ``precision`` is the extraction forward's
(``float32``, ``bfloat16``, ``float16``).

Pooling: ``mean`` (default) averages the clip's own frames; ``unmasked_mean``
reproduces the released code, which averages over the padded batch length
(padding frames count as zeros, so a clip's vector shrinks with the longest
clip of its batch).  Both are linear in the frames, so each layer is pooled
once per clip and training touches [L, D] vectors only.  Those vectors are
put on the training device once per cell, so a batch is an index into them.

``penalty_alpha > 0`` adds the co-occurrence penalty of :mod:`serbench.methods.penalty`
(``penalty`` holds its other options, e.g. ``{"form": "kl_literal", "mode": "both"}``).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from serbench.features import SSLHiddenStates, SSLPooled
from serbench.methods import training
from serbench.methods.penalty import PenaltyConfig
from serbench.params import check_training
from serbench.submission import Data, FitSpec, Submission

# Per-layer pooled vectors shared by every cell of a run: (cache folder, utterance) ->
# ([L, D] mean over frames, number of frames).  Pooling is the only pass over the frames.
_POOLED: dict[tuple[str, str], tuple[np.ndarray, int]] = {}


def released_head(dim: int, k: int, hidden: int = 1024, layers: int = 2,
                  dropout: float = 0.5) -> nn.Sequential:
    blocks: list[nn.Module] = []
    for i in range(layers):
        blocks += [nn.Dropout(dropout), nn.Linear(dim if i == 0 else hidden, hidden),
                   nn.BatchNorm1d(hidden), nn.ReLU()]
    return nn.Sequential(*blocks, nn.Linear(hidden, k))


class LayerWeightedHead(nn.Module):
    def __init__(self, n_layers: int, dim: int, k: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.layer_logits = nn.Parameter(torch.zeros(n_layers))
        self.head = released_head(dim, k, hidden, 2, dropout)

    def forward(self, pooled: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        w = torch.softmax(self.layer_logits, dim=0)
        x = (pooled * w[None, :, None]).sum(1) * scale[:, None]
        return self.head(x)


class SslMlp(Submission):
    """Frozen encoder -> weighted layer sum -> mean pooling -> released 2x1024 head."""

    name = "ssl-mlp"
    version = "1.0"

    def __init__(self, model: str = "facebook/wav2vec2-base", pooling: str = "mean",
                 hidden: int = 1024, dropout: float = 0.5, loss: str = "cb_soft_ce",
                 lr: float = 1e-4, batch_size: int = 32, max_epochs: int = 30,
                 patience: int = 5, penalty_alpha: float = 0.0,
                 penalty: dict | None = None, features: str = "pooled",
                 precision: str = "float32") -> None:
        super().__init__(model=model, pooling=pooling, hidden=hidden, dropout=dropout, loss=loss,
                         lr=lr, batch_size=batch_size, max_epochs=max_epochs, patience=patience,
                         penalty_alpha=penalty_alpha, penalty=penalty, features=features,
                         precision=precision)
        if pooling not in ("mean", "unmasked_mean"):
            raise ValueError("pooling must be 'mean' or 'unmasked_mean'")
        if features not in ("pooled", "frames"):
            raise ValueError("features must be 'pooled' or 'frames'")
        check_training(sizes={"hidden": hidden, "batch_size": batch_size,
                              "max_epochs": max_epochs},
                       dropout=dropout, lr=lr, patience=patience, penalty_alpha=penalty_alpha)
        self.c = self._config
        self.cfg = training.TrainConfig(loss=loss, lr=lr, batch_size=batch_size,
                                        max_epochs=max_epochs, patience=patience,
                                        penalty=PenaltyConfig(alpha=penalty_alpha,
                                                              **(penalty or {})))
        self._pooled: dict[str, tuple[np.ndarray, int]] = {}

    def feature_spec(self) -> SSLHiddenStates:
        if self.c.get("features", "pooled") == "pooled":
            return SSLPooled(model=self.c["model"], stats=("mean",),
                             precision=self.c.get("precision", "float32"))
        return SSLHiddenStates(model=self.c["model"], precision=self.c.get("precision", "float32"))

    def _pool(self, store, ids) -> None:
        folder = str(getattr(store, "path", id(store)))
        pooled = self.c.get("features", "pooled") == "pooled"
        for u in ids:
            if u in self._pooled:
                continue
            key = (folder, str(u))
            if key not in _POOLED:
                h = store[u]  # pooled: [1, L, D] float16; frames: [L, T, D] float16
                if pooled:
                    _POOLED[key] = (h[0].astype(np.float32), store.length(u))
                else:
                    _POOLED[key] = (h.mean(axis=1, dtype=np.float32), h.shape[1])
            self._pooled[u] = _POOLED[key]

    def _table(self, ids: np.ndarray, device: torch.device) -> None:
        """Every clip's pooled vectors and frame count as one tensor on ``device``."""
        new = [u for u in dict.fromkeys(ids) if u not in self._rows]
        if not new:
            return
        start = len(self._rows)
        self._rows.update({u: start + i for i, u in enumerate(new)})
        vecs = torch.from_numpy(np.stack([self._pooled[u][0] for u in new])).to(device)
        frames = torch.tensor([self._pooled[u][1] for u in new], dtype=torch.float32,
                              device=device)
        self._vecs = vecs if self._vecs is None else torch.cat([self._vecs, vecs])
        self._frames = frames if self._frames is None else torch.cat([self._frames, frames])

    def _collate(self, ids: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        assert self._vecs is not None and self._frames is not None
        rows = training.index_on([self._rows[u] for u in ids], self._vecs.device)
        pooled = self._vecs.index_select(0, rows)
        if self.c["pooling"] == "unmasked_mean":
            frames = self._frames.index_select(0, rows)
            scale = frames / frames.max()
        else:
            scale = torch.ones(len(ids), device=pooled.device)
        return pooled, scale

    def _prepare(self, data: Data, device: str) -> None:
        self._pool(data.features, data.ids)
        self._table(data.ids, torch.device(device))

    def fit(self, train: Data, dev: Data, spec: FitSpec) -> None:
        torch.manual_seed(spec.seed)
        self._rows: dict[str, int] = {}
        self._vecs: torch.Tensor | None = None
        self._frames: torch.Tensor | None = None
        self._prepare(train, spec.device)
        self._prepare(dev, spec.device)
        n_layers, dim = next(iter(self._pooled.values()))[0].shape
        self.model = LayerWeightedHead(n_layers, dim, spec.k, self.c["hidden"], self.c["dropout"])
        self.spec = spec
        self.summary = training.fit(self.model, self._collate, train, dev, spec, self.cfg)

    def predict_proba(self, batch: Data) -> np.ndarray:
        self._prepare(batch, self.spec.device)
        return training.predict(self.model, self._collate, batch, self.cfg.loss, self.spec)

    def layer_weights(self) -> np.ndarray:
        return torch.softmax(self.model.layer_logits.detach(), 0).cpu().numpy()
