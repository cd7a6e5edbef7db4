"""ssl-finetune training throughput: serbench's loop against a bare PyTorch loop.

In one run, for each encoder shape (``--shapes``: wav2vec2-base, and the
wav2vec2-large-robust shape trimmed to 12 layers, random weights) and each
training set (``--sets``: the demo's fold 1 AR training split, and
``--clips`` synthetic clips with IEMOCAP-like durations):

1. serbench: ``SslFinetune.fit`` (the public submission API, which runs
   ``serbench.methods.training.fit``: default bucketed batches, background collation,
   dev selection every epoch), in the fast determinism mode on a GPU;
2. bare: a plain PyTorch loop on the same model, clips, batch size and batches
   (the same ``serbench.methods.training.batches`` policy), collating on the training
   thread, with the same dev pass per epoch;
3. today: serbench with random batches in the deterministic mode, padded to
   the longest clip only (the policy serbench used before this change; on the
   IEMOCAP-like set only);
4. serbench in the deterministic mode (``--deterministic-too``; IEMOCAP-like set only).

Throughput is audio seconds trained per second over the epochs after the
first (the first carries model loading and warm-up: cuDNN builds a kernel plan
for every new input shape, which is why serbench pads to a multiple of
0.25 s on a GPU, and the bare loop does the same).  The rows run in the order
printed, serbench first, so it never profits from plans another row built.  ``prep`` is the time
spent collating (padding and normalising) batches; in serbench it runs on a
background thread on a GPU, off the critical path.

    python benchmarks/bench_training.py --device cuda [--shapes base,large12]
        [--sets demo,iemocap-like] [--clips 400] [--epochs 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synthetic import encoder_dir, iemocap_like


class _Timer:
    def __init__(self) -> None:
        self.prep = 0.0
        self.epochs: list[float] = []


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _spec(device: str, seed: int, classes: tuple[str, ...], timer: _Timer):
    from serbench.submission import FitSpec

    amp = None
    if device.startswith("cuda"):
        amp = "bfloat16" if torch.cuda.is_bf16_supported() else "float16"

    def report(step: int, total: int, message: str) -> None:
        _sync(device)
        timer.epochs.append(time.perf_counter())

    return FitSpec("bench", classes, 1, "AR", "distribution", seed, device, 0.05, amp_dtype=amp,
                   report=report)


def serbench_fit(enc: Path, train, dev, device: str, epochs: int, batching: str,
                 deterministic: bool, batch_size: int, classes, pad_seconds: float = 0.25
                 ) -> _Timer:
    from serbench.baselines.ssl_finetune import SslFinetune
    from serbench.determinism import seed_everything

    timer = _Timer()
    seed_everything(7, deterministic)
    sub = SslFinetune(model=str(enc), max_epochs=epochs, patience=epochs + 1,
                      batching=batching, batch_size=batch_size, pad_seconds=pad_seconds)
    collate = sub._collate

    def timed_collate(ids):
        t0 = time.perf_counter()
        out = collate(ids)
        timer.prep += time.perf_counter() - t0
        return out

    sub._collate = timed_collate  # type: ignore[method-assign]
    sub.fit(train, dev, _spec(device, 7, classes, timer))
    return timer


def bare_loop(enc: Path, train, dev, device: str, epochs: int, batching: str,
              batch_size: int, classes) -> _Timer:
    """The same model, batches and loss in a plain loop: collate, copy, forward, step."""
    from transformers import AutoModel

    from serbench import audio
    from serbench.baselines.ssl_finetune import FineTuneNet
    from serbench.determinism import seed_everything
    from serbench.methods import training
    from serbench.methods.losses import probabilities  # noqa: F401  (same package as the loss)

    timer = _Timer()
    seed_everything(7, False)
    spec = _spec(device, 7, classes, timer)
    waves = {u: audio.load(p, 16000, 12.0) for d in (train, dev)
             for u, p in zip(d.ids, d.audio_paths, strict=True)}
    allw = np.concatenate([waves[u] for u in train.ids])
    mu, sigma = float(allw.mean()), float(allw.std() + 1e-7)
    encoder = AutoModel.from_pretrained(str(enc))
    if len(encoder.encoder.layers) > 12:
        encoder.encoder.layers = encoder.encoder.layers[:12]
        encoder.config.num_hidden_layers = 12
    encoder.freeze_feature_encoder()
    model = FineTuneNet(encoder, len(classes), 1024, 0.5, "mean").to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    objective = training.SingleHead("cb_soft_ce", train, spec)
    rng = np.random.default_rng(7)
    y = objective.targets(train, rng)["y"]
    y_dev = objective.targets(dev, rng)["y"]
    lengths = np.array([len(waves[u]) / 16000 for u in train.ids])
    dev_len = np.array([len(waves[u]) / 16000 for u in dev.ids])
    dev_parts = training.eval_batches(len(dev), dev_len, None)
    multiple = 4000 if device.startswith("cuda") else 1  # serbench's default 0.25 s on a GPU
    amp = torch.autocast("cuda", dtype=getattr(torch, spec.amp_dtype or "float32"),
                         enabled=spec.amp_dtype is not None)

    def collate(ids):
        t0 = time.perf_counter()
        out = training.pad([(waves[u] - mu) / sigma for u in ids], multiple=multiple)
        timer.prep += time.perf_counter() - t0
        return out

    for _ in range(epochs):
        model.train()
        parts = training.batches(len(train), batch_size, rng, policy=batching, lengths=lengths)
        for idx in parts:
            if len(idx) < 2:
                continue
            x, lens = collate(train.ids[idx])
            with amp:
                out = model(x.to(device), lens.to(device))
            loss = objective.loss(out.float(), {"y": y[idx].to(device)})
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        model.eval()
        total = 0.0
        with torch.no_grad():
            for idx in dev_parts:
                x, lens = collate(dev.ids[idx])
                with amp:
                    out = model(x.to(device), lens.to(device))
                total += float(objective.loss(out.float(), {"y": y_dev[idx].to(device)}))
        spec.progress(0, 0, "")
    return timer


def _data(kind: str, clips: int) -> tuple[Any, Any, tuple[str, ...]]:
    from serbench.submission import Data

    if kind == "demo":
        from serbench import plugins
        from serbench.runner import Runner
        from serbench.tasks import load_task

        task = load_task("demo")
        runner = Runner(task, plugins.resolve("ssl-finetune"), runs=tempfile.mkdtemp(),
                        device="cpu")
        train, _ = runner._data(1, "train", "AR", with_targets=True)
        dev, _ = runner._data(1, "dev", "AR", with_targets=True)
        return train, dev, task.spec.classes
    ids, paths, _ = iemocap_like(clips)
    rng = np.random.default_rng(1)
    targets = rng.dirichlet(np.ones(4), len(ids))
    n_dev = len(ids) // 5
    make = lambda s: Data(ids[s], paths[s], targets[s], targets[s].argmax(1))  # noqa: E731
    return make(slice(n_dev, None)), make(slice(0, n_dev)), ("A", "H", "N", "S")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--shapes", default="base,large12")
    ap.add_argument("--sets", default="demo,iemocap-like")
    ap.add_argument("--clips", type=int, default=400)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--again", action="store_true",
                    help="time serbench's default once more at the end (order effects)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--deterministic-too", action="store_true")
    args = ap.parse_args()
    os.environ.setdefault("SERBENCH_HOME", tempfile.mkdtemp(prefix="serbench-bench-"))
    from serbench import audio

    dev_name = (torch.cuda.get_device_name() if args.device.startswith("cuda")
                else f"cpu, {torch.get_num_threads()} threads")
    sets = {k: _data(k, args.clips) for k in args.sets.split(",")}
    for shape in args.shapes.split(","):
        enc = encoder_dir("large12" if shape == "large12" else shape)
        for name, (train, dev, classes) in sets.items():
            secs = sum(min(audio.duration(p), 12.0) for p in train.audio_paths)
            print(f"\n== {shape} on {name}: {len(train)} training clips, {secs:.0f} s of audio "
                  f"per epoch, {len(dev)} dev clips; batch {args.batch_size}, {args.epochs} "
                  f"epochs; {dev_name}", flush=True)
            common = (enc, train, dev, args.device, args.epochs)
            rows = [("serbench (bucketed, fast)", partial(
                        serbench_fit, *common, "bucketed", False, args.batch_size, classes)),
                    ("bare loop (bucketed)", partial(
                        bare_loop, *common, "bucketed", args.batch_size, classes))]
            if name != "demo":
                rows.append(("today: random, deterministic", partial(
                    serbench_fit, *common, "random", True, args.batch_size, classes, 0.0)))
                if args.deterministic_too:
                    rows.append(("serbench (bucketed, deterministic)", partial(
                        serbench_fit, *common, "bucketed", True, args.batch_size, classes)))
            if args.again:
                rows.append(("serbench (bucketed, fast) again", rows[0][1]))
            speed = {}
            for label, fn in rows:
                timer = fn()
                steady = timer.epochs[-1] - timer.epochs[0]
                n = len(timer.epochs) - 1
                speed[label] = secs * n / steady
                print(f"{label:36s} {steady / n:7.2f} s per epoch  {speed[label]:7.1f} audio-s/s"
                      f"  prep {timer.prep / len(timer.epochs):.2f} s per epoch "
                      f"({100 * timer.prep / len(timer.epochs) / (steady / n):.0f} % of an epoch)",
                      flush=True)
                if args.device.startswith("cuda"):
                    torch.cuda.empty_cache()
            s = speed["serbench (bucketed, fast)"]
            print(f"serbench / bare (same batching): {s / speed['bare loop (bucketed)']:.2f}"
                  "  (target >= 0.9)")
            if "today: random, deterministic" in speed:
                print(f"serbench default / today's policy: "
                      f"{s / speed['today: random, deterministic']:.2f}  (target >= 2)")
            if "serbench (bucketed, deterministic)" in speed:
                print(f"deterministic mode costs: "
                      f"{s / speed['serbench (bucketed, deterministic)']:.2f}x")


if __name__ == "__main__":
    main()
