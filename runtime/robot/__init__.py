"""hud.robot: a simulated robot as a capability — observations and actions over WebSocket.

    from hud.robot import RobotCapability
    robot = env.add_capability(RobotCapability.gym("Reacher-v5", slots=8))

    @env.template()
    async def reach(seed: int = 0):
        episode = robot.reserve(seed=seed, max_steps=50)
        answer = yield episode.prompt("Move the fingertip onto the target.")
        outcome = await episode.result()
        yield 1.0 if outcome.success else 0.0

    # host side
    job = await Taskset(tasks).run(RobotAgent(ReacherController()), group=8)

Needs the `robot` extra (`pip install hud-python[robot]`: gymnasium[mujoco], websockets,
msgpack, numpy). Names are exported lazily so that importing one piece does not import
the others (the codec alone needs no gymnasium).
"""

from __future__ import annotations

import importlib
from typing import Any

# public name -> defining private module
_EXPORTS: dict[str, str] = {
    "ActionError": "hud.robot.contract",
    "CodecError": "hud.robot.codec",
    "Contract": "hud.robot.contract",
    "Episode": "hud.robot.episodes",
    "EpisodeBook": "hud.robot.episodes",
    "Feature": "hud.robot.contract",
    "GymBridge": "hud.robot.bridge",
    "Outcome": "hud.robot.episodes",
    "RandomPolicy": "hud.robot.policies",
    "ReacherController": "hud.robot.policies",
    "RobotAgent": "hud.robot.agent",
    "RobotCapability": "hud.robot.server",
    "RobotClient": "hud.robot.client",
    "RobotServerError": "hud.robot.client",
    "SimBridge": "hud.robot.bridge",
    "StepResult": "hud.robot.bridge",
    "contract_from_gym": "hud.robot.contract",
    "decode": "hud.robot.codec",
    "encode": "hud.robot.codec",
    "run_episode": "hud.robot.agent",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'hud.robot' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
