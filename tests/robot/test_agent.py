"""RobotAgent end to end in-process: the robot template, a local placement, groups of 8."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hud.environment import Environment, Template
from hud.eval import Job, Taskset
from hud.robot import RandomPolicy, ReacherController, RobotAgent
from hud.serve.loader import load_environment

from .conftest import TEMPLATE

GROUP = 8


@pytest.fixture(scope="module")
def robot_env() -> Environment:
    """The `hud init --template robot` scaffold, loaded as `hud serve` would."""
    return load_environment(str(TEMPLATE))


@pytest.fixture
def reach(robot_env: Environment, runs_dir: Path) -> Template:
    return robot_env.templates["reach"]


async def _run(reach: Template, policy: Any, seed: int = 1, **agent: Any) -> Job:
    return await Taskset([reach(seed=seed)]).run(RobotAgent(policy, **agent), group=GROUP,
                                                 runtime="local")


async def test_the_oracle_controller_reaches_in_every_rollout(reach: Template) -> None:
    """Proportional control scores ~1.0 over a group of 8, all graded by the simulator."""
    job = await _run(reach, ReacherController())
    runs = job.runs
    assert [r.status for r in runs] == ["completed"] * GROUP, [r.error for r in runs]
    assert statistics.mean(r.reward or 0.0 for r in runs) >= 0.95
    assert all(r.grade["status"] == "terminated" and r.grade["success_step"] <= 50 for r in runs)


async def test_a_random_policy_scores_clearly_lower(reach: Template) -> None:
    """The random baseline, same task and group size, stays far below the oracle."""
    job = await _run(reach, RandomPolicy(seed=0))
    assert all(r.status == "completed" for r in job.runs)
    assert statistics.mean(r.reward or 0.0 for r in job.runs) <= 0.5


async def test_grading_trusts_the_simulator_not_the_answer(reach: Template) -> None:
    """An agent that claims success without running the episode scores 0."""

    async def liar(run: Any) -> dict[str, Any]:
        return {"success": True, "total_reward": 100.0}

    job = await Taskset([reach(seed=1)]).run(liar, group=2, runtime="local")
    assert [r.reward for r in job.runs] == [0.0, 0.0]
    assert job.runs[0].grade["status"] == "pending"


async def test_steps_are_recorded_sparsely(reach: Template) -> None:
    """The trace holds the connect, every 10th step, the last step and the end."""
    job = await Taskset([reach(seed=2, max_steps=40)]).run(
        RobotAgent(RandomPolicy(seed=1)), group=1, runtime="local")
    run = job.runs[0]
    kinds = [e["type"] for e in run.trace]
    steps = [e["step"] for e in run.trace if e["type"] == "robot.step"]
    assert "robot.connect" in kinds and "robot.end" in kinds
    assert steps[-1] == run.answer["steps"] and len(steps) <= run.answer["steps"] // 10 + 1


async def test_max_steps_bounds_the_agent(reach: Template) -> None:
    """RobotAgent(max_steps=3) stops after 3 steps and says why."""
    job = await Taskset([reach(seed=3)]).run(RobotAgent(RandomPolicy(seed=2), max_steps=3),
                                             group=1, runtime="local")
    run = job.runs[0]
    assert run.answer["steps"] == 3 and run.stop_reason == "max_steps"


async def test_an_action_chunking_policy_runs_through_the_agent(reach: Template) -> None:
    """A policy returning [2, 2] chunks still reaches (the episode may end mid-chunk)."""
    controller = ReacherController()

    async def chunked(obs: dict[str, np.ndarray]) -> np.ndarray:
        return np.tile(controller(obs), (2, 1))

    job = await _run(reach, chunked)
    assert all(r.status == "completed" for r in job.runs)
    assert statistics.mean(r.reward or 0.0 for r in job.runs) >= 0.95


async def test_a_policy_whose_actions_are_refused_stops_with_a_reason(reach: Template) -> None:
    """Three refused actions in a row end the episode: a result, not a hang."""
    job = await _run(reach, lambda obs: np.zeros(3, np.float32), seed=4)
    run = job.runs[0]
    assert run.status == "completed" and run.reward == 0.0
    assert run.stop_reason == "rejected" and run.answer["rejected"] == 3


async def test_a_missing_binding_is_an_agent_error(reach: Template) -> None:
    """Pointing the agent at a binding the env lacks fails the rollout with the names."""
    job = await Taskset([reach(seed=1)]).run(RobotAgent(ReacherController(), binding="arm"),
                                             group=1, runtime="local")
    assert job.runs[0].status == "agent_error"
    assert "no robot binding 'arm'" in (job.runs[0].error or "")
