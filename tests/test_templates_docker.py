"""Every shipped template, built into an image and run in docker placement: the oracle
grades 1.0 and nop 0.0. A provider harness (Claude, against a local fake of its API)
fixes the coding template's bug over ssh inside a real container."""

from __future__ import annotations

import pytest

from hud.agents import NopAgent, OracleAgent
from hud.eval import DockerPlacement, Taskset
from tests.docker_fixtures import base_layer, template_image  # noqa: F401

pytestmark = pytest.mark.docker

# robot: its oracle is a policy (hud.robot.RobotAgent + ReacherController), see tests/robot
CHAT_TEMPLATES = ("blank", "coding", "browser", "desktop")


@pytest.mark.parametrize("template", CHAT_TEMPLATES)
async def test_oracle_one_nop_zero_in_docker(template: str, template_image) -> None:
    """oracle → 1.0 and nop → 0.0 on every task of the template, a container per rollout."""
    folder, tag = template_image(template)
    tasks = Taskset.from_source(folder)
    placement = DockerPlacement(tag)
    # no retries: a shipped template's oracle never meets an infra error. The desktop's did,
    # once in two rollouts, read as "slow on a loaded machine" and re-run away for a while:
    # its app's window was lost when mapped while openbox was still starting
    # (hud.capabilities.desktop.wm_state). Two rollouts a task, two containers at once
    # (starting together is what exposed it).
    oracle = await tasks.run(OracleAgent(), group=2, runtime=placement, max_concurrent=2)
    assert oracle.reward == 1.0, [r.error for r in oracle.runs]
    assert all(r.status == "completed" for r in oracle.runs), [r.error for r in oracle.runs]
    nop = await tasks.run(NopAgent(), runtime=placement, max_concurrent=2)
    assert nop.reward == 0.0, [r.error for r in nop.runs]
    assert all(r.status == "completed" for r in nop.runs), [r.error for r in nop.runs]


async def test_claude_fixes_the_bug_over_ssh_in_a_container(template_image) -> None:
    """Scripted Claude tool calls run over ssh in the container; the fix grades 1.0."""
    from tests.agents.providers import Anthropic, serve

    folder, tag = template_image("coding")
    wire = Anthropic("anthropic")
    for api in serve():
        api.script = [
            (200, wire.tool_call("c1", "bash", {"command": "grep -n 'mid + 1' stats/core.py"})),
            (200, wire.tool_call("c2", wire.edit_tool, {
                "command": "str_replace", "path": "stats/core.py",
                "old_str": "ordered[mid + 1]", "new_str": "ordered[mid - 1]"})),
            (200, wire.answer("median used the wrong neighbour")),
        ]
        job = await Taskset.from_source(folder).run(wire.agent(api), runtime=f"docker:{tag}")
        run = job.runs[0]
        assert (run.status, run.reward) == ("completed", 1.0), run.error
        grep, = wire.tool_results(api.requests[1])
        assert "return (ordered[mid] + ordered[mid + 1]) / 2" in grep["text"]
        assert [e["type"] for e in run.trace].count("tool_result") == 2
