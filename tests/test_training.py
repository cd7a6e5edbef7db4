"""The training loop: batching policies, the batch cap, OOM handling, the determinism mode."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from serbench import plugins
from serbench.errors import InputError
from serbench.methods import training
from serbench.records import find_records
from serbench.runner import Runner
from serbench.submission import Data, FitSpec
from serbench.tasks import load_task


def test_random_batches_are_one_seeded_permutation():
    got = training.batches(10, 4, np.random.default_rng(3))
    perm = np.random.default_rng(3).permutation(10)  # what serbench always drew
    assert [b.tolist() for b in got] == [perm[:4].tolist(), perm[4:8].tolist(), perm[8:].tolist()]


def test_bucketed_batches_group_similar_lengths_and_cover_every_clip_once():
    lengths = np.arange(1.0, 101.0)  # 1 .. 100 s
    rng = np.random.default_rng(0)
    epochs = [training.batches(100, 10, rng, policy="bucketed", lengths=lengths) for _ in range(2)]
    for parts in epochs:
        assert sorted(np.concatenate(parts).tolist()) == list(range(100))
        assert all(len(p) <= 10 for p in parts)
        padded = sum(lengths[p].max() * len(p) for p in parts)
        # Sorted batches of 10 pad 10 * (10 + 20 + ... + 100) = 5500 s for 5050 s (1.09x);
        # random ones about 1.8x (the expected maximum of 10 of 1..100 is 91.8).
        assert padded < 1.2 * lengths.sum()
    assert [p.tolist() for p in epochs[0]] != [p.tolist() for p in epochs[1]]  # reshuffled
    again = np.random.default_rng(0)
    assert [p.tolist() for p in training.batches(100, 10, again, policy="bucketed",
                                                 lengths=lengths)] == [p.tolist()
                                                                       for p in epochs[0]]


def test_the_cap_bounds_padded_seconds_and_names_a_clip_too_long():
    lengths = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0])
    parts = training.batches(8, 8, np.random.default_rng(1), policy="bucketed",
                             lengths=lengths, cap=12.0)
    assert sorted(np.concatenate(parts).tolist()) == list(range(8))
    assert all(lengths[p].max() * len(p) <= 12.0 for p in parts)
    ids = np.array([f"clip{i}" for i in range(8)])
    with pytest.raises(InputError, match=r"clip clip7 is 8\.00 long.*batch_seconds=7"):
        training.batches(8, 8, np.random.default_rng(1), policy="bucketed", lengths=lengths,
                         cap=7.0, ids=ids)


class _Exploding(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Linear(2, 3)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")


def test_out_of_memory_fails_with_a_hint_not_a_user_error():
    n = 8
    targets = np.full((n, 3), 1 / 3)
    data = Data(ids=np.array([f"u{i}" for i in range(n)]), audio_paths=np.array([""] * n),
                targets=targets, labels=np.zeros(n, dtype=int))
    spec = FitSpec("t", ("a", "b", "c"), 1, "AR", "distribution", 0, "cpu", 0.05)

    def collate(ids: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.zeros(len(ids), 2), torch.ones(len(ids))

    with pytest.raises(training.OutOfMemory, match=r"smaller batch_size.*batch_seconds") as err:
        training.fit(_Exploding(), collate, data, data, spec,
                     training.TrainConfig(max_epochs=1, batch_size=4))
    assert not isinstance(err.value, InputError)  # a RuntimeError: the runner fails the cell only


@pytest.fixture(scope="module")
def encoder(tmp_path_factory) -> Path:
    """A tiny wav2vec 2.0 with a real encoder's 50 frames per second (fast on a CPU)."""
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    torch.manual_seed(0)
    config = Wav2Vec2Config(
        hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
        conv_dim=(16, 16, 16), conv_stride=(10, 8, 4), conv_kernel=(10, 8, 4),
        num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=2, feat_extract_norm="layer",
        do_stable_layer_norm=True)
    folder = tmp_path_factory.mktemp("enc") / "tiny-w2v2-50fps"
    Wav2Vec2Model(config).save_pretrained(folder)
    return folder


def test_deterministic_mode_reproduces_a_cell_exactly(home, encoder: Path, tmp_path: Path):
    demo = load_task("demo")
    config = {"model": str(encoder), "hidden": 16, "max_epochs": 2, "batch_size": 16,
              "max_seconds": 1.5}
    preds = []
    for name in ("a", "b"):
        runner = Runner(demo, plugins.resolve("ssl-finetune"), config, runs=tmp_path / name,
                        device="cpu", deterministic=True)
        (key,) = runner.cells([2], ["AR"], [0])
        assert runner.run_cell(key).status == "done"
        (record,), _ = find_records(tmp_path / name)
        assert record.data["deterministic"] is True
        assert record.data["config"]["batching"] == "bucketed"
        preds.append(pd.read_parquet(record.predictions_path))
    pd.testing.assert_frame_equal(preds[0], preds[1], check_exact=True)


@pytest.mark.parametrize("mode", [(True, True), (True, False), (False, False)])
def test_preloading_before_forking_leaves_the_determinism_setting_alone(mode):
    from serbench.determinism import preload

    before = (torch.are_deterministic_algorithms_enabled(),
              torch.is_deterministic_algorithms_warn_only_enabled())
    try:
        torch.use_deterministic_algorithms(mode[0], warn_only=mode[1])
        preload()
        assert (torch.are_deterministic_algorithms_enabled(),
                torch.is_deterministic_algorithms_warn_only_enabled()) == mode
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])


def test_the_cli_starts_without_torch():
    """Usage mistakes and --help answer in well under a second: torch loads with the first
    cell, not with the command line (every subprocess used to pay 2-3 s for it)."""
    import subprocess
    import sys

    code = "import sys, serbench.cli; print('torch' in sys.modules)"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert res.stdout.strip() == "False"


def test_the_fast_mode_turns_deterministic_kernels_off_after_the_deterministic_one():
    from serbench.determinism import seed_everything

    before = (torch.are_deterministic_algorithms_enabled(),
              torch.is_deterministic_algorithms_warn_only_enabled())
    try:
        seed_everything(1, deterministic=True)
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.backends.cudnn.deterministic
        seed_everything(1, deterministic=False)
        assert not torch.are_deterministic_algorithms_enabled()
        assert not torch.backends.cudnn.deterministic
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])
