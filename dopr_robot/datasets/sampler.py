"""Training windows over episodes: `SequenceSampler`, `SequenceDataset`, episode splits.

A window is `pred_horizon` (Tp) consecutive steps of one episode. As in diffusion_policy's
`create_indices`, a window may start up to pad_before = To−1 steps before its episode and end up
to pad_after = Ta−1 steps after it (each pad clamped to Tp − 1); positions outside the episode
repeat its first/last frame. So an episode of length L gives max(0, L − Tp + pad_before +
pad_after + 1) windows — an episode shorter than Tp is padded, not refused, and one too short
for any window is skipped, exactly as diffusion_policy does.

Windows are gathered for a whole batch at once with numpy fancy indexing (positions clipped into
the episode, which is exactly first/last-frame padding), so feeding a policy costs one gather per
key per batch rather than one Python call per sample. Use `make_loader` for a DataLoader that
hands the dataset whole batches of indices (workers fork and share the in-memory arrays).
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler

from ..errors import DataError
from .replay_buffer import ReplayBuffer


def split_episodes(n_episodes: int, val_ratio: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, val) episode indices; a seeded shuffle, at least one of each when val_ratio > 0."""
    if not 0.0 <= val_ratio < 1.0:
        raise DataError(f"val_ratio must be in [0, 1), got {val_ratio}")
    order = np.random.default_rng(seed).permutation(n_episodes)
    n_val = 0 if val_ratio == 0 else min(max(1, round(n_episodes * val_ratio)), n_episodes - 1)
    if val_ratio > 0 and n_episodes < 2:
        raise DataError(f"a train/val split needs at least 2 episodes, the store has {n_episodes}")
    return np.sort(order[n_val:]), np.sort(order[:n_val])


class SequenceSampler:
    """Window index over selected episodes: where each window starts, in which episode."""

    def __init__(
        self,
        episode_ends: np.ndarray,
        sequence_length: int,
        pad_before: int = 0,
        pad_after: int = 0,
        episodes: np.ndarray | None = None,
    ) -> None:
        # diffusion_policy clamps each pad to Tp - 1: a window keeps at least one real step
        pad_before = min(max(pad_before, 0), sequence_length - 1)
        pad_after = min(max(pad_after, 0), sequence_length - 1)
        ends = np.asarray(episode_ends, dtype=np.int64)
        starts = np.concatenate([[0], ends[:-1]])
        chosen = np.arange(len(ends)) if episodes is None else np.asarray(episodes, dtype=np.int64)
        lengths = ends[chosen] - starts[chosen]
        counts = np.maximum(0, lengths - sequence_length + pad_before + pad_after + 1)
        self.sequence_length = sequence_length
        self.episode = np.repeat(chosen, counts)  # episode of each window
        self.episode_start = starts[self.episode]
        self.episode_end = ends[self.episode]
        # window start relative to the buffer (may lie before its episode by up to pad_before)
        first = np.repeat(np.cumsum(counts) - counts, counts)
        self.window_start = self.episode_start - pad_before + (np.arange(counts.sum()) - first)

    def __len__(self) -> int:
        return len(self.window_start)

    def positions(self, windows: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
        """Buffer rows [B, length] of the windows' first `length` steps, and a pad mask [B, length]
        (True where the step lies outside the episode and repeats its first/last frame)."""
        raw = self.window_start[windows, None] + np.arange(length)
        lo, hi = self.episode_start[windows, None], self.episode_end[windows, None] - 1
        return np.clip(raw, lo, hi), (raw < lo) | (raw > hi)


class SequenceDataset(Dataset):
    """Windows for a policy: `{"obs": {key: [To, ...]}, "action": [Tp, A]}` (+ `"action_is_pad"`).

    Indexing with an int gives one window; with a list/array of ints, a whole batch, gathered at
    once (what `make_loader` does). Low-dim arrays come as float32; uint8 images stay uint8 (the
    normalizer maps them). Data is loaded into RAM once.
    """

    def __init__(
        self,
        buffer: ReplayBuffer | str,
        obs_keys: list[str],
        action_key: str = "action",
        pred_horizon: int = 16,
        obs_horizon: int = 2,
        action_horizon: int = 8,
        episodes: np.ndarray | None = None,
        pad_mask: bool = False,
    ) -> None:
        buffer = buffer if isinstance(buffer, ReplayBuffer) else ReplayBuffer.open(buffer)
        buffer.check_keys([*obs_keys, action_key])
        for name, value in (
            ("pred", pred_horizon),
            ("obs", obs_horizon),
            ("action", action_horizon),
        ):
            if value < 1:
                raise DataError(f"{name}_horizon must be >= 1, got {value}")
        if pred_horizon < obs_horizon - 1 + action_horizon:
            raise DataError(
                f"pred_horizon {pred_horizon} is shorter than obs_horizon - 1 + action_horizon "
                f"= {obs_horizon - 1 + action_horizon}"
            )
        if buffer.n_episodes == 0:
            raise DataError(f"{buffer.path} holds no episodes")
        lengths = buffer.episode_lengths
        chosen = np.arange(len(lengths)) if episodes is None else np.asarray(episodes, int)
        if chosen.size == 0 or chosen.min() < 0 or chosen.max() >= len(lengths):
            raise DataError(
                f"episodes must be a non-empty list of indices below {len(lengths)}, "
                f"got {chosen.tolist()}"
            )
        self.obs_keys = list(obs_keys)
        self.action_key = action_key
        self.data = buffer.load(self.obs_keys + [action_key])
        for key, array in self.data.items():
            if array.dtype != np.uint8:
                self.data[key] = array.astype(np.float32, copy=False)
        self.obs_horizon, self.pred_horizon = obs_horizon, pred_horizon
        self.pad_mask = pad_mask
        self.sampler = SequenceSampler(
            buffer.episode_ends,
            pred_horizon,
            pad_before=obs_horizon - 1,
            pad_after=action_horizon - 1,
            episodes=chosen,
        )
        if len(self.sampler) == 0:
            raise DataError(
                f"no episode of {buffer.path} is long enough for one window of pred_horizon "
                f"{pred_horizon} (with {obs_horizon - 1} + {action_horizon - 1} steps of padding); "
                f"the longest has {int(lengths[chosen].max())} steps"
            )

    def __len__(self) -> int:
        return len(self.sampler)

    def __getitem__(self, index):
        single = np.ndim(index) == 0
        windows = np.atleast_1d(np.asarray(index, dtype=np.int64))
        rows, pad = self.sampler.positions(windows, self.pred_horizon)
        obs_rows = rows[:, : self.obs_horizon]
        batch = {
            "obs": {k: torch.from_numpy(self.data[k][obs_rows]) for k in self.obs_keys},
            "action": torch.from_numpy(self.data[self.action_key][rows]),
        }
        if self.pad_mask:
            batch["action_is_pad"] = torch.from_numpy(pad)
        if single:
            return _first(batch)
        return batch


def _first(batch):
    if isinstance(batch, dict):
        return {key: _first(value) for key, value in batch.items()}
    return batch[0]


def make_loader(
    dataset: SequenceDataset,
    batch_size: int,
    *,
    shuffle: bool = True,
    drop_last: bool = True,
    num_workers: int = 0,
    seed: int = 0,
) -> DataLoader:
    """A DataLoader whose workers gather whole batches (the dataset is indexed with index lists)."""
    generator = torch.Generator().manual_seed(seed)
    order = RandomSampler(dataset, generator=generator) if shuffle else SequentialSampler(dataset)
    return DataLoader(
        dataset,
        sampler=BatchSampler(order, batch_size, drop_last=drop_last),
        batch_size=None,  # the sampler yields index lists; the dataset returns whole batches
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
    )
