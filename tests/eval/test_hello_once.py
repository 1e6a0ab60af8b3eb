"""A rollout says `hello` once: every placement hands over a ready lease carrying the
daemon's answer, counted at real daemons (in-process, and `hud serve` over TCP)."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import pytest

from hud.agents import OracleAgent
from hud.clients.channel import Channel
from hud.environment import Environment
from hud.eval import LocalPlacement, Taskset
from hud.eval.lease import Lease, Placement, Streams
from hud.serve.daemon import Daemon, DaemonConfig
from hud.serve.loader import load_environment
from hud.serve.methods import Conn, SessionMethods
from hud.task import Task
from tests.conftest import ENVS

LETTERS = ENVS / "letters.py"


@pytest.fixture
def hellos(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every `hello` answered by an in-process daemon of this test (its session ids)."""
    answered: list[str] = []
    answer = SessionMethods._hello

    async def counted(self: SessionMethods, conn: Conn, params: Any) -> dict[str, Any]:
        reply = await answer(self, conn, params)
        answered.append(reply["session_id"])
        return reply

    monkeypatch.setattr(SessionMethods, "_hello", counted)
    return answered


async def test_a_local_rollout_says_hello_once(hellos: list[str]) -> None:
    """A group of 2 over 3 tasks in the local placement: 6 rollouts, 6 hellos."""
    job = await Taskset.from_source(LETTERS).run(OracleAgent(), group=2)
    assert [r.status for r in job.runs] == ["completed"] * 6
    assert len(hellos) == 6 and len(set(hellos)) == 6


async def test_a_local_lease_carries_the_daemons_hello(hellos: list[str]) -> None:
    """LocalPlacement.open returns the manifest the daemon answered on the lease's channel."""
    placement = LocalPlacement(load_environment(str(LETTERS)))
    try:
        lease = await placement.open("job", "rollout")
        try:
            assert lease.hello["env"]["name"] == "letter-count"
            assert hellos == [lease.hello["session_id"]]
        finally:
            await lease.close()
    finally:
        await placement.shutdown()


class BarePlacement(Placement):
    """A custom placement that hands over a channel without saying `hello`."""

    name = "bare"

    def __init__(self, env: Environment, path: Path) -> None:
        self.daemon = Daemon(DaemonConfig(socket_path=path, env=env))
        self.path = path
        self.started = asyncio.Lock()

    async def open(self, job_id: str, rollout_id: str) -> Lease:
        async with self.started:
            if self.daemon.server is None:
                await self.daemon.start()
        reader, writer = await asyncio.open_unix_connection(str(self.path))

        async def tunnel(name: str) -> Streams:
            raise AssertionError(f"no tunnels here ({name})")

        async def release() -> None:
            return None

        return Lease(Channel(reader, writer), tunnel, release, {"placement": "bare"})

    async def shutdown(self) -> None:
        await self.daemon.close()


async def test_a_custom_placement_without_hello_gets_one_from_the_rollout(
        hellos: list[str], short_dir: Path) -> None:
    """A lease with no hello (a placement of the user's): the rollout says it, once."""
    env = load_environment(str(LETTERS))
    job = await Taskset.from_source(LETTERS).run(
        OracleAgent(), runtime=BarePlacement(env, short_dir / "bare.sock"))
    assert [r.status for r in job.runs] == ["completed"] * 3 and len(hellos) == 3


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _count_task(tmp_path: Path) -> Taskset:
    """The hellos env's one task, from a file: importing the env here would patch us."""
    path = tmp_path / "tasks.jsonl"
    path.write_text(Task(env="hello-count", id="count").model_dump_json() + "\n")
    return Taskset.from_file(path)


async def _answer(run: Any) -> str:
    return "done"


async def test_an_attached_tcp_rollout_says_hello_once(start_daemon: Any,
                                                       tmp_path: Path) -> None:
    """A rollout attached to `hud serve --tcp`: the daemon counted one hello before the
    task started (the prompt reports it)."""
    port = _free_port()
    start_daemon(str(ENVS / "hellos.py"), "--tcp", f"127.0.0.1:{port}")
    job = await _count_task(tmp_path).run(_answer, runtime=f"tcp://127.0.0.1:{port}")
    assert job.runs[0].status == "completed", job.runs[0].error
    assert job.runs[0].prompt == "hellos=1"


async def test_hud_attach_says_hello_once(start_daemon: Any) -> None:
    """`hud.attach` reads the manifest its placement got: one hello, then the start."""
    from hud import attach

    port = _free_port()
    start_daemon(str(ENVS / "hellos.py"), "--tcp", f"127.0.0.1:{port}")
    async with await attach(f"tcp://127.0.0.1:{port}") as remote:
        assert remote.manifest["env"]["name"] == "hello-count"
        assert await remote.start("count") == "hellos=1"
