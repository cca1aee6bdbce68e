"""Scripted experts for robosuite's Lift and Stack: a pick (and place) phase machine.

Actions are robosuite's OSC_POSE deltas as robomimic records them: 7 numbers in [-1, 1] (eef
translation, 0.05 m per unit at 20 Hz; rotation, 0.5 rad per unit; gripper -1 open, +1 close).
The expert reads the `state` observation (robomimic's low-dim keys concatenated:
`robot0_eef_pos` 3, `robot0_eef_quat` 4, `robot0_gripper_qpos` 2, then `object`), so it can
stand in for a policy in the evaluator.

Phases (each ends when its target is reached or its step limit runs out):
hover above the object with the gripper turned to the object's yaw (mod 90°), descend, close,
lift; for Stack, carry cube A over cube B, lower it onto B and open. After the last phase, or
when the object is no longer where the phase needs it (the chain re-placed it, or it slipped),
the machine starts again from hovering: so the expert chains sub-goals in one episode.
"""

from __future__ import annotations

import numpy as np

from .experts import Expert

GAIN = 12.0  # action per metre of eef error (saturates at 1 = 5 cm per step)
YAW_GAIN = 3.0  # action per radian of yaw error
HOVER = 0.08  # m above the object before descending
LIFT = 0.12  # m above the grasp height when lifted
GRASP_STEPS = 10
RELEASE_STEPS = 8


def yaw_of(quat_xyzw: np.ndarray) -> float:
    x, y, z, w = quat_xyzw
    return float(np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z)))


def square_yaw_error(target: float, current: float) -> float:
    """The smallest turn that aligns a parallel gripper with a square face: wrapped to ±45°."""
    quarter = np.pi / 2
    return float((target - current + quarter / 2) % quarter - quarter / 2)


class PickPlaceExpert(Expert):
    """Shared phase machine; subclasses say where the object is and where it goes."""

    name = "robosuite_pick_place"
    #: the task ends at the lift (Lift): the machine holds the object up instead of placing it
    lift_only = False

    def __init__(self, noise: float = 0.0, seed: int | None = None):
        super().__init__(noise, seed)
        self.phase, self.phase_steps, self.grasp_height = 0, 0, 0.0

    def reset(self, seed: int | None = None) -> None:
        super().reset(seed)
        self.phase, self.phase_steps, self.grasp_height = 0, 0, 0.0

    # ---- what a task supplies ---------------------------------------------------------------

    def object_pose(self, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(position, quaternion xyzw) of the object to pick."""
        raise NotImplementedError

    def place_target(self, state: np.ndarray) -> np.ndarray | None:
        """Where the object's centre goes (None: lifting is the task)."""
        return None

    # ---- the machine ------------------------------------------------------------------------

    def clean_action(self, state: np.ndarray) -> np.ndarray:
        eef, eef_quat = state[:3], state[3:7]
        position, quat = self.object_pose(state)
        carrying = self.phase >= 3
        if carrying and np.linalg.norm(position - eef) > 0.04 and self.phase < 6:
            self.phase, self.phase_steps = 0, 0  # the object is not in the hand: start over
        target, gripper, done, limit = self._phase(eef, position, state)
        self.phase_steps += 1
        if done or self.phase_steps >= limit:
            self.phase, self.phase_steps = self._next_phase(), 0
        action = np.zeros(7)
        action[:3] = np.clip(GAIN * (target - eef), -1.0, 1.0)
        if self.phase <= 1:
            action[5] = np.clip(YAW_GAIN * square_yaw_error(yaw_of(quat), yaw_of(eef_quat)), -1, 1)
        action[6] = gripper
        return action

    def _phase(self, eef, position, state):
        """(eef target, gripper command, phase done, step limit) of the current phase."""
        place = self.place_target(state)
        if self.phase == 0:  # hover, gripper open
            target = position + [0, 0, HOVER]
            return target, -1.0, np.linalg.norm(target - eef) < 0.01, 60
        if self.phase == 1:  # descend onto the object
            target = position
            return target, -1.0, np.linalg.norm(target - eef) < 0.006, 40
        if self.phase == 2:  # close
            self.grasp_height = position[2]
            return eef, 1.0, False, GRASP_STEPS
        if self.phase == 3:  # lift
            target = np.array([*eef[:2], self.grasp_height + LIFT])
            return target, 1.0, place is not None and abs(target[2] - eef[2]) < 0.01, 40
        if self.phase == 4:  # carry over the place target (Stack)
            target = np.array([*place[:2], self.grasp_height + LIFT])
            offset = position - eef  # the object hangs where it was grasped
            target = target - offset
            return target, 1.0, np.linalg.norm(target - eef) < 0.008, 60
        if self.phase == 5:  # lower onto it
            target = place - (position - eef) + [0, 0, 0.005]
            return target, 1.0, np.linalg.norm(target - eef) < 0.006, 40
        if self.phase == 6:  # release
            return eef, -1.0, False, RELEASE_STEPS
        target = eef + [0, 0, 0.05]  # 7: back off upwards, then start over
        return target, -1.0, False, 10

    def _next_phase(self) -> int:
        if self.phase == 3 and self.lift_only:
            return 3  # keep holding it up
        return (self.phase + 1) % 8


class LiftExpert(PickPlaceExpert):
    """Lift: pick the cube and hold it up (robosuite's success: 4 cm above the table)."""

    name = "robosuite_lift"
    lift_only = True

    def object_pose(self, state):
        return state[9:12], state[12:16]


class StackExpert(PickPlaceExpert):
    """Stack: pick cube A and put it on cube B, then let go."""

    name = "robosuite_stack"
    CUBE_A_HALF, CUBE_B_HALF = 0.02, 0.025

    def object_pose(self, state):
        return state[9:12], state[12:16]

    def place_target(self, state):
        cube_b = state[16:19]
        return cube_b + [0, 0, self.CUBE_A_HALF + self.CUBE_B_HALF]
