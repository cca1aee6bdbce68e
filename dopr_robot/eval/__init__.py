"""Closed-loop evaluation: rollouts over vector envs, seed lists, success statistics.

(Issue 6 in progress: the horizon sweep with results.json, plots, videos and the `eval` and
`render` commands are not built yet.)
"""

from .agents import ExpertAgent, PolicyAgent, RandomAgent
from .rollout import Episode, run_episodes
from .seeds import episode_seeds
from .stats import area_under_curve, h50, wilson_interval

__all__ = [
    "Episode",
    "ExpertAgent",
    "PolicyAgent",
    "RandomAgent",
    "area_under_curve",
    "episode_seeds",
    "h50",
    "run_episodes",
    "wilson_interval",
]
