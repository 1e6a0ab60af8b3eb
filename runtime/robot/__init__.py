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

Sides: `server` (the capability), `bridge` (the simulator behind it) and `episodes` run in
the container; `client`, `agent` and `policies` run on the host; `codec` and `contract` are
the wire both speak.

Needs the `robot` extra (`pip install hud-python[robot]`: gymnasium[mujoco], websockets,
msgpack, numpy). Names are exported lazily so that importing one piece does not import
the others (the codec alone needs no gymnasium).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hud import lazy

if TYPE_CHECKING:  # what a type checker sees; at run time `__getattr__` imports on first use
    from hud.robot.agent import RobotAgent as RobotAgent
    from hud.robot.agent import run_episode as run_episode
    from hud.robot.bridge import GymBridge as GymBridge
    from hud.robot.bridge import SimBridge as SimBridge
    from hud.robot.bridge import StepResult as StepResult
    from hud.robot.client import RobotClient as RobotClient
    from hud.robot.client import RobotServerError as RobotServerError
    from hud.robot.codec import CodecError as CodecError
    from hud.robot.codec import decode as decode
    from hud.robot.codec import encode as encode
    from hud.robot.contract import ActionError as ActionError
    from hud.robot.contract import Contract as Contract
    from hud.robot.contract import Feature as Feature
    from hud.robot.contract import contract_from_gym as contract_from_gym
    from hud.robot.episodes import Episode as Episode
    from hud.robot.episodes import EpisodeBook as EpisodeBook
    from hud.robot.episodes import Outcome as Outcome
    from hud.robot.policies import RandomPolicy as RandomPolicy
    from hud.robot.policies import ReacherController as ReacherController
    from hud.robot.server import RobotCapability as RobotCapability

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

__all__ = [
    "ActionError",
    "CodecError",
    "Contract",
    "Episode",
    "EpisodeBook",
    "Feature",
    "GymBridge",
    "Outcome",
    "RandomPolicy",
    "ReacherController",
    "RobotAgent",
    "RobotCapability",
    "RobotClient",
    "RobotServerError",
    "SimBridge",
    "StepResult",
    "contract_from_gym",
    "decode",
    "encode",
    "run_episode",
]

__getattr__, __dir__ = lazy.exports(__name__, _EXPORTS, globals())
