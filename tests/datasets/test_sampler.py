"""Windows, padding, splits and loaders, against diffusion_policy's definitions."""

import numpy as np
import pytest
import torch

from dopr_robot.datasets import SequenceDataset, SequenceSampler, make_loader, split_episodes

from .conftest import make_store


def dp_window_count(lengths, tp, to, ta):
    """diffusion_policy's create_indices: windows from -pad_before to L - Tp + pad_after."""
    return sum(max(0, length - tp + (to - 1) + (ta - 1) + 1) for length in lengths)


@pytest.mark.parametrize("tp,to,ta", [(16, 2, 8), (4, 1, 1), (6, 3, 2), (7, 1, 7)])
def test_window_count_matches_diffusion_policy(tp, to, ta):
    lengths = [5, 7, 4, 30, 16]
    ends = np.cumsum(lengths)
    sampler = SequenceSampler(ends, tp, pad_before=to - 1, pad_after=ta - 1)
    assert len(sampler) == dp_window_count(lengths, tp, to, ta)


def dp_create_indices(episode_ends, sequence_length, pad_before, pad_after):
    """diffusion_policy's create_indices, restated from its definition: per episode, window
    offsets from -pad_before to L - Tp + pad_after, pads clamped to [0, Tp - 1]; each window as
    (buffer_start, buffer_end, sample_start, sample_end)."""
    pad_before = min(max(pad_before, 0), sequence_length - 1)
    pad_after = min(max(pad_after, 0), sequence_length - 1)
    rows, start = [], 0
    for end in episode_ends:
        length = end - start
        for offset in range(-pad_before, length - sequence_length + pad_after + 1):
            buffer_start = max(offset, 0) + start
            buffer_end = min(offset + sequence_length, length) + start
            sample_start = buffer_start - (offset + start)
            sample_end = sequence_length - ((offset + sequence_length + start) - buffer_end)
            rows.append((buffer_start, buffer_end, sample_start, sample_end))
        start = end
    return rows


@pytest.mark.parametrize(
    "tp,pad_before,pad_after", [(16, 1, 7), (8, 1, 7), (6, 9, 9), (4, 0, 0), (10, 3, 12)]
)
def test_short_episodes_are_padded_and_pads_clamped_as_diffusion_policy_does(
    tp, pad_before, pad_after
):
    """Episodes shorter than Tp (lengths 1, 3, 5 here) give the windows create_indices gives,
    with the same real rows in the same places; pads larger than Tp - 1 are clamped."""
    lengths = [5, 1, 3, 12, 2]
    ends = np.cumsum(lengths)
    reference = dp_create_indices(ends, tp, pad_before, pad_after)
    sampler = SequenceSampler(ends, tp, pad_before=pad_before, pad_after=pad_after)
    assert len(sampler) == len(reference)
    rows, pad = sampler.positions(np.arange(len(sampler)), tp)
    for window, (b_start, b_end, s_start, s_end) in enumerate(reference):
        np.testing.assert_array_equal(rows[window, s_start:s_end], np.arange(b_start, b_end))
        assert not pad[window, s_start:s_end].any()
        assert pad[window, :s_start].all() and pad[window, s_end:].all()
        assert (rows[window, :s_start] == b_start).all()  # first frame repeated
        assert (rows[window, s_end:] == b_end - 1).all()  # last frame repeated


def test_padding_repeats_first_and_last_frame(tmp_path):
    make_store(tmp_path / "d.zarr", lengths=(5, 7, 4))
    dataset = SequenceDataset(
        tmp_path / "d.zarr",
        ["state"],
        pred_horizon=4,
        obs_horizon=2,
        action_horizon=3,
        pad_mask=True,
    )
    assert len(dataset) == dp_window_count([5, 7, 4], 4, 2, 3)
    first = dataset[0]  # starts one step before episode 0: the first frame is repeated
    np.testing.assert_array_equal(first["action"][:, 0], [0, 0, 1, 2])
    np.testing.assert_array_equal(first["obs"]["state"][:, 0], [0, 0])
    assert first["action_is_pad"].tolist() == [True, False, False, False]
    assert first["obs"]["state"].shape == (2, 3) and first["action"].shape == (4, 2)
    per_episode = dp_window_count([5], 4, 2, 3)
    last = dataset[per_episode - 1]  # ends two steps after episode 0: the last frame repeats
    np.testing.assert_array_equal(last["action"][:, 0], [3, 4, 4, 4])
    assert last["action_is_pad"].tolist() == [False, False, True, True]
    episode2 = dataset[len(dataset) - 1]  # windows never cross into another episode
    np.testing.assert_array_equal(episode2["action"][:, 0], [2002, 2003, 2003, 2003])


def test_batched_indexing_equals_item_by_item(tmp_path):
    make_store(tmp_path / "d.zarr", lengths=(9, 12, 10))
    dataset = SequenceDataset(tmp_path / "d.zarr", ["state"], pred_horizon=8, action_horizon=4)
    indices = [0, 5, 17, len(dataset) - 1]
    batch = dataset[indices]
    for row, index in enumerate(indices):
        item = dataset[index]
        torch.testing.assert_close(batch["action"][row], item["action"])
        torch.testing.assert_close(batch["obs"]["state"][row], item["obs"]["state"])
    assert batch["action"].dtype == torch.float32


def test_split_is_by_episode_seeded_and_disjoint():
    train, val = split_episodes(10, 0.2, seed=3)
    assert len(val) == 2 and len(train) == 8 and not set(train) & set(val)
    assert np.array_equal(split_episodes(10, 0.2, seed=3)[1], val)
    assert not np.array_equal(split_episodes(10, 0.2, seed=4)[1], val)
    assert len(split_episodes(3, 0.01, seed=0)[1]) == 1  # at least one validation episode


def test_episode_subset_only_yields_its_windows(tmp_path):
    make_store(tmp_path / "d.zarr", lengths=(9, 12, 10))
    dataset = SequenceDataset(
        tmp_path / "d.zarr", ["state"], pred_horizon=8, action_horizon=4, episodes=[1]
    )
    actions = dataset[list(range(len(dataset)))]["action"]
    assert ((actions >= 1000) & (actions < 2000)).all()


@pytest.mark.parametrize("workers", [0, 2])
def test_loader_covers_every_window_once_per_epoch(tmp_path, workers):
    make_store(tmp_path / "d.zarr", lengths=(30, 41, 25))
    dataset = SequenceDataset(tmp_path / "d.zarr", ["state"], pred_horizon=8, action_horizon=4)
    loader = make_loader(dataset, 16, shuffle=True, drop_last=False, num_workers=workers, seed=1)
    seen = torch.cat(
        [batch["action"][:, 3, 0] * 1000 + batch["action"][:, 0, 0] for batch in loader]
    )
    expected = dataset[list(range(len(dataset)))]["action"]
    expected = expected[:, 3, 0] * 1000 + expected[:, 0, 0]
    assert sorted(seen.tolist()) == sorted(expected.tolist())
    again = torch.cat(
        [b["action"][:, 0, 0] for b in make_loader(dataset, 16, seed=1, drop_last=False)]
    )
    first = torch.cat(
        [b["action"][:, 0, 0] for b in make_loader(dataset, 16, seed=1, drop_last=False)]
    )
    assert torch.equal(again, first)  # same seed, same order
