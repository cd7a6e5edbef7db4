"""The BLSTM-FC options that made it competitive on EmoDB: frame reduction, attention pooling,
random crops and input noise, on hand-computed and shape cases."""

import numpy as np
import pytest
import torch

from serbench.baselines.blstm_fc import BlstmFc, BlstmNet, mean_std, random_crops, reduce_frames

X = np.arange(10, dtype=np.float32).reshape(5, 2)  # frames [0,1], [2,3], [4,5], [6,7], [8,9]


def test_skip_keeps_every_step_th_frame():
    assert reduce_frames(X, 2, "skip").tolist() == [[0, 1], [4, 5], [8, 9]]
    assert reduce_frames(X, 1, "mean") is X


def test_mean_averages_blocks_and_the_short_last_block():
    # blocks {0,1}, {2,3}, {4}: ([0,1]+[2,3])/2 = [1,2]; ([4,5]+[6,7])/2 = [5,6]; [8,9]
    assert reduce_frames(X, 2, "mean").tolist() == [[1, 2], [5, 6], [8, 9]]
    assert reduce_frames(X, 8, "mean").tolist() == [[4, 5]]  # one block: the clip's mean


def test_stack_concatenates_blocks_and_zero_pads_the_last():
    assert reduce_frames(X, 2, "stack").tolist() == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 0, 0]]


def test_random_crops_are_contiguous_runs_of_each_sequence():
    t = 20
    x = torch.arange(3 * t, dtype=torch.float32).reshape(3, t, 1) + 1  # no zero inside a clip
    lengths = torch.tensor([20, 12, 5])
    out, keep = random_crops(x, lengths, 0.5, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    for i in range(3):
        n = int(keep[i])
        assert round(0.5 * int(lengths[i])) <= n <= int(lengths[i])
        row = out[i, :, 0]
        assert (row[n:] == 0).all()  # the rest is padding
        kept = row[:n]
        assert (kept[1:] - kept[:-1] == 1).all()  # consecutive frames
        assert kept[0] >= x[i, 0, 0] and kept[-1] <= x[i, int(lengths[i]) - 1, 0]  # inside


def test_crop_one_keeps_everything():
    x = torch.randn(2, 6, 3)
    lengths = torch.tensor([6, 4])
    out, keep = random_crops(x, lengths, 1.0)
    assert keep.tolist() == [6, 4]
    assert torch.equal(out[0], x[0]) and torch.equal(out[1, :4], x[1, :4])


@pytest.mark.parametrize("pooling", ["attention", "meanstd", "mean"])
def test_pooling_ignores_padding(pooling):
    torch.manual_seed(0)
    net = BlstmNet(3, 4, hidden=5, layers=1, fc=8, dropout=0.0, pooling=pooling).eval()
    clip = torch.randn(1, 7, 3)
    padded = torch.cat([clip, torch.randn(1, 4, 3)], dim=1)  # junk after the valid frames
    a = net(clip, torch.tensor([7]))
    b = net(padded, torch.tensor([7]))
    assert a.shape == (1, 4)
    assert torch.allclose(a, b, atol=1e-6)


def test_augmentation_is_training_only():
    torch.manual_seed(0)
    net = BlstmNet(3, 4, hidden=5, layers=1, fc=8, dropout=0.0, pooling="mean",
                   input_noise=0.5, crop=0.5)
    x, lengths = torch.randn(2, 9, 3), torch.tensor([9, 6])
    net.eval()
    assert torch.equal(net(x, lengths), net(x, lengths))  # no noise, no crop
    net.train()
    assert not torch.allclose(net(x, lengths), net(x, lengths))


def test_stacked_input_size_and_bad_options():
    sub = BlstmFc(frame_pool="stack", frame_step=4)
    assert sub.input_dim(25) == 100
    assert BlstmFc(frame_pool="mean", frame_step=4).input_dim(25) == 25
    for bad in ({"frame_pool": "max"}, {"crop": 0.0}, {"input_noise": -1.0},
                {"frame_step": 0}, {"pooling": "max"}):
        with pytest.raises(ValueError):
            BlstmFc(**bad)  # type: ignore[arg-type]


def test_mean_std_over_valid_frames_only():
    x = torch.tensor([[[1.0], [3.0], [100.0]], [[2.0], [2.0], [2.0]]])  # row 0: 2 valid frames
    out = mean_std(x, torch.tensor([2, 3]))
    # row 0: mean 2, std sqrt(((1-2)^2 + (3-2)^2) / 2) = 1; row 1: mean 2, std 0 (floored)
    assert torch.allclose(out, torch.tensor([[2.0, 1.0], [2.0, 1e-3]]), atol=1e-6)


def test_input_stats_reach_the_head():
    torch.manual_seed(0)
    net = BlstmNet(3, 4, hidden=5, layers=1, fc=8, dropout=0.0, pooling="meanstd",
                   input_stats=True).eval()
    assert net.head[0].in_features == 4 * 5 + 2 * 3
    x = torch.randn(2, 6, 3)
    lengths = torch.tensor([6, 4])
    z = torch.cat([net.encode(x, lengths), mean_std(x, lengths)], dim=-1)
    assert torch.allclose(net(x, lengths), net.head(z))


def test_centre_feeds_the_blstm_frames_minus_the_clip_mean():
    torch.manual_seed(0)
    net = BlstmNet(2, 3, hidden=4, layers=1, fc=8, dropout=0.0, pooling="mean",
                   input_stats=True, centre=True).eval()
    x = torch.tensor([[[1.0, 2.0], [3.0, 6.0], [9.0, 9.0]]])  # last frame is padding
    lengths = torch.tensor([2])
    centred = torch.tensor([[[-1.0, -2.0], [1.0, 2.0], [0.0, 0.0]]])  # clip mean [2, 4]
    z = torch.cat([net.encode(centred, lengths), mean_std(x, lengths)], dim=-1)
    assert torch.allclose(net(x, lengths), net.head(z), atol=1e-6)
    with pytest.raises(ValueError):
        BlstmFc(centre=True)


def test_ensemble_averages_member_logits_and_survives_a_checkpoint():
    from serbench.baselines.blstm_fc import Ensemble
    from serbench.submission import FitSpec

    torch.manual_seed(0)
    sub = BlstmFc(ensemble=2, hidden=4, fc=8)
    members = [sub.net(3, 4).eval() for _ in range(2)]
    x, lengths = torch.randn(2, 5, 3), torch.tensor([5, 3])
    sub.model = Ensemble(members).eval()
    expected = (members[0](x, lengths) + members[1](x, lengths)) / 2
    assert torch.allclose(sub.model(x, lengths), expected)
    sub.mean, sub.std, sub.temperatures = np.zeros(3, np.float32), np.ones(3, np.float32), \
        np.ones(1)
    spec = FitSpec(task="t", classes=("a", "b", "c", "d"), fold=1, train_rule="MR",
                   target_kind="hard", seed=0, device="cpu", smoothing=0.0)
    other = BlstmFc(ensemble=2, hidden=4, fc=8)
    other.restore(sub.checkpoint(), spec, features={})
    assert torch.allclose(other.model(x, lengths), expected)
    with pytest.raises(ValueError):
        BlstmFc(ensemble=0)
