"""Feature-cache extraction and ssl-mlp grid cost, on a real-size encoder with random weights.

In one run, on the demo corpus (clips of 1.1-3.6 s):

1. harness: ``build_store`` (decode + resample + length-bucketed batches +
   forward + write the memory-mapped cache);
2. bare: a plain ``transformers`` forward loop over the same, pre-decoded clips
   in the same batches (the physical limit of the machine);
3. naive: the same forward with fixed-size batches in corpus order, padded to
   the longest clip of each batch (no length bucketing);
4. grid: ``ssl-mlp`` on every fold x rule (5 x 3 cells) from the cache.

Prints throughputs and the ratios harness / bare (target >= 0.9), harness /
naive (target >= 1.3) and grid / one extraction pass (target <= 1.3).

    python benchmarks/bench_extraction.py [--clips 360] [--config base] [--device cuda]

On a GPU (``--device cuda``) all three run the float32 forward on the GPU
and copy float16 states back to the host, as the harness does.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def encoder_dir(kind: str) -> Path:
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    folder = Path(tempfile.mkdtemp()) / f"wav2vec2-{kind}-random"
    torch.manual_seed(0)
    cfg = Wav2Vec2Config() if kind == "base" else Wav2Vec2Config(
        hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024)
    Wav2Vec2Model(cfg).save_pretrained(folder)
    return folder


def forward(model, waves: list[np.ndarray], device: str = "cpu") -> torch.Tensor:
    x = torch.zeros(len(waves), max(len(w) for w in waves))
    for i, w in enumerate(waves):
        x[i, : len(w)] = torch.from_numpy((w - w.mean()) / (w.std() + 1e-7))
    with torch.inference_mode():
        out = model(x.to(device), output_hidden_states=True)
        states = torch.stack(out.hidden_states, 1).to(torch.float16).cpu()
    return states


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", type=int, default=360)
    ap.add_argument("--config", choices=["base", "small"], default="base")
    ap.add_argument("--batch-seconds", type=float, default=64.0)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    dev = args.device
    os.environ.setdefault("SERBENCH_HOME", tempfile.mkdtemp(prefix="serbench-bench-"))
    from transformers import AutoModel

    from serbench import audio, plugins
    from serbench.features import SSLHiddenStates, build_store
    from serbench.features.cache import length_buckets, store_dir
    from serbench.runner import Runner
    from serbench.tasks import load_task

    torch.set_num_threads(os.cpu_count() or 1)
    task = load_task("demo")
    meta = task.meta.iloc[: args.clips]
    ids = meta.index.to_numpy()
    paths = meta["audio_path"].to_numpy()
    durs = meta["duration"].astype(float).to_numpy()
    seconds = float(durs.sum())
    enc = encoder_dir(args.config)
    spec = SSLHiddenStates(model=str(enc), batch_seconds=args.batch_seconds)
    shutil.rmtree(store_dir(paths, spec), ignore_errors=True)
    model = AutoModel.from_pretrained(enc).eval().to(dev)
    batches = length_buckets(durs, args.batch_seconds)
    mean_batch = len(ids) / len(batches)
    waves = [audio.load(p) for p in paths]
    forward(model, waves[:2], dev)  # warm-up

    t0 = time.perf_counter()
    build_store(ids, paths, durs, spec, device=dev)
    t_harness = time.perf_counter() - t0

    t0 = time.perf_counter()
    for b in batches:
        forward(model, [waves[i] for i in b], dev)
    t_bare = time.perf_counter() - t0

    naive_size = max(1, round(mean_batch))
    t0 = time.perf_counter()
    for start in range(0, len(waves), naive_size):
        forward(model, waves[start:start + naive_size], dev)
    t_naive = time.perf_counter() - t0
    padded = sum(max(durs[start:start + naive_size]) * len(durs[start:start + naive_size])
                 for start in range(0, len(durs), naive_size))

    print(f"encoder: wav2vec2-{args.config} configuration, random weights; {len(ids)} clips, "
          f"{seconds:.0f} s of audio; {len(batches)} length-bucketed batches (mean "
          f"{mean_batch:.1f} clips), naive batches of {naive_size} ({padded / seconds:.2f}x "
          f"padded audio); device {dev}, {torch.get_num_threads()} threads")
    for name, t in (("harness (cache build)", t_harness), ("bare forward loop", t_bare),
                    ("naive padded batches", t_naive)):
        print(f"{name:24s} {t:7.1f} s  {seconds / t:6.1f} s of audio per s")
    print(f"harness / bare  throughput: {t_bare / t_harness:.2f}  (target >= 0.9)")
    print(f"harness / naive throughput: {t_naive / t_harness:.2f}  (target >= 1.3)")

    if args.clips >= len(task.meta):
        runner = Runner(task, plugins.resolve("ssl-mlp"), {"model": str(enc)},
                        runs=tempfile.mkdtemp(), device=dev)
        t0 = time.perf_counter()
        runner.prepare_features()  # cached: a lookup
        cells = [runner.run_cell(k) for k in runner.cells(None, None, [0])]
        t_grid = time.perf_counter() - t0
        assert all(c.status == "done" for c in cells), [c.message for c in cells]
        print(f"ssl-mlp grid ({len(cells)} cells) {t_grid:7.1f} s = "
              f"{t_grid / t_harness:.2f} x one extraction pass  (target <= 1.3)")


if __name__ == "__main__":
    main()
