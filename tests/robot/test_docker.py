"""The robot template in docker placement: its requirements are installed offline by
`hud build`, and the policy drives the simulator through the exec tunnel."""

from __future__ import annotations

import pytest

from hud.eval import Taskset
from tests.docker_fixtures import base_layer, docker_cli, unique_tag  # noqa: F401

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def robot_image(tmp_path_factory: pytest.TempPathFactory, base_layer: str):
    from hud.build.env_image import build_env
    from hud.build.scaffold import scaffold

    folder, _ = scaffold(tmp_path_factory.mktemp("robot") / "reach", "robot")
    tag = unique_tag("hud-test-robot")
    build_env(folder, tag=tag)
    yield folder, tag
    docker_cli("rmi", "-f", tag, timeout=120)


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
