"""A simulated robot environment: reach a target with MuJoCo's Reacher arm.

The agent is a policy, not a chat model: it connects to the `robot` capability (a
WebSocket reached through hud's tunnel), reads the contract and observations, and sends
actions. Grading reads the simulator's own record of the episode the agent ran.

    hud eval env.py --group 8            # host side, with hud.robot.RobotAgent(policy)
"""

from __future__ import annotations

from typing import Any

from hud import Environment

# Eight independent simulators, so a GRPO group of 8 runs at once in one container.
env = Environment(name="robot-reach", concurrency=8)
robot = env.gym("Reacher-v5", slots=8)


def within(tolerance: float):
    """Success test: the fingertip is within `tolerance` metres of the target."""

    def reached(obs: dict[str, Any], info: dict[str, Any]) -> bool:
        return -float(info["reward_dist"]) < tolerance

    return reached


@env.template()
async def reach(seed: int = 0, max_steps: int = 50, tolerance: float = 0.01):
    """Move the Reacher fingertip onto the target within `max_steps` control steps."""
    episode = robot.reserve(seed=seed, max_steps=max_steps, success=within(tolerance))
    # the agent's answer is its own summary; the grade trusts only the simulator's record
    yield episode.prompt(
        f"Drive the two-joint arm so its fingertip is within {tolerance * 100:g} cm of the "
        f"target, within {max_steps} steps at {robot.contract.control_hz:g} Hz."
    )
    outcome = await episode.result()
    distance = outcome.info.get("reward_dist")
    yield {
        "score": 1.0 if outcome.success else 0.0,
        "steps": outcome.steps,
        "success_step": outcome.success_step,
        "status": outcome.status,
        "final_distance": None if distance is None else -float(distance),
    }


tasks = [reach(seed=s) for s in range(4)]
