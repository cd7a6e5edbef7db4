"""Speaker-adversarial BLSTM (gradient reversal, Ganin & Lempitsky 2015) as an experiment."""
import numpy as np, torch
from torch import nn
from serbench.baselines import blstm_fc as B
from serbench.methods import training
from serbench.features import normalise as norm

class Reverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, lam):
        ctx.lam = lam; return x.view_as(x)
    @staticmethod
    def backward(ctx, g):
        return -ctx.lam * g, None

class AdvNet(B.BlstmNet):
    def __init__(self, *a, n_groups=0, lam=0.0, **kw):
        super().__init__(*a, **kw)
        fc = self.head[0].out_features
        self.spk = nn.Sequential(nn.Linear(fc, fc), nn.ReLU(), nn.Linear(fc, n_groups))
        self.lam = lam
    def forward(self, x, lengths, mix=None):
        stats = B.mean_std(x, lengths) if False else None
        if self.training:
            x, lengths = self.augment(x, lengths)
        stats = B.mean_std(x, lengths)
        if self.centre:
            valid = torch.arange(x.shape[1])[None, :] < lengths[:, None]
            x = (x - stats[:, None, :x.shape[2]]) * valid[..., None].to(x.dtype)
        h = torch.cat([self.encode(x, lengths, augment=False), stats], dim=-1)
        z = self.head[1](self.head[0](h))
        out = self.head[3](self.head[2](z))
        if not self.training:
            return out
        return torch.cat([out, self.spk(Reverse.apply(z, self.lam))], dim=1)

class AdvObjective(training.SingleHead):
    def __init__(self, loss, train, spec, penalty, groups, k):
        super().__init__(loss, train, spec, penalty); self.groups = groups; self.k = k
    def targets(self, data, rng):
        t = super().targets(data, rng)
        t["g"] = torch.as_tensor([self.groups.get(u, -1) for u in data.ids], dtype=torch.long)
        return t
    def loss(self, output, batch):
        base = super().loss(output[:, :self.k], batch)
        if output.shape[1] == self.k:
            return base
        return base + nn.functional.cross_entropy(output[:, self.k:], batch["g"])

class AdvBlstm(B.BlstmFc):
    def __init__(self, adversary=0.5, **kw):
        super().__init__(**kw); self.adv = adversary
    def fit(self, train, dev, spec):
        dim = self.prepare_fit(train, spec)
        g = norm.group_of(train.groups, train.ids, "speaker_id")
        names = sorted(set(g)); gi = {u: names.index(h) for u, h in zip(train.ids, g)}
        c = self.c
        obj = AdvObjective(self.cfg.loss, train, spec, self.cfg.penalty, gi, spec.k)
        members = []
        for i in range(c["ensemble"]):
            ms = B.replace(spec, seed=spec.seed + B.ENSEMBLE_SEED_STEP * i); torch.manual_seed(ms.seed)
            net = AdvNet(self.input_dim(dim), spec.k, c["hidden"], c["layers"], c["fc"], c["dropout"],
                         c["pooling"], input_stats=True, centre=c["centre"], n_groups=len(names), lam=self.adv)
            training.fit(net, self.collate, train, dev, ms, self.cfg, objective=obj)
            members.append(net)
        self.model = members[0] if len(members) == 1 else B.Ensemble(members)
        self.summary = {}
        self.temperatures = np.ones(1)
