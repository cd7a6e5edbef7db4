"""Quick BLSTM experiments on EmoDB: python exp.py 'JSON config' folds seeds [submission path]."""
import json, sys, time, os
import numpy as np, torch
torch.set_num_threads(1)
from sklearn.metrics import balanced_accuracy_score as bas
from serbench.grid import load_task
from serbench.runner import Runner
from serbench.submission import FitSpec
from serbench.determinism import cell_seed, seed_everything
from serbench.baselines.blstm_fc import BlstmFc

cfg = json.loads(sys.argv[1]); folds = [int(f) for f in sys.argv[2].split(",")]
seeds = [int(s) for s in sys.argv[3].split(",")]
task = load_task("emodb")
base = {"feature": "egemaps", "normalisation": "global", "pooling": "meanstd", "layers": 1, "hidden": 16, "centre": True, "input_stats": True, "frame_pool": "stack",
        "frame_step": 4, "max_epochs": 30, "patience": 6, "weight_decay": 0.001}
base.update(cfg)
r = Runner(task, BlstmFc, base, runs=".", device="cpu")
r.prepare_features()
devs, tests, eps = [], [], []
t0 = time.time()
for seed in seeds:
    for f in folds:
        tr, _ = r.data(f, "train", "MR"); dv, _ = r.data(f, "dev", "MR"); te, _ = r.data(f, "test", "MR")
        s = cell_seed(seed, f, "MR"); seed_everything(s, True)
        spec = FitSpec(task="emodb", classes=task.spec.classes, fold=f, train_rule="MR",
                       target_kind="hard", seed=s, device="cpu", smoothing=task.spec.smoothing)
        m = BlstmFc(**base); m.fit(tr, dv, spec)
        d = bas(dv.labels, m.predict_proba(dv).argmax(1)); t = bas(te.labels, m.predict_proba(te).argmax(1))
        devs.append(d); tests.append(t); eps.append(m.summary.get("best_epoch", 0))
print(json.dumps(cfg), f"folds={sys.argv[2]} seeds={sys.argv[3]}",
      f"dev={np.mean(devs):.3f} test={np.mean(tests):.3f} ep={np.mean(eps):.1f} "
      f"t={time.time()-t0:.0f}s", "per-fold test", " ".join(f"{x:.2f}" for x in tests), flush=True)
