"""Red team on the one multiplexed exec per container: an agent that fills the container's
pids limit must not be able to end the rollout's control channel (an `infra_error` is not
counted in the mean reward, and is retried: a lever for an agent that is failing)."""

from __future__ import annotations

import asyncio
import time

import pytest

from hud.errors import HudError
from hud.eval.exec_transport import ExecTransport
from tests.docker_fixtures import docker_cli

pytestmark = pytest.mark.docker

#: what the agent runs (as uid 1000): sleepers until fork fails at the pids limit
FILL_PIDS = "for i in $(seq 1500); do sleep 600 & done 2>/dev/null; wait"


def _wait_full(container: str, limit: int = 1024) -> None:
    """Until the container's process count reaches its pids limit (bounded)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        done = docker_cli("stats", "--no-stream", "--format", "{{.PIDs}}", container)
        if done.stdout.strip().isdigit() and int(done.stdout.strip()) >= limit - 2:
            return
        time.sleep(1)
    raise AssertionError(f"{container}: the agent's sleepers did not reach the pids limit")


async def test_a_full_pids_table_does_not_end_the_control_channel(template_image, secure) -> None:
    """With the pids limit filled by the agent, two tunnel opens at once leave control alive.

    The agent acts only through tunnels, and the first tunnel starts SSH on the connection
    (hud.serve.upgrade, which starts its threads then): so the agent can fill the table
    only after that, which is the order here (a tunnel, then the filling, then two more)."""
    _, tag = template_image("coding")
    box = secure.run(tag)
    transport = ExecTransport(box)
    channel = await transport.channel(120)
    try:
        name = transport.hello["bindings"][0]["name"]
        _, first = await transport.tunnel(name)  # the agent's first tool use
        first.close()
        docker_cli("exec", "-d", "-u", "agent", box, "bash", "-c", FILL_PIDS, check=True)
        _wait_full(box)
        opened = await asyncio.gather(transport.tunnel(name), transport.tunnel(name),
                                      return_exceptions=True)
        for result in opened:  # a refused open is fine; only the connection must survive
            assert not isinstance(result, BaseException) or isinstance(result, HudError), result
        listing = await channel.call("tasks.list", timeout=60)
        assert listing["tasks"]
    finally:
        await channel.close()
        await transport.close()
