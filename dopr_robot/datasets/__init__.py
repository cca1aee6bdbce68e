"""Demonstration data: zarr replay buffers, training windows, normalisation, converters.

from dopr_robot.datasets import ReplayBuffer, SequenceDataset, Normalizer, make_loader
"""

from .convert import convert_robomimic, convert_zarr
from .normalizer import Normalizer
from .replay_buffer import ReplayBuffer
from .sampler import SequenceDataset, SequenceSampler, make_loader, split_episodes
from .validate import validate_store

__all__ = [
    "Normalizer",
    "ReplayBuffer",
    "SequenceDataset",
    "SequenceSampler",
    "convert_robomimic",
    "convert_zarr",
    "make_loader",
    "validate_store",
    "split_episodes",
]
