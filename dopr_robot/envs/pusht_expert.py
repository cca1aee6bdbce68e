"""PushT's expert: plans pushes with gym-pusht's own simulator, then executes them closed-loop.

gym-pusht ships no expert (diffusion_policy's demonstrations are human). PushT's block is
quasi-static (it moves only while pushed), so a push is a macro: approach a contact point on the
T's boundary from outside, then drive the agent `depth` pixels inward along the normal. Planning:

1. every candidate contact (points along the T's outer edges, inward normals) × push depth is
   simulated from the observed state in a private copy of the env's physics (pymunk, same
   geometry, PD gains and rates), starting with the agent at the pre-contact point;
2. candidates are ranked by the mean distance of the T's eight corners to the goal's — position
   and angle in one number, in pixels — and the best one the agent can reach without touching
   the block (a straight line, or via one waypoint on a circle around it, after backing off the
   block) is executed;
3. depths shrink as the block nears the goal (80 px far away, 1 px at the end), which is what
   reaching > 95 % coverage (about 1-2 px) needs.

The expert is closed-loop: it replans after every push and whenever the block is moved under it
(noise, or PushT's chain re-placing it). Actions are absolute agent targets in pixels, in
[0, 512]² like the env's; the action noise σ of `collect --noise` is in pixels too.
"""

from __future__ import annotations

import numpy as np
from shapely.geometry import LineString, Point, Polygon
from shapely.ops import nearest_points, unary_union

from .experts import Expert

GOAL_POSE = np.array([256.0, 256.0, np.pi / 4])  # gym-pusht's fixed goal (x, y, angle)
AGENT_RADIUS = 15.0
# the T: a 120 × 30 bar and a 30 × 90 stem, in the block's frame (gym-pusht's add_tee, scale 30)
T_RECTANGLES = (
    np.array([(-60.0, 30.0), (60.0, 30.0), (60.0, 0.0), (-60.0, 0.0)]),
    np.array([(-15.0, 30.0), (-15.0, 120.0), (15.0, 120.0), (15.0, 30.0)]),
)
T_CORNERS = np.vstack(T_RECTANGLES)
#: push depths (px) by distance to the goal (mean corner error, px): coarse far, fine near
DEPTHS = ((40.0, (10, 25, 50, 80)), (12.0, (3, 8, 20, 40)), (0.0, (1, 2, 4, 8, 15)))
#: candidate routes: how far to back off along the push normal, and waypoint circles (px)
BACK_OFFS = (0, 25, 50, 80, 110)
CIRCLE_RADII = (100, 130, 160)
CIRCLE_ANGLES = np.linspace(0, 2 * np.pi, 24, endpoint=False)
#: candidates (best first) whose route is searched before giving up on a plan
ROUTES_TRIED = 40


def rotation(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s], [s, c]])


def to_world(points: np.ndarray, pose: np.ndarray) -> np.ndarray:
    return points @ rotation(pose[2]).T + pose[:2]


GOAL_CORNERS = to_world(T_CORNERS, GOAL_POSE)


def goal_error(pose: np.ndarray) -> float:
    """Mean distance (px) of the T's corners to the goal's: 0 at the goal, ~1-2 at success."""
    return float(np.mean(np.linalg.norm(to_world(T_CORNERS, pose) - GOAL_CORNERS, axis=1)))


def _contacts() -> list[tuple[np.ndarray, np.ndarray]]:
    """Points on the T's outer boundary (block frame) with their inward normals."""
    shapes = [Polygon(r) for r in T_RECTANGLES]
    found = []
    for i, rectangle in enumerate(T_RECTANGLES):
        centre = rectangle.mean(axis=0)
        for k in range(4):
            a, b = rectangle[k], rectangle[(k + 1) % 4]
            edge = b - a
            outward = np.array([edge[1], -edge[0]]) / np.linalg.norm(edge)
            if np.dot((a + b) / 2 - centre, outward) < 0:
                outward = -outward
            for fraction in np.linspace(0.1, 0.9, max(2, int(np.linalg.norm(edge) // 20))):
                point = a + fraction * edge
                if shapes[1 - i].buffer(0.5).contains(Point(point + outward)):
                    continue  # on the joint between bar and stem: not reachable
                found.append((point, -outward))
    return found


CONTACTS = _contacts()


class PushSimulator:
    """A private gym-pusht physics world, set from an observed state and stepped like the env."""

    def __init__(self):
        from gym_pusht.envs.pusht import PushTEnv

        self.env = PushTEnv(obs_type="state", render_mode=None)
        self.env._setup()
        self.k_p, self.k_v, self.dt = self.env.k_p, self.env.k_v, self.env.dt
        self.substeps = int(1 / (self.dt * self.env.metadata["render_fps"]))

    def set(self, agent: np.ndarray, pose: np.ndarray) -> None:
        env = self.env
        env.agent.position, env.agent.velocity = tuple(agent), (0.0, 0.0)
        env.block.angle = float(pose[2])  # angle first: the block turns about its centre of mass
        env.block.position = tuple(pose[:2])
        env.block.velocity, env.block.angular_velocity = (0.0, 0.0), 0.0
        env.space.reindex_shapes_for_body(env.block)

    def step(self, target: np.ndarray) -> None:
        """One control step: gym-pusht's PD law and substeps, without its reward computation."""
        agent = self.env.agent
        for _ in range(self.substeps):
            position, velocity = np.array(agent.position), np.array(agent.velocity)
            acceleration = self.k_p * (target - position) - self.k_v * velocity
            agent.velocity = tuple(velocity + acceleration * self.dt)
            self.env.space.step(self.dt)

    def pose(self) -> np.ndarray:
        block = self.env.block
        return np.array([block.position.x, block.position.y, block.angle])


class PushTExpert(Expert):
    """Simulated-push planner for gym_pusht/PushT-v0; see the module docstring."""

    name = "pusht_push_planner"
    action_low, action_high = 0.0, 512.0

    def __init__(self, noise: float = 0.0, seed: int | None = None):
        super().__init__(noise, seed)
        self.simulator = PushSimulator()
        self.phases: list[tuple[np.ndarray, float, int]] = []
        self.planned_pose: np.ndarray | None = None
        self.phase_steps = 0

    def reset(self, seed: int | None = None) -> None:
        super().reset(seed)
        self.phases, self.planned_pose, self.phase_steps = [], None, 0

    def clean_action(self, state: np.ndarray) -> np.ndarray:
        agent, pose = state[:2], np.asarray(state[2:5], dtype=np.float64)
        moved = self.planned_pose is not None and _moved(pose, self.planned_pose)
        if moved and self._approaching():
            self.phases = []  # the block moved under the plan (noise, or re-placed): plan again
        while self.phases:
            target, tolerance, limit = self.phases[0]
            if np.linalg.norm(agent - target) < tolerance or self.phase_steps >= limit:
                self.phases.pop(0)
                self.phase_steps = 0
                continue
            break
        if not self.phases:
            self.phases = self.plan(agent, pose)
            self.planned_pose, self.phase_steps = pose, 0
        self.phase_steps += 1
        return self.phases[0][0]

    def _approaching(self) -> bool:
        return len(self.phases) > 1

    def plan(self, agent: np.ndarray, pose: np.ndarray) -> list[tuple[np.ndarray, float, int]]:
        """The phases (target, tolerance px, step limit) of the best reachable push."""
        error = goal_error(pose)
        depths = next(d for threshold, d in DEPTHS if error > threshold)
        block = unary_union([Polygon(to_world(r, pose)) for r in T_RECTANGLES])
        ranked = []
        for point, normal in CONTACTS:
            contact = to_world(point[None], pose)[0]
            inward = rotation(pose[2]) @ normal
            start = contact - inward * (AGENT_RADIUS + 6)
            if block.distance(Point(start)) < AGENT_RADIUS + 3:
                continue  # the agent does not fit there (inside the T's corner)
            for depth in depths:
                end = contact + inward * (depth - AGENT_RADIUS)
                steps = int(np.clip(depth / 10, 2, 8)) + 1
                self.simulator.set(start, pose)
                for _ in range(steps):
                    self.simulator.step(end)
                predicted = goal_error(self.simulator.pose())
                if predicted < error - 0.05:
                    ranked.append((predicted, len(ranked), start, end, steps, inward))
        ranked.sort(key=lambda row: row[:2])
        for _, _, start, end, steps, inward in ranked[:ROUTES_TRIED]:
            waypoints = route(agent, start, inward, pose)
            if waypoints is not None:
                approach = [(w, 6.0, 15) for w in waypoints[:-1]] + [(waypoints[-1], 2.0, 15)]
                return [*approach, (end, 1.0, steps)]
        # nothing reachable improves the pose: step back to a clear point and try from there
        return [(w, 6.0, 15) for w in _retreat(agent, pose, self.rng)]


def _moved(pose: np.ndarray, planned: np.ndarray) -> bool:
    turned = abs((pose[2] - planned[2] + np.pi) % (2 * np.pi) - np.pi)
    return bool(np.linalg.norm(pose[:2] - planned[:2]) > 3.0 or turned > 0.05)


def _clear_of(block, a: np.ndarray, b: np.ndarray) -> bool:
    return not block.intersects(LineString([a, b]))


def route(agent: np.ndarray, start: np.ndarray, inward: np.ndarray, pose: np.ndarray):
    """Waypoints from the agent to a push's start that keep the agent off the block, or None."""
    solid = unary_union([Polygon(to_world(r, pose)) for r in T_RECTANGLES])
    keep_out = solid.buffer(AGENT_RADIUS + 2)
    first: list[np.ndarray] = []
    if keep_out.contains(Point(agent)):  # touching the block after a push: back off first
        nearest = np.array(nearest_points(solid.boundary, Point(agent))[0].coords[0])
        away = agent - nearest
        length = np.linalg.norm(away)
        centre = to_world(T_CORNERS, pose).mean(axis=0)
        away = away / length if length > 1e-6 else (agent - centre) / np.linalg.norm(agent - centre)
        agent = nearest + away * (AGENT_RADIUS + 6)
        first = [agent]
    circle = _circle(pose)
    best = None
    for back_off in BACK_OFFS:
        entry = start - inward * back_off
        if back_off and not _clear_of(keep_out, entry, start):
            continue
        legs = [entry] if back_off == 0 else [entry, start]
        if _clear_of(keep_out, agent, entry):
            candidate = (np.linalg.norm(entry - agent) + back_off, legs)
        else:
            candidate = None
            for waypoint in circle:
                if _clear_of(keep_out, agent, waypoint) and _clear_of(keep_out, waypoint, entry):
                    length = np.linalg.norm(waypoint - agent) + np.linalg.norm(entry - waypoint)
                    if candidate is None or length + back_off < candidate[0]:
                        candidate = (length + back_off, [waypoint, *legs])
        if candidate is not None and (best is None or candidate[0] < best[0]):
            best = candidate
    return None if best is None else [*first, *best[1]]


def _circle(pose: np.ndarray) -> list[np.ndarray]:
    centre = to_world(T_CORNERS, pose).mean(axis=0)
    return [
        np.clip(centre + radius * np.array([np.cos(a), np.sin(a)]), 20.0, 492.0)
        for radius in CIRCLE_RADII
        for a in CIRCLE_ANGLES
    ]


def _retreat(agent: np.ndarray, pose: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    """A clear waypoint on the circle around the block, drawn from the expert's generator."""
    keep_out = unary_union([Polygon(to_world(r, pose)) for r in T_RECTANGLES]).buffer(
        AGENT_RADIUS + 2
    )
    clear = [w for w in _circle(pose) if not keep_out.contains(Point(w))]
    return [clear[int(rng.integers(len(clear)))] if clear else np.array([256.0, 256.0])]
