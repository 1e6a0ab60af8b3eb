"""Red team on `hud connect --mux` starting plain and switching to SSH (hud.serve.upgrade):
a real `hud connect` process against a real daemon, driven by the host's ExecTransport
through a stand-in docker client (tests.clients.test_mux_plain_first), no Docker.

Attacks that must hold: agent text holding newlines and `SSH-` never switches the
connection; huge frames right before a switch; a switch behind an in-flight call; a
refused first tunnel; an `SSH-` split across reads; every phase ends its exec on EOF.
Three findings of the review were fixed and their tests hold now: the exec ends when the
daemon hangs up the plain connection, and when stdin ends with a call in flight; a late
reply bigger than the host's buffer no longer breaks the switch (it is acknowledged).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hud.errors import InfraError, RemoteError
from hud.eval import exec_transport
from hud.eval.exec_transport import ExecTransport
from tests.clients.test_mux_plain_first import ENV as PLAIN_ENV
from tests.clients.test_mux_plain_first import _maps, local_docker

#: seconds after which a pending call, switch or exit counts as hung (a hang guard far
#: beyond any round trip here; not a timing being measured)
HUNG = 45.0

ENV = PLAIN_ENV + """
import asyncio, os

@env.template()
async def gate(path: str = '', size: int = 7):
    while not os.path.exists(path):  # held open until the test says so
        await asyncio.sleep(0.05)
    answer = yield 'x' * size
    yield 1.0
"""


@pytest.fixture
def docker(short_dir: Path) -> Iterator[tuple[str, subprocess.Popen[bytes], str]]:
    """A daemon serving ENV and the stand-in docker client reaching it; (client, daemon,
    the daemon's socket)."""
    with local_docker(short_dir, ENV) as served:
        yield served


async def _echo_once(transport: ExecTransport, data: bytes) -> bytes:
    reader, writer = await asyncio.wait_for(transport.tunnel("echo"), HUNG)
    writer.write(data)
    await writer.drain()
    got = await asyncio.wait_for(reader.readexactly(len(data)), HUNG)
    writer.close()
    return got


def _switched(transport: ExecTransport) -> bool:
    assert transport.pid is not None
    return "cryptography" in _maps(transport.pid)


async def test_agent_text_with_newlines_and_ssh_never_switches(docker: Any) -> None:
    """An answer and a prompt holding `\\nSSH-2.0-...` lines travel as text, plain phase."""
    transport = ExecTransport("r1", docker=docker[0])
    channel = await transport.channel(30)
    try:
        evil = "x\nSSH-2.0-OpenSSH_9\r\nSSH-\n\nSSH-2.0-"
        started = await channel.call("tasks.start", {"id": "say", "args": {"word": evil}},
                                     timeout=HUNG)
        assert started["prompt"] == f"say {evil}"
        graded = await channel.call("tasks.grade", {"answer": evil}, timeout=HUNG)
        assert graded["score"] == 1.0
        assert not _switched(transport)
        assert (await channel.call("tasks.list", {}, timeout=HUNG))
    finally:
        await channel.close()
        await transport.close()



async def _until(check: Any, what: str) -> None:
    """Wait (bounded by HUNG) until `check()` holds."""
    async def poll() -> None:
        while True:  # the states polled here have no event to wait on
            if check():
                return
            await asyncio.sleep(0.02)
    try:
        await asyncio.wait_for(poll(), HUNG)
    except TimeoutError:
        raise AssertionError(f"never happened: {what}") from None


async def test_a_first_tunnel_waits_for_an_in_flight_call_and_both_succeed(
        docker: Any, short_dir: Path) -> None:
    """A tunnel asked for while tasks.start is in flight switches after its reply."""
    transport = ExecTransport("r3", docker=docker[0])
    channel = await transport.channel(30)
    gate = short_dir / "open"
    try:
        start = asyncio.create_task(channel.call(
            "tasks.start", {"id": "gate", "args": {"path": str(gate)}}, timeout=HUNG))
        await _until(lambda: channel._lock.locked(), "the start call is in flight")
        echo = asyncio.create_task(_echo_once(transport, b"during"))
        await _until(lambda: transport._switching.locked(), "the tunnel waits to switch")
        gate.touch()
        assert (await asyncio.wait_for(start, HUNG))["prompt"] == "x" * 7
        assert await asyncio.wait_for(echo, HUNG) == b"during"
        graded = await channel.call("tasks.grade", {"answer": "a"}, timeout=HUNG)
        assert graded["score"] == 1.0
    finally:
        gate.touch()
        await channel.close()
        await transport.close()


async def test_a_refused_first_tunnel_keeps_the_connection(docker: Any) -> None:
    """The tunnel that starts SSH is refused; control and later tunnels still work."""
    transport = ExecTransport("r4", docker=docker[0])
    channel = await transport.channel(30)
    try:
        await channel.call("tasks.start", {"id": "say", "args": {"word": "k"}}, timeout=HUNG)
        with pytest.raises(RemoteError, match="nope"):
            await asyncio.wait_for(transport.tunnel("nope"), HUNG)
        assert await _echo_once(transport, b"after") == b"after"
        graded = await channel.call("tasks.grade", {"answer": "k"}, timeout=HUNG)
        assert graded["score"] == 1.0
    finally:
        await channel.close()
        await transport.close()


async def test_huge_frames_right_before_the_switch_arrive_whole(docker: Any) -> None:
    """A 24 MiB prompt and answer around the switch: no byte lost, the session carries on."""
    transport = ExecTransport("r5", docker=docker[0])
    channel = await transport.channel(30)
    word = "w" * (24 << 20)
    try:
        started = await channel.call("tasks.start", {"id": "say", "args": {"word": word}},
                                     timeout=HUNG)
        assert started["prompt"] == f"say {word}"
        payload = os.urandom(1 << 20)
        assert await _echo_once(transport, payload) == payload
        graded = await channel.call("tasks.grade", {"answer": word}, timeout=HUNG)
        assert graded["score"] == 1.0
    finally:
        await channel.close()
        await transport.close()


async def test_closing_while_the_first_tunnel_waits_ends_that_tunnel(
        docker: Any, short_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """close() while tunnel() waits behind a call: the tunnel is an InfraError, no hang."""
    monkeypatch.setattr(exec_transport, "SSH_START_TIMEOUT", 3600.0)
    transport = ExecTransport("r6", docker=docker[0])
    channel = await transport.channel(30)
    gate = short_dir / "open"
    try:
        start = asyncio.create_task(channel.call(
            "tasks.start", {"id": "gate", "args": {"path": str(gate)}}, timeout=HUNG))
        await _until(lambda: channel._lock.locked(), "the start call is in flight")
        tunnel = asyncio.create_task(transport.tunnel("echo"))
        await _until(lambda: transport._switching.locked(), "the tunnel waits to switch")
        await transport.close()
        with pytest.raises(InfraError):
            await asyncio.wait_for(start, HUNG)
        with pytest.raises(InfraError):
            await asyncio.wait_for(tunnel, HUNG)
    finally:
        gate.touch()
        await channel.close()
        await transport.close()


async def _connect(sock: str) -> asyncio.subprocess.Process:
    """`hud connect --mux` on separate stdin and stdout pipes, as `docker exec -i` gives."""
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hud.cli.main", "connect", "--mux", "--socket", sock,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL)


def _frame(request_id: int, method: str, params: dict[str, Any]) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method,
                       "params": params}).encode() + b"\n"


async def _ended(proc: asyncio.subprocess.Process) -> int | None:
    """The exit code of `proc` if it ends by itself within HUNG, else None (then killed)."""
    try:
        return await asyncio.wait_for(proc.wait(), HUNG)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return None


async def test_an_ssh_prefix_split_across_reads_still_switches(docker: Any) -> None:
    """`S`, `SH`, `-2.0-...` written apart after a control line start the SSH server."""
    proc = await _connect(docker[2])
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write(_frame(1, "tasks.list", {}))
        await proc.stdin.drain()
        assert (await asyncio.wait_for(proc.stdout.readline(), HUNG)).startswith(b"{")
        for piece in (b"S", b"SH", b"-2.0-redteam\r\n"):
            proc.stdin.write(piece)
            await proc.stdin.drain()
            await asyncio.sleep(0.2)  # let the bridge read each piece on its own
        line = await asyncio.wait_for(proc.stdout.readline(), HUNG)
        assert line.startswith(b"SSH-2.0-"), line[:200]
    finally:
        proc.stdin.close()
        assert await _ended(proc) is not None


async def test_stdin_ending_in_a_partial_prefix_ends_the_exec(docker: Any) -> None:
    """Stdin ends after `SS` at a line start (plain phase): the process exits by itself."""
    proc = await _connect(docker[2])
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(_frame(1, "tasks.list", {}) + b"SS")
    await proc.stdin.drain()
    assert (await asyncio.wait_for(proc.stdout.readline(), HUNG)).startswith(b"{")
    proc.stdin.close()
    assert await _ended(proc) == 0


async def test_the_exec_ends_when_the_daemon_hangs_up_the_plain_connection(
        docker: Any) -> None:
    """After `bye` (the daemon closes the connection) `hud connect --mux` ends by itself,
    as plain `hud connect` does."""
    proc = await _connect(docker[2])
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write(_frame(1, "bye", {}))
        await proc.stdin.drain()
        assert b'"result"' in await asyncio.wait_for(proc.stdout.readline(), HUNG)
        assert await asyncio.wait_for(proc.stdout.read(), HUNG) == b""  # stdout ended
        assert await _ended(proc) is not None
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_stdin_ending_with_a_call_in_flight_ends_the_exec(
        docker: Any, short_dir: Path) -> None:
    """Stdin ends while tasks.start runs (plain phase): the exec ends without waiting."""
    gate = short_dir / "open"
    proc = await _connect(docker[2])
    assert proc.stdin is not None
    try:
        proc.stdin.write(_frame(1, "tasks.start", {"id": "gate", "args": {"path": str(gate)}}))
        await proc.stdin.drain()
        proc.stdin.close()
        assert await _ended(proc) is not None
    finally:
        gate.touch()
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_stdin_ending_after_the_switch_ends_the_exec(docker: Any) -> None:
    """Closing a transport that switched to SSH ends its exec by itself (exit code 0)."""
    transport = ExecTransport("r7", docker=docker[0])
    channel = await transport.channel(30)
    proc: Any = transport._proc
    assert await _echo_once(transport, b"x") == b"x"
    await channel.close()
    await transport.close()
    assert proc.returncode == 0


async def test_a_late_reply_to_a_timed_out_call_does_not_break_the_switch(
        docker: Any, short_dir: Path) -> None:
    """A call timed out on the host; its reply arrives before the first tunnel: the
    switch still works and the session carries on."""
    transport = ExecTransport("r8", docker=docker[0])
    channel = await transport.channel(30)
    gate = short_dir / "open"
    try:
        with pytest.raises(InfraError, match="no reply"):
            await channel.call("tasks.start", {"id": "gate", "args": {"path": str(gate)}},
                               timeout=0.5)
        gate.touch()
        reader = channel._frames._reader
        await _until(lambda: len(reader._buffer) > 0, "the late reply reached the host")  # type: ignore[attr-defined]
        assert await _echo_once(transport, b"late") == b"late"
        graded = await channel.call("tasks.grade", {"answer": "a"}, timeout=HUNG)
        assert graded["score"] == 1.0
    finally:
        gate.touch()
        await channel.close()
        await transport.close()


async def test_a_large_late_reply_does_not_break_the_switch(
        docker: Any, short_dir: Path) -> None:
    """A timed-out call's 4 MiB reply arrives late: the first tunnel still opens."""
    transport = ExecTransport("r9", docker=docker[0])
    channel = await transport.channel(30)
    gate = short_dir / "open"
    try:
        with pytest.raises(InfraError, match="no reply"):
            await channel.call("tasks.start", {"id": "gate", "args": {
                "path": str(gate), "size": 4 << 20}}, timeout=0.5)
        gate.touch()
        reader = channel._frames._reader
        await _until(lambda: len(reader._buffer) >= exec_transport.STREAM_LIMIT,  # type: ignore[attr-defined]
                     "the late reply filled the host's buffer")
        assert await _echo_once(transport, b"late") == b"late"
        graded = await channel.call("tasks.grade", {"answer": "a"}, timeout=HUNG)
        assert graded["score"] == 1.0
    finally:
        gate.touch()
        await channel.close()
        await transport.close()
