"""The robot loop through a real `hud serve` and `hud connect --tunnel robot` processes.

This is the docker placement's transport without Docker: every byte goes through the
pipes of a `hud connect` subprocess, exactly as `docker exec -i ... hud connect` does.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import sys
from pathlib import Path
from typing import Any

import pytest

from hud.clients.channel import Channel
from hud.eval import Placement, Taskset
from hud.eval.placement import Lease, Streams
from hud.robot import RandomPolicy, ReacherController, RobotAgent
from hud.serve.loader import load_environment

from .conftest import TEMPLATE


class ExecPlacement(Placement):
    """Reach a running `hud serve` through `hud connect` subprocesses (docker exec's seam)."""

    name = "exec"

    def __init__(self, socket_path: Path) -> None:
        self.env = {**os.environ, "HUD_SOCKET": str(socket_path)}
        self.procs: list[asyncio.subprocess.Process] = []

    async def _connect(self, *extra: str) -> Streams:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "hud.cli.main", "connect", *extra, env=self.env,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=1 << 20)
        self.procs.append(proc)
        assert proc.stdout is not None and proc.stdin is not None
        return proc.stdout, proc.stdin  # type: ignore[return-value]

    async def open(self, job_id: str, rollout_id: str) -> Lease:
        reader, writer = await self._connect()

        async def tunnel(name: str) -> Streams:
            return await self._connect("--tunnel", name)

        async def release() -> None:
            return None

        return Lease(Channel(reader, writer, describe="hud connect"), tunnel, release, {})

    async def shutdown(self) -> None:
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await asyncio.wait_for(proc.wait(), 10)


@pytest.fixture
def served(start_daemon: Any, runs_dir: Path) -> Any:
    """The robot template served by a real `hud serve` subprocess."""
    return start_daemon(str(TEMPLATE))


@pytest.fixture(scope="module")
def reach() -> Any:
    return load_environment(str(TEMPLATE)).templates["reach"]


async def test_oracle_and_random_through_hud_connect_tunnels(served: Any, reach: Any) -> None:
    """Over exec-style pipes, a group of 8: the oracle scores ~1.0, random clearly lower."""
    means = {}
    for policy in (ReacherController(), RandomPolicy(seed=0)):
        job = await Taskset([reach(seed=1)]).run(RobotAgent(policy), group=8,
                                                 runtime=ExecPlacement(served.socket_path))
        assert [r.status for r in job.runs] == ["completed"] * 8, [r.error for r in job.runs]
        means[policy.name] = statistics.mean(r.reward or 0.0 for r in job.runs)
    assert means["reacher-controller"] >= 0.95 and means["random"] <= 0.5
