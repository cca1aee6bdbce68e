"""Push chain: a planar pusher pushes a puck through H goal positions in order (contact-rich).

Scene: a 0.6 × 0.6 m table seen from above. The pusher (radius 1.5 cm) is a velocity-servoed
point on two slide joints; the puck (radius 4 cm, 0.2 kg) slides on two joints with Coulomb
friction (frictionloss 0.5 N) and stops when it is not pushed. The two collide; nothing else does.
Action: pusher velocity in [-1, 1]², times 0.25 m/s. A goal counts as reached when the puck's
centre is within 2 cm of it. Goals are 8–18 cm apart and stay inside ±0.2 m. Control at 20 Hz,
100 steps of budget per goal.

The block is round and the goals are positions, not poses. A square block with an orientation
tolerance is the stronger task (PushT's), but it needs a scripted rotate-and-push planner before
its expert is reliable at H = 8; the round puck keeps the contact dynamics and an expert that
succeeds every time, which is what a horizon study needs first.

State (14): pusher xy, pusher velocity, puck xy, puck velocity, goal xy, goal − puck,
puck − pusher. Process noise pushes on all four slide joints (N).

Expert: orbit the puck at a safe radius until the pusher is behind it (on the far side from the
goal), then push along the puck→goal line, correcting sideways drift, slowing near the goal.
"""

from __future__ import annotations

import numpy as np

from .chain import ChainTaskEnv
from .experts import Expert, limit_norm, scale_into_box

PUSHER_RADIUS = 0.015
PUCK_RADIUS = 0.04
MAX_SPEED = 0.25  # m/s at |action| = 1
GOAL_TOLERANCE = 0.02
GOAL_BOX = 0.2
GOAL_STEP = (0.08, 0.18)

XML = f"""
<mujoco model="push_chain">
  <option timestep="0.005" integrator="implicitfast" gravity="0 0 0"/>
  <visual><headlight ambient="0.4 0.4 0.4" diffuse="0.6 0.6 0.6"/></visual>
  <default>
    <geom contype="0" conaffinity="0"/>
    <velocity kv="20" forcelimited="true" forcerange="-20 20"/>
  </default>
  <worldbody>
    <geom name="table" type="plane" size="0.32 0.32 0.01" rgba="0.85 0.85 0.8 1"/>
    <geom name="edge_n" type="box" size="0.32 0.005 0.005" pos="0 0.32 0" rgba="0.3 0.3 0.3 1"/>
    <geom name="edge_s" type="box" size="0.32 0.005 0.005" pos="0 -0.32 0" rgba="0.3 0.3 0.3 1"/>
    <geom name="edge_e" type="box" size="0.005 0.32 0.005" pos="0.32 0 0" rgba="0.3 0.3 0.3 1"/>
    <geom name="edge_w" type="box" size="0.005 0.32 0.005" pos="-0.32 0 0" rgba="0.3 0.3 0.3 1"/>
    <body name="pusher" pos="0 0 0.02">
      <joint name="pusher_x" type="slide" axis="1 0 0" limited="true" range="-0.3 0.3"/>
      <joint name="pusher_y" type="slide" axis="0 1 0" limited="true" range="-0.3 0.3"/>
      <geom type="cylinder" size="{PUSHER_RADIUS} 0.02" mass="0.5" contype="1" conaffinity="1"
            rgba="0.2 0.3 0.8 1"/>
    </body>
    <body name="puck" pos="0 0 0.02">
      <joint name="puck_x" type="slide" axis="1 0 0" limited="true" range="-0.28 0.28"
             frictionloss="0.5" damping="1"/>
      <joint name="puck_y" type="slide" axis="0 1 0" limited="true" range="-0.28 0.28"
             frictionloss="0.5" damping="1"/>
      <geom type="cylinder" size="{PUCK_RADIUS} 0.02" mass="0.2" contype="1" conaffinity="1"
            friction="0.5" rgba="0.8 0.5 0.1 1"/>
    </body>
    <body name="goal" mocap="true" pos="0 0 0.001">
      <geom type="cylinder" size="{PUCK_RADIUS} 0.001" rgba="0.2 0.8 0.2 0.5"/>
      <geom type="cylinder" size="{GOAL_TOLERANCE} 0.0015" rgba="0.1 0.5 0.1 1"/>
    </body>
  </worldbody>
  <actuator>
    <velocity joint="pusher_x"/>
    <velocity joint="pusher_y"/>
  </actuator>
</mujoco>
"""


class PushChainEnv(ChainTaskEnv):
    xml = XML
    frame_skip = 10
    steps_per_subgoal = 100
    action_dim = 2
    state_dim = 14
    perturbed_dofs = (0, 1, 2, 3)
    camera = ((0.0, 0.0, 0.0), 0.8, 90.0, -90.0)

    def sample_layout(self, rng, task_horizon):
        puck = rng.uniform(-0.15, 0.15, size=2)
        while True:
            pusher = rng.uniform(-0.25, 0.25, size=2)
            if np.linalg.norm(pusher - puck) >= 0.1:
                break
        self.data.qpos[:] = [*pusher, *puck]
        goals, previous = [], puck
        while len(goals) < task_horizon:
            angle = rng.uniform(-np.pi, np.pi)
            goal = previous + rng.uniform(*GOAL_STEP) * np.array([np.cos(angle), np.sin(angle)])
            if np.all(np.abs(goal) <= GOAL_BOX):
                goals.append(goal)
                previous = goal
        return np.array(goals)

    def apply_action(self, action):
        self.data.ctrl[:] = action * MAX_SPEED

    def state(self):
        pusher, puck = self.data.qpos[:2], self.data.qpos[2:4]
        return np.concatenate(
            [
                pusher,
                self.data.qvel[:2],
                puck,
                self.data.qvel[2:4],
                self.goal,
                self.goal - puck,
                puck - pusher,
            ]
        )

    def goal_reached(self):
        return bool(np.linalg.norm(self.data.qpos[2:4] - self.goal) <= GOAL_TOLERANCE)


def _wrap(angle: float) -> float:
    return (angle + np.pi) % (2 * np.pi) - np.pi


class PushChainExpert(Expert):
    """Orbit to behind the puck, then push it along the line to the goal."""

    name = "push_chain_orbit_push"
    contact = PUCK_RADIUS + PUSHER_RADIUS
    orbit_radius = PUCK_RADIUS + PUSHER_RADIUS + 0.025
    align_tolerance = 0.3  # rad: how far from "directly behind" pushing may start
    gain = 8.0  # 1/s

    def clean_action(self, state):
        pusher, puck, to_goal = state[0:2], state[4:6], state[10:12]
        distance = float(np.linalg.norm(to_goal))
        if distance < 1e-9:
            return np.zeros(2)
        direction = to_goal / distance
        normal = np.array([-direction[1], direction[0]])
        relative = pusher - puck
        behind_angle = np.arctan2(-direction[1], -direction[0])
        pusher_angle = np.arctan2(relative[1], relative[0])
        offset = _wrap(behind_angle - pusher_angle)
        if abs(offset) > self.align_tolerance:
            # orbit toward the behind point along a circle that keeps clear of the puck
            angle = pusher_angle + np.clip(offset, -0.6, 0.6)
            waypoint = puck + self.orbit_radius * np.array([np.cos(angle), np.sin(angle)])
            velocity = limit_norm(self.gain * (waypoint - pusher), MAX_SPEED)
        else:
            lateral = float(relative @ normal)
            speed = min(MAX_SPEED, 2.0 * distance + 0.03)
            velocity = speed * direction - self.gain * lateral * normal
        return scale_into_box(velocity / MAX_SPEED)
