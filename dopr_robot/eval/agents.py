"""What the rollout runner drives: a trained policy, or a scripted expert standing in for one.

An agent plans for a batch of environments at once: `plan({key: [B, To, ...]}, keys) ->
[B, T, A]`, the next T actions of each (executed in order before it is asked again: receding
horizon). `keys[b]` = (episode seed, chunk index) identifies the row: agents draw their noise
from it, so an episode plays out the same however episodes are batched (and a video re-render
of an evaluated episode is that episode).
"""

from __future__ import annotations

import numpy as np
import torch

from ..envs import expert_for
from ..policies import Policy
from ..policies.noise import seeded_generator


class PolicyAgent:
    """A trained policy; executes the first `execute` (default: all Ta) actions of each chunk.
    Each row's starting noise is drawn from a generator seeded by (seed, episode seed, chunk)."""

    def __init__(
        self, policy: Policy, execute: int | None = None, seed: int = 0, bf16: bool = False
    ):
        self.policy = policy.eval()
        # bf16 autocast of the policy's forward on CUDA; ignored on a CPU (same numbers there)
        self.bf16 = bf16 and next(policy.parameters()).device.type == "cuda"
        self.obs_horizon = policy.config.obs_horizon
        self.obs_keys = list(policy.config.obs_keys)
        action_horizon = policy.config.action_horizon
        self.execute = action_horizon if execute is None else int(execute)
        if not 1 <= self.execute <= action_horizon:
            raise ValueError(f"execute must be between 1 and Ta={action_horizon}, got {execute}")
        self.seed = seed
        self.noise_shape = (policy.config.pred_horizon, policy.action_dim)

    def plan(self, observations: dict[str, np.ndarray], keys: list[tuple[int, int]]) -> np.ndarray:
        obs = {k: torch.from_numpy(np.ascontiguousarray(observations[k])) for k in self.obs_keys}
        noise = torch.stack(
            [
                torch.randn(self.noise_shape, generator=seeded_generator(self.seed, *key))
                for key in keys
            ]
        )
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.bf16):
            chunk = self.policy.predict_action(obs, initial_noise=noise)
        chunk = chunk.float()
        return chunk[:, : self.execute].cpu().numpy()


class ExpertAgent:
    """An env's scripted expert as an agent: one action per observation, no history. Each
    episode (keyed by its seed) gets an expert of its own, since some experts keep a plan."""

    obs_horizon = 1

    def __init__(self, env_id: str, noise: float = 0.0, seed: int = 0, **env_kwargs):
        self.env_id, self.noise, self.seed, self.env_kwargs = env_id, noise, seed, env_kwargs
        self._expert(0)  # one sentence now if the env has no expert
        self.experts: dict[int, object] = {}

    def _expert(self, episode: int):
        seed = int(np.random.SeedSequence([self.seed, episode]).generate_state(1)[0])
        return expert_for(self.env_id, noise=self.noise, seed=seed, **self.env_kwargs)

    def plan(self, observations: dict[str, np.ndarray], keys: list[tuple[int, int]]) -> np.ndarray:
        # every running episode asks for its one action each step, so the experts of ended
        # episodes are dropped by keeping only the ones asked for now
        experts = {}
        actions = []
        for row, (episode, chunk) in enumerate(keys):
            expert = self.experts.get(episode) if chunk else None
            experts[episode] = expert if expert is not None else self._expert(episode)
            actions.append(experts[episode].act({"state": observations["state"][row, -1]}))
        self.experts = experts
        return np.stack(actions)[:, None]


class RandomAgent:
    """Uniform random actions in [-1, 1]: the floor every task's success should sit on."""

    obs_horizon = 1

    def __init__(self, action_dim: int, seed: int = 0):
        self.action_dim = action_dim
        self.seed = seed

    def plan(self, observations: dict[str, np.ndarray], keys: list[tuple[int, int]]) -> np.ndarray:
        rows = [
            np.random.default_rng([self.seed, *key]).uniform(-1, 1, (1, self.action_dim))
            for key in keys
        ]
        return np.stack(rows).astype(np.float32)
