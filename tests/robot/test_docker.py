"""The robot template in docker placement: its requirements are installed offline by
`hud build`, and the policy drives the simulator through the exec tunnel."""

from __future__ import annotations

import pytest

from hud.eval import Taskset
from tests.docker_fixtures import base_layer, template_image  # noqa: F401

pytestmark = pytest.mark.docker


@pytest.fixture
def robot_image(template_image):
    """The robot template, built once per session (tests/eval/test_image_source.py too)."""
    return template_image("robot")


async def test_controller_reaches_and_random_does_not_in_docker(robot_image) -> None:
    """Group of 8 per policy in fresh containers: the controller ~1.0, random clearly lower."""
    from hud.robot import RandomPolicy, ReacherController, RobotAgent

    folder, tag = robot_image
    tasks = Taskset.from_source(folder)
    oracle = await tasks.filter([tasks.tasks[0].slug]).run(
        RobotAgent(ReacherController()), group=8, runtime=f"docker:{tag}", max_concurrent=4)
    assert not oracle.errors, [r.error for r in oracle.errors]
    assert oracle.reward is not None and oracle.reward >= 0.9
    random = await tasks.filter([tasks.tasks[0].slug]).run(
        RobotAgent(RandomPolicy(seed=1)), group=8, runtime=f"docker:{tag}", max_concurrent=4)
    assert not random.errors, [r.error for r in random.errors]
    assert random.reward is not None and random.reward <= oracle.reward - 0.5
