"""Reach chain: a planar three-link arm touches H targets in order (fast and smooth).

Scene: links of 0.20, 0.16 and 0.12 m on unlimited vertical hinges (links pass over each
other), each driven by a velocity servo (force limit 2 N·m). Action: joint velocity commands in
[-1, 1]³, times 1.5 rad/s. A target counts as touched when the fingertip is within 2.5 cm of
it. Targets lie in the annulus 0.15–0.42 m around the base, each at least 0.1 m from the one
before. Control at 20 Hz, 100 steps of budget per target.

State (15): cos q (3), sin q (3), joint velocities (3), fingertip xy, target xy, target − tip.
Process noise pushes on the three joints (N·m).

Expert: resolved-rate control. The fingertip moves toward the target at up to 0.4 m/s along a
path that is straight in polar coordinates around the base (so it bends around the base rather
than crossing it), through a damped least-squares inverse of the arm's Jacobian.
"""

from __future__ import annotations

import numpy as np

from .chain import ChainTaskEnv
from .experts import Expert, limit_norm, scale_into_box

LINKS = (0.20, 0.16, 0.12)
MAX_JOINT_SPEED = 1.5  # rad/s at |action| = 1
TOUCH_RADIUS = 0.025
TARGET_RADII = (0.15, 0.42)
MIN_TARGET_STEP = 0.10

XML = f"""
<mujoco model="reach_chain">
  <option timestep="0.01" integrator="implicitfast" gravity="0 0 0"/>
  <visual><headlight ambient="0.4 0.4 0.4" diffuse="0.6 0.6 0.6"/></visual>
  <default>
    <geom contype="0" conaffinity="0" density="1000"/>
    <joint damping="0.02"/>
    <velocity kv="1.0" forcelimited="true" forcerange="-2 2"/>
  </default>
  <worldbody>
    <geom name="table" type="plane" size="0.6 0.6 0.01" rgba="0.85 0.85 0.8 1"/>
    <geom name="base" type="cylinder" size="0.03 0.01" pos="0 0 0.01" rgba="0.2 0.2 0.2 1"/>
    <body name="link1" pos="0 0 0.02">
      <joint name="j1" type="hinge" axis="0 0 1"/>
      <geom type="capsule" size="0.015" fromto="0 0 0 {LINKS[0]} 0 0" rgba="0.2 0.4 0.8 1"/>
      <body name="link2" pos="{LINKS[0]} 0 0">
        <joint name="j2" type="hinge" axis="0 0 1"/>
        <geom type="capsule" size="0.013" fromto="0 0 0 {LINKS[1]} 0 0" rgba="0.2 0.6 0.8 1"/>
        <body name="link3" pos="{LINKS[1]} 0 0">
          <joint name="j3" type="hinge" axis="0 0 1"/>
          <geom type="capsule" size="0.011" fromto="0 0 0 {LINKS[2]} 0 0" rgba="0.2 0.8 0.8 1"/>
          <site name="tip" pos="{LINKS[2]} 0 0" size="0.012" rgba="0.1 0.1 0.1 1"/>
        </body>
      </body>
    </body>
    <body name="goal" mocap="true" pos="0.3 0 0.005">
      <geom type="cylinder" size="{TOUCH_RADIUS} 0.004" rgba="0.9 0.2 0.2 0.8"/>
    </body>
  </worldbody>
  <actuator>
    <velocity joint="j1"/>
    <velocity joint="j2"/>
    <velocity joint="j3"/>
  </actuator>
</mujoco>
"""


def fingertip(q: np.ndarray) -> np.ndarray:
    angles = np.cumsum(q)
    return np.array([np.dot(LINKS, np.cos(angles)), np.dot(LINKS, np.sin(angles))])


def jacobian(q: np.ndarray) -> np.ndarray:
    """d fingertip / d q, [2, 3]: joint i moves every link from i outward."""
    angles = np.cumsum(q)
    dx = -np.asarray(LINKS) * np.sin(angles)
    dy = np.asarray(LINKS) * np.cos(angles)
    return np.stack([np.cumsum(dx[::-1])[::-1], np.cumsum(dy[::-1])[::-1]])


class ReachChainEnv(ChainTaskEnv):
    xml = XML
    frame_skip = 5
    steps_per_subgoal = 100
    action_dim = 3
    state_dim = 15
    perturbed_dofs = (0, 1, 2)
    camera = ((0.0, 0.0, 0.0), 1.25, 90.0, -90.0)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._tip = self.model.site("tip").id

    def sample_layout(self, rng, task_horizon):
        self.data.qpos[:] = [rng.uniform(-np.pi, np.pi), *rng.uniform(-1.5, 1.5, size=2)]
        previous = fingertip(self.data.qpos.copy())
        goals = []
        while len(goals) < task_horizon:
            radius = np.sqrt(rng.uniform(TARGET_RADII[0] ** 2, TARGET_RADII[1] ** 2))
            angle = rng.uniform(-np.pi, np.pi)
            goal = radius * np.array([np.cos(angle), np.sin(angle)])
            if np.linalg.norm(goal - previous) >= MIN_TARGET_STEP:
                goals.append(goal)
                previous = goal
        return np.array(goals)

    def apply_action(self, action):
        self.data.ctrl[:] = action * MAX_JOINT_SPEED

    def tip(self) -> np.ndarray:
        return self.data.site_xpos[self._tip, :2].copy()

    def state(self):
        q, tip = self.data.qpos, self.tip()
        return np.concatenate(
            [np.cos(q), np.sin(q), self.data.qvel, tip, self.goal, self.goal - tip]
        )

    def goal_reached(self):
        return bool(np.linalg.norm(self.tip() - self.goal) <= TOUCH_RADIUS)


class ReachChainExpert(Expert):
    """Resolved-rate control toward the target in the observation (see the module docstring)."""

    name = "reach_chain_resolved_rate"
    gain = 5.0  # 1/s: fingertip speed per metre of error
    max_speed = 0.4  # m/s
    damping = 0.02

    def clean_action(self, state):
        q = np.arctan2(state[3:6], state[0:3])
        tip, target = state[9:11], state[11:13]
        # error in polar coordinates around the base: the path curves around the base instead
        # of cutting across it, where the folded arm's Jacobian is nearly singular
        radius, target_radius = np.linalg.norm(tip), np.linalg.norm(target)
        angle_error = np.arctan2(
            tip[0] * target[1] - tip[1] * target[0], tip[0] * target[0] + tip[1] * target[1]
        )
        radial = tip / max(radius, 1e-9)
        tangential = np.array([-radial[1], radial[0]])
        error = (target_radius - radius) * radial + radius * angle_error * tangential
        velocity = limit_norm(self.gain * error, self.max_speed)
        J = jacobian(q)
        joint_velocity = J.T @ np.linalg.solve(J @ J.T + self.damping**2 * np.eye(2), velocity)
        return scale_into_box(joint_velocity / MAX_JOINT_SPEED)
