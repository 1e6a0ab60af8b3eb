"""One running environment, one rollout at a time: local and attach placements hold a group
to the env's declared concurrency; a hostile manifest stops a rollout before its start."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

import hud
from hud import Environment
from hud.errors import ProtocolError
from hud.eval import AttachPlacement, Taskset
from hud.serve.daemon import Daemon, DaemonConfig
from tests.manifestkit import valid_manifest, with_field

TOKEN = "test-token-not-secret"


class Overlap:
    """An environment whose task records how many of its sessions are open at once."""

    def __init__(self, name: str, concurrency: int = 1) -> None:
        self.env = Environment(name=name, concurrency=concurrency)
        self.now = self.peak = 0

        @self.env.template()
        async def member(n: int = 0):  # type: ignore[no-untyped-def]
            self.now += 1
            self.peak = max(self.peak, self.now)
            try:
                answer = yield "Say ok."
                yield 1.0 if answer == "ok" else 0.0
            finally:
                self.now -= 1

        self.member = member

    def taskset(self) -> Taskset:
        return Taskset([self.member()], env=self.env)


async def patient(run: Any) -> str:
    """An agent that takes a moment, so that rollouts would overlap if let."""
    await asyncio.sleep(0.05)
    return "ok"


@pytest.fixture
async def tcp_daemon(tmp_path: Any) -> AsyncIterator[tuple[Overlap, str]]:
    """A real daemon serving an `Overlap` env on loopback TCP (with a token)."""
    overlap = Overlap("overlap-tcp")
    daemon = Daemon(DaemonConfig(socket_path=tmp_path / "c.sock", tcp=("127.0.0.1", 0),
                                 token=TOKEN, env=overlap.env))
    await daemon.start()
    host, port = daemon.tcp_addresses()[0]
    try:
        yield overlap, f"tcp://{host}:{port}"
    finally:
        await daemon.close()


async def test_local_group_runs_one_at_a_time() -> None:
    """A group of 4 in one in-process env: never two sessions at once, all graded 1.0."""
    overlap = Overlap("overlap-local")
    job = await overlap.taskset().run(patient, group=4, runtime="local")
    assert [r.reward for r in job.runs] == [1.0] * 4
    assert overlap.peak == 1


async def test_local_declared_concurrency_is_used() -> None:
    """An env that declares concurrency 2 runs two members of a group of 4 at once."""
    overlap = Overlap("overlap-local-2", concurrency=2)
    job = await overlap.taskset().run(patient, group=4, runtime="local")
    assert [r.reward for r in job.runs] == [1.0] * 4
    assert overlap.peak == 2


async def test_attach_group_runs_one_at_a_time(tcp_daemon: tuple[Overlap, str]) -> None:
    """A group of 4 attached to one daemon (TCP): one session at a time, all 1.0."""
    overlap, url = tcp_daemon
    job = await overlap.taskset().run(patient, group=4, runtime=AttachPlacement(url, TOKEN))
    assert [r.reward for r in job.runs] == [1.0] * 4, [r.error for r in job.runs]
    assert overlap.peak == 1


async def test_two_jobs_on_one_target_share_its_gate(tcp_daemon: tuple[Overlap, str]) -> None:
    """Two evals at once against one daemon still take turns (one gate per target)."""
    overlap, url = tcp_daemon
    jobs = await asyncio.gather(*(overlap.taskset().run(patient, group=2,
                                                        runtime=AttachPlacement(url, TOKEN))
                                  for _ in range(2)))
    assert [r.reward for job in jobs for r in job.runs] == [1.0] * 4
    assert overlap.peak == 1


class HostilePeer:
    """A daemon on loopback TCP that answers `hello` with a given manifest; logs methods."""

    def __init__(self, manifest: Any) -> None:
        self.manifest = manifest
        self.methods: list[str] = []

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            request = json.loads(line)
            self.methods.append(request["method"])
            result = self.manifest if request["method"] == "hello" else {}
            writer.write(json.dumps({"jsonrpc": "2.0", "id": request.get("id"),
                                     "result": result}).encode() + b"\n")
            await writer.drain()
        writer.close()

    async def start(self) -> str:
        server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self._server = server
        return f"tcp://127.0.0.1:{server.sockets[0].getsockname()[1]}"

    def close(self) -> None:
        self._server.close()


async def test_hostile_manifest_is_an_infra_error_before_any_start() -> None:
    """A manifest with a shell-syntax name: infra_error naming the field; no task started;
    the gate is released (the second member is refused too, not stuck)."""
    peer = HostilePeer(with_field("bindings.0.name", "shell$(touch FILE)"))
    url = await peer.start()
    try:
        tasks = Overlap("overlap-hostile").taskset()
        job = await asyncio.wait_for(tasks.run(patient, group=2, runtime=url), 60)
    finally:
        peer.close()
    assert [r.status for r in job.runs] == ["infra_error"] * 2
    assert all(r.reward is None for r in job.runs)
    assert "the daemon at tcp://127.0.0.1" in job.runs[0].error
    assert "bindings[0].name: capability name 'shell$(touch FILE)'" in job.runs[0].error
    assert "tasks.start" not in peer.methods


async def test_attach_refuses_a_hostile_manifest() -> None:
    """hud.attach on a daemon whose manifest pins a two-line host key: ProtocolError."""
    peer = HostilePeer(with_field("bindings.0.params.host_pubkey", "ssh-ed25519 AAAA\nx y"))
    url = await peer.start()
    try:
        with pytest.raises(ProtocolError, match=r"bindings\[0\]\.params\.host_pubkey"):
            await hud.attach(url)
    finally:
        peer.close()


async def test_attach_gives_the_validated_bindings() -> None:
    """hud.attach on a daemon with a valid manifest: its bindings, params included."""
    peer = HostilePeer(valid_manifest())
    url = await peer.start()
    try:
        async with await hud.attach(url) as env:
            assert sorted(env.bindings) == ["desktop", "shell", "tools"]
            assert env.bindings["shell"]["params"]["cwd"] == "/workspace"
    finally:
        peer.close()


async def test_a_cancelled_waiter_passes_its_turn_on() -> None:
    """A rollout cancelled just as its turn came does not strand the one after it."""
    from hud.eval.gate import Gate

    gate = Gate()
    await gate.acquire()
    first = asyncio.create_task(gate.acquire())
    second = asyncio.create_task(gate.acquire())
    await asyncio.sleep(0)  # both are waiting now
    await gate.release()  # the turn goes to `first`...
    first.cancel()  # ...which is cancelled before it runs
    await asyncio.wait_for(second, 10)
    assert first.cancelled() and gate.active == 1
