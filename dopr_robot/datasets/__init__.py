"""Demonstration data: zarr replay buffers, training windows, normalisation, converters
(robomimic HDF5, zarr format 2/3, LeRobot v3.0/v2.x datasets both ways).

from dopr_robot.datasets import ReplayBuffer, SequenceDataset, Normalizer, make_loader
"""

from .convert import convert_robomimic, convert_zarr
from .lerobot import convert_lerobot, is_lerobot_dataset, validate_lerobot
from .lerobot_export import LeRobotExport, write_lerobot
from .normalizer import Normalizer
from .replay_buffer import ReplayBuffer
from .sampler import SequenceDataset, SequenceSampler, make_loader, split_episodes
from .validate import validate_store

__all__ = [
    "LeRobotExport",
    "Normalizer",
    "ReplayBuffer",
    "SequenceDataset",
    "SequenceSampler",
    "convert_lerobot",
    "convert_robomimic",
    "convert_zarr",
    "is_lerobot_dataset",
    "make_loader",
    "split_episodes",
    "validate_lerobot",
    "validate_store",
    "write_lerobot",
]
