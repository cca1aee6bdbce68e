"""Closed-loop evaluation: rollouts over vector envs, seed lists, statistics, the task-horizon
sweep with results.json, plots and videos, and validation loss beside success.

    from dopr_robot.eval import EvalConfig, evaluate
    results = evaluate(EvalConfig(checkpoint="runs/x", task_horizons=[1, 2, 4, 8]))
"""

from .agents import ExpertAgent, PolicyAgent, RandomAgent
from .config import EvalConfig
from .rollout import Episode, run_episodes
from .seeds import episode_seeds
from .stats import area_under_curve, h50, wilson_interval
from .sweep import evaluate

__all__ = [
    "Episode",
    "EvalConfig",
    "ExpertAgent",
    "PolicyAgent",
    "RandomAgent",
    "area_under_curve",
    "episode_seeds",
    "evaluate",
    "h50",
    "run_episodes",
    "wilson_interval",
]
