"""What every scripted expert shares: a seeded action-noise source and clipping to the bounds.

An expert maps one observation dict to one action in [-1, 1]^A using only what the observation
holds (`state`), so it can stand in for a policy in the evaluator. `noise` adds N(0, noise²) to
every action dimension before clipping, for diverse demonstrations; the expert is closed-loop, so
it still succeeds and the demonstrations show it correcting its own mistakes.

The noise is exploration, not part of what is taught (DART): `act_labelled` returns the executed
(noisy) action beside the clean one, and `collect` stores the clean one as the label, so a cloned
policy learns the expert's correction from off-distribution states, not the noise that got it there.
"""

from __future__ import annotations

import numpy as np


class Expert:
    """Base class: subclasses implement `clean_action(state) -> action in the box` ([-1, 1]^A
    unless `action_low`/`action_high` say otherwise)."""

    name = "expert"
    #: the action box the expert's actions are clipped to (PushT's is pixels, [0, 512])
    action_low = -1.0
    action_high = 1.0

    def __init__(self, noise: float = 0.0, seed: int | None = None):
        if not np.isfinite(noise) or noise < 0:
            raise ValueError(f"expert noise must be a finite number >= 0, got {noise!r}")
        self.noise = float(noise)
        self.rng = np.random.default_rng(seed)

    def reset(self, seed: int | None = None) -> None:
        """Start an episode; a seed makes the action noise of that episode reproducible."""
        if seed is not None:
            self.rng = np.random.default_rng(seed)

    def clean_action(self, state: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        return self.act(observation)

    def act(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        """The action to execute: the clean one plus the noise, clipped to the bounds."""
        return self.act_labelled(observation)[0]

    def act_labelled(self, observation: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(executed, clean): the noisy action to step the env with, and the expert's own."""
        clean = np.asarray(self.clean_action(np.asarray(observation["state"], np.float64)))
        executed = (
            clean + self.rng.normal(0.0, self.noise, size=clean.shape) if self.noise else clean
        )
        low, high = self.action_low, self.action_high
        return (
            np.clip(executed, low, high).astype(np.float32),
            np.clip(clean, low, high).astype(np.float32),
        )


def scale_into_box(action: np.ndarray) -> np.ndarray:
    """Shrink a vector uniformly until every entry is in [-1, 1]: keeps the direction of motion."""
    largest = float(np.max(np.abs(action))) if action.size else 0.0
    return action / largest if largest > 1.0 else action


def limit_norm(vector: np.ndarray, limit: float) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return vector * (limit / norm) if norm > limit else vector
