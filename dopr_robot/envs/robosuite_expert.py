"""Scripted experts for robomimic's robosuite tasks: one pick (and place) phase machine.

    LiftExpert                 pick the cube, hold it up
    StackExpert                cube A onto cube B
    PickPlaceCanExpert         the can into its bin (a fixed point in it, CAN_BIN_XY)
    NutAssemblySquareExpert    the square nut, grasped by its handle, round the square peg

Measured with `dopr-robot collect --keep-failed` (episodes = seeds 0-49 at H = 1, 0-19 at H = 2):
PickPlaceCan 50/50 and 20/20, NutAssemblySquare 49/50 and 19/20 (Lift's and Stack's are in the
README's env table, from bench/env_speed.py).

Actions are robosuite's OSC_POSE deltas as robomimic records them: 7 numbers in [-1, 1] (eef
translation, 0.05 m per unit at 20 Hz; rotation, 0.5 rad per unit; gripper -1 open, +1 close).
The expert reads the `state` observation (robomimic's low-dim keys concatenated:
`robot0_eef_pos` 3, `robot0_eef_quat` 4, `robot0_gripper_qpos` 2, then `object`), so it can
stand in for a policy in the evaluator.

Phases (each ends when its target is reached or its step limit runs out):
hover above the grasp point with the gripper turned for the grasp, descend, close, lift; for the
placing tasks, carry the object over its target (turning it as the place needs), lower it and
open. A task supplies the object's pose, the place target and, where they differ from the cube's,
the grasp point (the nut's handle), the grasp and carry yaw, the lift height, the carry's step
limit and whether the hand is held pointing down (`hold_level`); the bins' and the peg's
positions are fixed in robosuite 1.4.1, so they are named constants read from its models, not
observations. After the last phase, or when the object is no longer where the phase needs it
(the chain re-placed it, or it slipped), the machine starts again from hovering: so the expert
chains sub-goals in one episode.
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


def level_error(quat_xyzw: np.ndarray) -> np.ndarray:
    """The world-frame (roll, pitch) rotation, rad, that turns the eef's approach axis straight
    down again; OSC_POSE takes rotation deltas as world-frame axis-angles, so it is an action."""
    x, y, z, w = quat_xyzw
    approach = np.array([2 * (x * z + w * y), 2 * (y * z - w * x), 1 - 2 * (x * x + y * y)])
    axis = np.array([-approach[1], approach[0]])  # approach x (0, 0, -1), in the table's plane
    sine = float(np.linalg.norm(axis))
    if sine < 1e-9:
        return np.zeros(2)
    return axis / sine * float(np.arccos(np.clip(-approach[2], -1.0, 1.0)))


class PickPlaceExpert(Expert):
    """Shared phase machine; subclasses say where the object is and where it goes."""

    name = "robosuite_pick_place"
    #: the task ends at the lift (Lift): the machine holds the object up instead of placing it
    lift_only = False
    #: m above the grasp height the object is carried at
    lift_height = LIFT
    #: step limit of the carry to the place target (a longer way for PickPlaceCan)
    carry_steps = 60
    #: hold the gripper pointing straight down: OSC_POSE holds whatever orientation the last
    #: step left, and over long moves it drifts (the hand tilted 100° on the way back to a
    #: second nut); on for NutAssemblySquare only (Lift's and Stack's measured demonstrations
    #: were made without it, and it made PickPlaceCan's way back to bin1 fail)
    hold_level = False

    def __init__(self, noise: float = 0.0, seed: int | None = None):
        super().__init__(noise, seed)
        self.phase, self.phase_steps, self.grasp_height = 0, 0, 0.0

    def reset(self, seed: int | None = None) -> None:
        super().reset(seed)
        self.phase, self.phase_steps, self.grasp_height = 0, 0, 0.0

    # ---- what a task supplies ---------------------------------------------------------------

    def object_pose(self, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(position, quaternion xyzw) of the object to pick; its position is the point
        `place_target` puts somewhere."""
        raise NotImplementedError

    def grasp_point(self, state: np.ndarray) -> np.ndarray:
        """Where the fingers close: the object's centre unless the task grasps a handle."""
        return self.object_pose(state)[0]

    def grasp_yaw_error(self, state: np.ndarray) -> float:
        """The eef turn (rad) that lines the fingers up for the grasp: a cube's faces, mod 90°."""
        return square_yaw_error(yaw_of(self.object_pose(state)[1]), yaw_of(state[3:7]))

    def place_yaw_error(self, state: np.ndarray) -> float:
        """The eef turn (rad) while carrying, so the object arrives at the yaw the place needs."""
        return 0.0

    def place_target(self, state: np.ndarray) -> np.ndarray | None:
        """Where the object's centre goes (None: lifting is the task)."""
        return None

    # ---- the machine ------------------------------------------------------------------------

    def clean_action(self, state: np.ndarray) -> np.ndarray:
        eef = state[:3]
        grasp = self.grasp_point(state)
        carrying = 3 <= self.phase < 6
        if carrying and np.linalg.norm(grasp - eef) > 0.04:
            self.phase, self.phase_steps = 0, 0  # the object is not in the hand: start over
        target, gripper, done, limit = self._phase(eef, grasp, state)
        self.phase_steps += 1
        if done or self.phase_steps >= limit:
            self.phase, self.phase_steps = self._next_phase(), 0
        action = np.zeros(7)
        action[:3] = np.clip(GAIN * (target - eef), -1.0, 1.0)
        if self.hold_level:
            action[3:5] = np.clip(YAW_GAIN * level_error(state[3:7]), -1.0, 1.0)
        action[5] = np.clip(YAW_GAIN * self._yaw_error(state), -1.0, 1.0)
        action[6] = gripper
        return action

    def _yaw_error(self, state: np.ndarray) -> float:
        if self.phase <= 1:
            return self.grasp_yaw_error(state)
        if self.phase in (4, 5):
            return self.place_yaw_error(state)
        return 0.0

    def _phase(self, eef, grasp, state):
        """(eef target, gripper command, phase done, step limit) of the current phase."""
        place = self.place_target(state)
        if self.phase == 0:  # hover, gripper open
            target = grasp + [0, 0, HOVER]
            return target, -1.0, np.linalg.norm(target - eef) < 0.01, 60
        if self.phase == 1:  # descend onto the grasp point
            return grasp, -1.0, np.linalg.norm(grasp - eef) < 0.006, 40
        if self.phase == 2:  # close
            self.grasp_height = grasp[2]
            return eef, 1.0, False, GRASP_STEPS
        if self.phase == 3:  # lift
            target = np.array([*eef[:2], self.grasp_height + self.lift_height])
            return target, 1.0, place is not None and abs(target[2] - eef[2]) < 0.01, 40
        # the object hangs where it was grasped: move the eef so the object's centre gets there
        offset = self.object_pose(state)[0] - eef
        if self.phase == 4:  # carry over the place target
            target = np.array([*place[:2], self.grasp_height + self.lift_height]) - offset
            return target, 1.0, np.linalg.norm(target - eef) < 0.008, self.carry_steps
        if self.phase == 5:  # lower onto it
            target = place - offset + [0, 0, 0.005]
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


# ---- PickPlaceCan -------------------------------------------------------------------------------

#: where the can goes: inside its bin quarter, which is fixed in robosuite 1.4.1's PickPlace (bin2
#: at (0.1, 0.28, 0.8), the can's quarter x 0.1..0.295, y 0.28..0.525, the success test's bounds).
#: Not the quarter's centre (`target_bin_placements[3]` = (0.1975, 0.4025)): that is at the edge of
#: the Panda's reach, where the arm sags under the can; this point is 5 cm nearer the robot and
#: 3 cm clear of the dividers (at x 0.1 and y 0.28, 1 cm thick) beyond the can's 2.5 cm radius.
CAN_BIN_XY = (0.165, 0.36)
#: the can's centre when it stands on a bin floor: floor top 0.82 (bin z 0.8 + the floor's 0.02
#: half height, bins_arena.xml) + the can's 0.04 half height (can.msh; measured 0.86)
CAN_REST_Z = 0.86
#: the bins' walls end at z 0.9 (bins_arena.xml): carried this high above the grasp the can's
#: base passes 7 cm over them
CAN_LIFT = 0.15
#: the eef stops about 1 cm above the can's centre (the fingers meet the bin floor): aim there
CAN_GRASP_UP = 0.01


class PickPlaceCanExpert(PickPlaceExpert):
    """PickPlaceCan: grasp the can round its middle, carry it over its bin, lower it and let go
    (robosuite's success: the can in its bin with the gripper 4 cm or more away)."""

    name = "robosuite_pick_place_can"
    lift_height = CAN_LIFT
    carry_steps = 80
    # not held level: on the way back from bin2 to a second can the level hand fought the arm
    # (it moved away from the can; 12/20 at H = 2, 20/20 without)

    def object_pose(self, state):
        return state[9:12], state[12:16]

    def grasp_point(self, state):
        return state[9:12] + [0.0, 0.0, CAN_GRASP_UP]

    def grasp_yaw_error(self, state):
        # a can is round: keep the fingers square to the bin walls, which run along x and y
        return square_yaw_error(0.0, yaw_of(state[3:7]))

    def place_target(self, state):
        # released 2 cm above the floor, below the bin's 0.9 m success ceiling
        return np.array([*CAN_BIN_XY, CAN_REST_Z + 0.02])


# ---- NutAssemblySquare --------------------------------------------------------------------------

#: the square peg, fixed in robosuite 1.4.1: body `peg1` at (0.23, 0.1, 0.85) in pegs_arena.xml
SQUARE_PEG_XY = (0.23, 0.1)
#: the handle's offset along the nut's own x axis: square-nut.xml's `handle_site` (0.054, 0, 0)
NUT_HANDLE = 0.054
#: the square peg's top: body `peg1` at z 0.85 with a box of half height 0.1 (pegs_arena.xml)
SQUARE_PEG_TOP = 0.95
#: lifted this high above its grasp on the table (z 0.83) the nut's underside passes 7 cm over
#: the peg: room for the tilt of a nut held by its handle (25° when the hand itself tilted)
NUT_LIFT = 0.2
#: a nut that is not level jams part way down the peg: let go once its centre is this far down
#: the peg, and it levels and drops round the peg to the table (success: below 0.87 m)
NUT_RELEASE_DEPTH = 0.03


#: the nut's yaws over the peg, its handle towards the robot (pi) or to either side; see
#: NutAssemblySquareExpert.place_yaw_error
NUT_PLACE_YAWS = (np.pi / 2, np.pi, -np.pi / 2)


def wrap_angle(angle: float) -> float:
    """The angle in [-pi, pi)."""
    return float((angle + np.pi) % (2 * np.pi) - np.pi)


def nut_x_axis(quat_xyzw: np.ndarray) -> np.ndarray:
    """The nut's own x axis in the world (the first column of its rotation matrix)."""
    x, y, z, w = quat_xyzw
    return np.array([1 - 2 * (y * y + z * z), 2 * (x * y + w * z), 2 * (x * z - w * y)])


class NutAssemblySquareExpert(PickPlaceExpert):
    """NutAssemblySquare: grasp the square nut by its handle, turn it square to the peg while
    carrying it over, lower it round the peg and let go (robosuite's success: the nut low on
    the square peg, the gripper 4 cm or more from its centre)."""

    name = "robosuite_nut_assembly_square"
    lift_height = NUT_LIFT
    carry_steps = 80
    hold_level = True

    def object_pose(self, state):
        return state[9:12], state[12:16]

    def grasp_point(self, state):
        position, quat = self.object_pose(state)
        return position + NUT_HANDLE * nut_x_axis(quat)

    def grasp_yaw_error(self, state):
        # the fingers close across the handle (along the nut's y): the eef's yaw is the nut's
        # mod a half turn, the one within ±90° of the start's (0), not the nearest: turning on
        # from where the last nut left the hand ran the wrist into its limit (the hand tilted)
        target = (yaw_of(self.object_pose(state)[1]) + np.pi / 2) % np.pi - np.pi / 2
        return float(target - yaw_of(state[3:7]))

    def place_yaw_error(self, state):
        # the peg is square to the world axes: turn the nut's faces to them. Not with the handle
        # (and the hand) beyond the peg, at +x (nut yaw 0): pointing down, the Panda does not
        # reach there; of the other three, the one that leaves the eef's yaw nearest the start's
        eef_yaw = yaw_of(state[3:7])
        held = eef_yaw - yaw_of(self.object_pose(state)[1])  # fixed while the nut is held
        finals = [wrap_angle(held + nut_yaw) for nut_yaw in NUT_PLACE_YAWS]
        return min(finals, key=abs) - eef_yaw

    def place_target(self, state):
        return np.array([*SQUARE_PEG_XY, SQUARE_PEG_TOP - NUT_RELEASE_DEPTH])
