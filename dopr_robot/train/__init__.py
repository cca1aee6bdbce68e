"""Training: the loop, EMA, checkpoints, resume, DDP, metrics, the run directory's layout.

from dopr_robot.train import TrainConfig, train
from dopr_robot.policies import PolicyConfig
train(TrainConfig(data="demos.zarr", out="runs/x", optimizer="dopr-adamw"), PolicyConfig())
"""

from .checkpoint import load_policy
from .config import TrainConfig, load_toml
from .ema import EMA
from .run_dir import RunDir, latest_checkpoint
from .trainer import Trainer, TrainingDiverged, TrainResult, train

__all__ = [
    "EMA",
    "RunDir",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "TrainingDiverged",
    "latest_checkpoint",
    "load_policy",
    "load_toml",
    "train",
]
