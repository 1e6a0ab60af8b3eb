"""`RobotAgent`: run any policy callable against a robot capability, as a hud agent.

    agent = RobotAgent(ReacherController())
    job = await Taskset(tasks).run(agent, group=8)

A policy maps an observation dict (feature name → numpy array) to an action: an array
(when the contract has a single action feature), a dict of named arrays, or a chunk
(the same with a leading time axis, executed until the episode ends). It may be a plain
function or async, and may have `reset(contract)`, called before each episode.

The harness connects through `run.tunnel(binding)` with the episode ticket the template
put in the start frame, steps until the episode is terminated or truncated (or
`max_steps`), records the contract, every `record_every`-th step and the end to the
trace, and answers with a summary. The template grades from the simulator's own record
of the episode, never from this answer.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

from hud.robot.client import RobotClient, RobotServerError
from hud.robot.contract import Contract

Policy = Callable[[dict[str, np.ndarray]], Any]
Recorder = Callable[..., None]
#: a policy whose actions are refused this many times in a row ends the episode
MAX_REJECTED = 3


def as_action(contract: Contract, action: Any) -> dict[str, Any]:
    """A policy's output as a named action map.

    Raises:
        TypeError: a bare array when the contract has several action features.
    """
    if isinstance(action, dict):
        return action
    names = list(contract.actions())
    if len(names) != 1:
        raise TypeError(f"the policy returned a bare {type(action).__name__} but the contract "
                        f"has action features {names}; return a dict of them")
    return {names[0]: action}


def _small(info: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in info.items() if isinstance(v, (bool, int, float, str, type(None)))}


async def run_episode(client: RobotClient, policy: Policy, *, max_steps: int | None = None,
                      record: Recorder | None = None, record_every: int = 10) -> dict[str, Any]:
    """Drive one episode on a connected client; return its summary.

    Raises:
        InfraError: the connection broke.
        Exception: whatever the policy raised.
    """
    assert client.contract is not None
    contract = client.contract
    reset = getattr(policy, "reset", None)
    if callable(reset):
        reset(contract)
    summary: dict[str, Any] = {"episode": client.hello.get("episode"), "steps": 0,
                               "total_reward": 0.0, "terminated": False, "truncated": False,
                               "success": None, "rejected": 0, "stop_reason": "ended"}
    frame = client.last
    rejected_in_a_row = 0
    while not (frame.get("terminated") or frame.get("truncated")):
        if max_steps is not None and summary["steps"] >= max_steps:
            summary["stop_reason"] = "max_steps"
            break
        action = policy(frame["obs"])
        if inspect.isawaitable(action):
            action = await action
        try:
            frame = await client.step(as_action(contract, action))
        except RobotServerError as exc:
            summary["rejected"] += 1
            rejected_in_a_row += 1
            if record is not None:
                record("robot.error", step=summary["steps"], error=str(exc))
            if rejected_in_a_row >= MAX_REJECTED:
                summary["stop_reason"] = "rejected"
                break
            continue
        rejected_in_a_row = 0
        before = summary["steps"]
        summary["steps"] = frame.get("step", before + 1)
        summary["total_reward"] += frame.get("reward") or 0.0
        info = frame.get("info") or {}
        if "success" in info:
            summary["success"] = bool(info["success"]) or bool(summary["success"])
        done = frame.get("terminated") or frame.get("truncated")
        if record is not None and (done or summary["steps"] // record_every > before // record_every):
            record("robot.step", step=summary["steps"], reward=frame.get("reward"),
                   terminated=frame.get("terminated"), truncated=frame.get("truncated"),
                   info=_small(info))
    summary["terminated"] = bool(frame.get("terminated"))
    summary["truncated"] = bool(frame.get("truncated"))
    return summary


class RobotAgent:
    """A hud agent that runs `policy` on the robot capability `binding`.

    Args:
        policy: observation dict → action (see the module docstring).
        binding: the capability's binding name.
        max_steps: stop after this many steps (also bounded by the eval's max_steps).
        record_every: trace every n-th step (and always the last).
        timeout: seconds to wait for any one server frame.
        name: the agent's name in jobs and traces (default: the policy's class name).
    """

    def __init__(self, policy: Policy, *, binding: str = "robot", max_steps: int | None = None,
                 record_every: int = 10, timeout: float = 60.0, name: str | None = None) -> None:
        self.policy = policy
        self.binding = binding
        self.max_steps = max_steps
        self.record_every = max(1, record_every)
        self.timeout = timeout
        self.name = name or f"robot:{getattr(policy, 'name', None) or type(policy).__name__}"

    async def __call__(self, run: Any) -> dict[str, Any]:
        """Run one episode for this rollout and answer with its summary.

        Raises:
            ConfigError: the environment has no binding of that name.
            InfraError: the tunnel or the server failed.
        """
        from hud.errors import ConfigError

        if self.binding not in run.bindings:
            raise ConfigError(f"no robot binding {self.binding!r}; the environment offers "
                              f"{sorted(run.bindings) or 'none'}")
        ticket = run.start_frame.get(self.binding) or {}
        limits = [n for n in (self.max_steps, run.max_steps) if n]
        reader, writer = await run.tunnel(self.binding)
        client = await RobotClient.connect(reader, writer, episode=ticket.get("episode"),
                                           timeout=self.timeout)
        try:
            assert client.contract is not None
            run.record("robot.connect", robot_type=client.contract.robot_type,
                       episode=client.hello.get("episode"), slot=client.hello.get("slot"),
                       actions=sorted(client.contract.actions()))
            summary = await run_episode(client, self.policy,
                                        max_steps=min(limits) if limits else None,
                                        record=run.record, record_every=self.record_every)
        finally:
            await client.close()
        run.stop_reason = summary.pop("stop_reason")
        run.record("robot.end", **summary)
        return summary
