"""Example policies: a scripted Reacher controller (the oracle) and a random baseline.

`ReacherController` solves gymnasium's Reacher (v4/v5) reach task without learning:
two-link inverse kinematics gives the joint angles that put the fingertip on the
target (of the two elbow solutions, the one closer to the current pose), and a
proportional-derivative law on the joint errors drives there. Reacher-v5's
observation is

    [cos q0, cos q1, sin q0, sin q1, target x, target y, q0', q1', (tip - target) x, y]

and its links are 0.1 and 0.11 long. From any start it reaches within 1 cm in under 20
steps (0.4 s of simulated time); a random policy almost never does.

Policies are shared by every concurrent rollout of an eval, so these keep no
per-episode state.
"""

from __future__ import annotations

import math

import numpy as np

from hud.robot.contract import Contract

LINK0, LINK1 = 0.1, 0.11


def _wrap(angle: float) -> float:
    return (angle + math.pi) % (2 * math.pi) - math.pi


class ReacherController:
    """Inverse kinematics + PD control for Reacher: the oracle for reach tasks.

    Args:
        kp: proportional gain on the joint-angle error (radians → normalised torque).
        kd: derivative gain on the joint velocities.
        key: the observation feature holding Reacher's state vector.
    """

    name = "reacher-controller"

    def __init__(self, kp: float = 5.0, kd: float = 0.2, key: str = "observation.state") -> None:
        self.kp, self.kd, self.key = kp, kd, key

    def joint_error(self, state: np.ndarray) -> np.ndarray:
        """The joint-angle error to the target pose (the nearer elbow solution)."""
        q0 = math.atan2(state[2], state[0])
        q1 = math.atan2(state[3], state[1])
        tx, ty = float(state[4]), float(state[5])
        cos_elbow = (tx * tx + ty * ty - LINK0**2 - LINK1**2) / (2 * LINK0 * LINK1)
        elbow = math.acos(max(-1.0, min(1.0, cos_elbow)))
        best: np.ndarray | None = None
        for q1_goal in (elbow, -elbow):
            q0_goal = math.atan2(ty, tx) - math.atan2(LINK1 * math.sin(q1_goal),
                                                      LINK0 + LINK1 * math.cos(q1_goal))
            # the elbow joint is limited to ±3 rad: never ask it to wrap around
            error = np.array([_wrap(q0_goal - q0), q1_goal - q1])
            if best is None or np.abs(error).sum() < np.abs(best).sum():
                best = error
        assert best is not None
        return best

    def __call__(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        state = np.asarray(obs[self.key], dtype=np.float64)
        torque = self.kp * self.joint_error(state) - self.kd * state[6:8]
        return np.clip(torque, -1.0, 1.0).astype(np.float32)


class RandomPolicy:
    """Uniform random actions within the contract's bounds: the baseline.

    Args:
        seed: seed of the random generator (shared by every episode it plays).
        low: bound for action dimensions the contract gives no stats for.
        high: see `low`.
    """

    name = "random"

    def __init__(self, seed: int | None = None, low: float = -1.0, high: float = 1.0) -> None:
        self.rng = np.random.default_rng(seed)
        self.low, self.high = low, high
        self.contract: Contract | None = None

    def reset(self, contract: Contract) -> None:
        self.contract = contract

    def __call__(self, obs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self.contract is None:
            raise RuntimeError("RandomPolicy needs reset(contract) before the first action "
                               "(RobotAgent calls it)")
        action = {}
        for name, feature in self.contract.actions().items():
            stats = feature.stats or {}
            low = np.asarray(stats.get("min", self.low), dtype=np.float64)
            high = np.asarray(stats.get("max", self.high), dtype=np.float64)
            shape = tuple(feature.shape)
            if low.size == math.prod(shape):
                low, high = low.reshape(shape), high.reshape(shape)
            sample = self.rng.uniform(low, high, size=shape)
            if np.dtype(feature.dtype).kind in "iub":
                sample = np.rint(sample)
            action[name] = sample.astype(feature.dtype)
        return action
