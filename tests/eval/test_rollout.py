"""The rollout runner: the expert as an agent scores its own success, random scores 0, batching
does not change results, a crashing env marks one episode, policies plug in."""

from __future__ import annotations

import numpy as np
import pytest

from dopr_robot.envs.collect import run_episode
from dopr_robot.envs.push_chain import PushChainEnv
from dopr_robot.envs.registry import expert_for, make
from dopr_robot.eval import (
    ExpertAgent,
    PolicyAgent,
    RandomAgent,
    episode_seeds,
    run_episodes,
)
from dopr_robot.policies import PolicyConfig, ShapeMeta, build_policy

PUSH = "dopr_robot/PushChain-v0"


def test_expert_agent_scores_what_the_expert_scores_on_its_own():
    seeds = episode_seeds("test", 12)
    episodes = run_episodes(PUSH, ExpertAgent(PUSH), seeds, 4, env_kwargs={"perturbation": 0.5})
    env = make(PUSH, task_horizon=4, perturbation=0.5)
    alone = [run_episode(env, expert_for(PUSH), seed, seed) for seed in seeds]
    env.close()
    assert [e.seed for e in episodes] == seeds
    assert [e.success for e in episodes] == [won for _, won in alone]
    assert [e.length for e in episodes] == [len(ep["action"]) for ep, _ in alone]
    assert np.mean([e.success for e in episodes]) >= 0.95


@pytest.mark.parametrize(
    "env_id, horizon, action_dim", [(PUSH, 4, 2), ("dopr_robot/Balance-v0", 500, 1)]
)
def test_random_agent_scores_about_zero(env_id, horizon, action_dim):
    episodes = run_episodes(env_id, RandomAgent(action_dim), episode_seeds("test", 10), horizon)
    assert np.mean([e.success for e in episodes]) <= 0.1


def test_batching_and_vector_kind_do_not_change_results():
    seeds = episode_seeds("validation", 6)
    one = run_episodes(PUSH, ExpertAgent(PUSH), seeds, 2, n_envs=1)
    four = run_episodes(PUSH, ExpertAgent(PUSH), seeds, 2, n_envs=4)
    assert [(e.success, e.length, e.subgoals_done) for e in one] == [
        (e.success, e.length, e.subgoals_done) for e in four
    ]


def test_async_vector_env_gives_the_same_results():
    seeds = episode_seeds("validation", 4)
    sync = run_episodes(PUSH, ExpertAgent(PUSH), seeds, 2, n_envs=2)
    asynchronous = run_episodes(PUSH, ExpertAgent(PUSH), seeds, 2, n_envs=2, vector="async")
    assert [(e.success, e.length, e.subgoals_done) for e in sync] == [
        (e.success, e.length, e.subgoals_done) for e in asynchronous
    ]


def test_an_env_that_raises_marks_one_episode_and_the_eval_goes_on(monkeypatch):
    seeds = episode_seeds("test", 6)
    doomed = seeds[2]
    original_reset, original_step = PushChainEnv.reset, PushChainEnv.step

    def reset(self, *, seed=None, options=None):
        self.doomed = seed == doomed
        return original_reset(self, seed=seed, options=options)

    def step(self, action):
        if self.doomed and self.elapsed_steps == 5:
            raise FloatingPointError("simulated solver blow-up")
        return original_step(self, action)

    monkeypatch.setattr(PushChainEnv, "reset", reset)
    monkeypatch.setattr(PushChainEnv, "step", step)
    episodes = run_episodes(PUSH, ExpertAgent(PUSH), seeds, 2, n_envs=3)
    errors = {e.seed: e.error for e in episodes}
    assert "FloatingPointError: simulated solver blow-up" in errors[doomed]
    assert all(error is None for seed, error in errors.items() if seed != doomed)
    assert not episodes[2].success and sum(e.success for e in episodes) == 5


def test_a_policy_plugs_in_with_receding_horizon_chunks():
    rng = np.random.default_rng(0)
    meta = ShapeMeta(obs={"state": [9]}, action_dim=1)
    policy = build_policy(
        PolicyConfig(mlp_width=32, mlp_depth=1, pred_horizon=8, action_horizon=4), meta
    )
    policy.fit_normalizer(
        {"state": rng.normal(size=(100, 9)), "action": rng.uniform(-1, 1, (100, 1))}
    )
    calls = {"n": 0}
    original = policy.predict_action

    def counting(obs, generator=None, initial_noise=None):
        calls["n"] += 1
        assert obs["state"].shape[1:] == (2, 9)
        return original(obs, generator, initial_noise)

    policy.predict_action = counting
    episodes = run_episodes(
        "dopr_robot/Balance-v0", PolicyAgent(policy, execute=2), [5, 6], 10, n_envs=2
    )
    assert all(1 <= e.length <= 10 for e in episodes)  # each ran to an end within H
    assert all(e.success or e.length < 10 for e in episodes)  # surviving H steps is success
    steps = max(e.length for e in episodes)
    assert calls["n"] >= int(np.ceil(steps / 2)) and calls["n"] <= steps
    with pytest.raises(ValueError, match="execute must be between 1 and Ta=4"):
        PolicyAgent(policy, execute=5)


def test_policy_rollouts_do_not_depend_on_batching():
    """Each episode's sampling noise is keyed by (seed, chunk), not by its batch position."""
    meta = ShapeMeta(obs={"state": [9]}, action_dim=1)
    config = PolicyConfig(mlp_width=32, mlp_depth=1, pred_horizon=8, action_horizon=4)
    policy = build_policy(config, meta)
    rng = np.random.default_rng(1)
    policy.fit_normalizer(
        {"state": rng.normal(size=(100, 9)), "action": rng.uniform(-1, 1, (100, 1))}
    )
    seeds = episode_seeds("validation", 5)
    plans = []
    runs = []
    for n in (1, 3):
        agent = PolicyAgent(policy)
        planned = {}
        original = agent.plan

        def recording(observations, keys, _original=original, _planned=planned):
            chunk = _original(observations, keys)
            _planned.update(
                {k: row.copy() for k, row in zip(keys, chunk, strict=True) if k[0] in seeds}
            )  # idle slots of the last batch plan too, under a placeholder key
            return chunk

        agent.plan = recording
        runs.append(run_episodes("dopr_robot/Balance-v0", agent, seeds, 40, n_envs=n))
        plans.append(planned)
    # the same (seed, chunk) keys were planned, with the same actions however batched (to
    # float32 rounding: a matmul's summation order depends on the batch size)
    assert plans[0].keys() == plans[1].keys()
    for key in plans[0]:
        np.testing.assert_allclose(plans[0][key], plans[1][key], rtol=1e-5, atol=1e-6)
    assert [(e.success, e.length, e.subgoals_done) for e in runs[0]] == [
        (e.success, e.length, e.subgoals_done) for e in runs[1]
    ]
    assert len({e.length for e in runs[0]}) > 1  # the episodes do differ from each other
