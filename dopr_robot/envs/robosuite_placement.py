"""Where a robosuite task's objects go back after a success, so the chain can start the task again.

One function per task (`PLACERS`), each drawing from the chain's seeded generator and putting the
objects at rest on their start surface, inside the region robosuite 1.4.1 itself draws the task's
first layout from (its placement samplers), with a uniform yaw:

    Lift               the cube within ±3 cm of the table's centre
    Stack              both cubes within ±8 cm, 7 cm apart
    PickPlaceCan       the can in bin1 (its start bin), robosuite's bounds: the bin's half size
                       less 5 cm, less the can's radius
    NutAssemblySquare  the square nut in robosuite's start strip left of the pegs
                       (x -0.115..-0.11, y 0.11..0.225 from the table's centre)

robosuite drops some objects from above their rest (the nut from 6 cm); here each is set on its
surface 1 mm up, at rest, so the next attempt starts from a still scene.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

#: bins_arena.xml: each bin's floor is a box of half height 0.02 about the bin's position
BIN_FLOOR_HALF = 0.02
#: NutAssembly's start strip for the square nut, relative to its table_offset (nut_assembly.py)
NUT_X_RANGE, NUT_Y_RANGE = (-0.115, -0.11), (0.11, 0.225)
#: half height of the square nut (square-nut.xml's boxes)
NUT_HALF = 0.01


def set_at_rest(env, obj, position, yaw: float) -> None:
    """Put a free-jointed robosuite object at `position` turned by `yaw`, not moving."""
    quat_wxyz = [np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)]
    env.sim.data.set_joint_qpos(obj.joints[0], np.concatenate([position, quat_wxyz]))
    env.sim.data.set_joint_qvel(obj.joints[0], np.zeros(6))


def _yaw(rng: np.random.Generator) -> float:
    return float(rng.uniform(-np.pi, np.pi))


def place_lift(env, rng: np.random.Generator) -> None:
    xy = rng.uniform(-0.03, 0.03, 2)
    _place_cube(env, env.cube, xy, rng)


def place_stack(env, rng: np.random.Generator) -> None:
    while True:
        a, b = rng.uniform(-0.08, 0.08, 2), rng.uniform(-0.08, 0.08, 2)
        if np.linalg.norm(a - b) > 0.07:
            break
    _place_cube(env, env.cubeA, a, rng)
    _place_cube(env, env.cubeB, b, rng)


def _place_cube(env, cube, xy, rng: np.random.Generator) -> None:
    height = cube.size[2] if hasattr(cube, "size") else 0.02
    yaw = _yaw(rng)
    set_at_rest(env, cube, [xy[0], xy[1], env.table_offset[2] + height + 0.001], yaw)


def place_can(env, rng: np.random.Generator) -> None:
    can = env.objects[env.object_id]
    # PickPlace._get_placement_initializer: bin1's half size less 5 cm, less the object's radius
    half = np.asarray(env.bin_size[:2]) / 2 - 0.05 - can.horizontal_radius
    xy = env.bin1_pos[:2] + rng.uniform(-half, half)
    floor = env.bin1_pos[2] + BIN_FLOOR_HALF
    yaw = _yaw(rng)
    set_at_rest(env, can, [xy[0], xy[1], floor - can.bottom_offset[2] + 0.001], yaw)


def place_square_nut(env, rng: np.random.Generator) -> None:
    nut = env.nuts[env.nut_id]
    x = env.table_offset[0] + rng.uniform(*NUT_X_RANGE)
    y = env.table_offset[1] + rng.uniform(*NUT_Y_RANGE)
    yaw = _yaw(rng)
    set_at_rest(env, nut, [x, y, env.table_offset[2] + NUT_HALF + 0.001], yaw)


#: the re-placement of each task (the part of `robosuite/<Task>` after the slash)
PLACERS: dict[str, Callable[[object, np.random.Generator], None]] = {
    "Lift": place_lift,
    "Stack": place_stack,
    "PickPlaceCan": place_can,
    "NutAssemblySquare": place_square_nut,
}


def replace_objects(env, task: str, rng: np.random.Generator) -> None:
    """New seeded start poses for `task`'s objects, at rest; the sim recomputed."""
    PLACERS[task](env, rng)
    env.sim.forward()
