"""Red team on `hud connect --mux` (a real process) with a daemon that stops answering: a
stream open, the exec itself and a control call must each end, never hang."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from hud.clients.channel import Channel
from hud.clients.mux import MuxConnection
from hud.errors import InfraError

CONTROL = "hud-control"
#: seconds after which a pending open, exit or call counts as hung (a hang guard, far
#: beyond any timeout hud uses for one round trip; not a timing being measured)
HUNG = 90.0


@pytest.fixture
def mute_daemon(short_dir: Path) -> Iterator[str]:
    """A unix socket that accepts every connection and never says a word (a daemon whose
    event loop is stuck); its path."""
    path = str(short_dir / "mute.sock")
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    server.listen(64)
    held: list[socket.socket] = []

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                held.append(server.accept()[0])

    threading.Thread(target=accept, daemon=True).start()
    yield path
    server.close()
    for conn in held:
        conn.close()


async def _mux(socket_path: str) -> tuple[MuxConnection, asyncio.subprocess.Process]:
    ours, theirs = socket.socketpair()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hud.cli.main", "connect", "--mux", "--socket", socket_path,
        stdin=theirs.fileno(), stdout=theirs.fileno(), stderr=subprocess.DEVNULL)
    theirs.close()
    return await MuxConnection.start(ours, describe="red team mux", timeout=60), proc


@pytest.fixture
async def muted(mute_daemon: str) -> AsyncIterator[tuple[MuxConnection, Any]]:
    conn, proc = await _mux(mute_daemon)
    yield conn, proc
    await conn.close()
    if proc.returncode is None:
        proc.kill()
    await proc.wait()


async def test_a_tunnel_the_daemon_never_answers_fails_instead_of_hanging(
        muted: tuple[MuxConnection, Any]) -> None:
    """A tunnel open whose tunnel.open the daemon never answers ends in an InfraError."""
    conn, _ = muted
    with pytest.raises(InfraError, match=r"echo"):
        await asyncio.wait_for(conn.open("echo"), HUNG)


async def test_the_mux_exits_once_the_host_closes_even_with_an_open_pending(
        muted: tuple[MuxConnection, Any]) -> None:
    """The host closes while a tunnel open waits on a mute daemon: the process still exits."""
    conn, proc = muted
    pending = asyncio.ensure_future(conn.open("echo"))
    await asyncio.sleep(1)  # the open has reached the daemon and waits for its reply
    pending.cancel()
    with contextlib.suppress(BaseException):
        await pending
    await conn.close()
    await asyncio.wait_for(proc.wait(), HUNG)


#: the dripping daemon's connections, closed at the end of the test
DRIPPING: list[asyncio.StreamWriter] = []


async def _drip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A hostile daemon: answers hello, then sends a blank frame every 0.2 s until closed."""
    DRIPPING.append(writer)
    with contextlib.suppress(ConnectionError):
        await reader.readline()
        writer.write(b'{"jsonrpc": "2.0", "id": 1, "result": {}}\n')
        await reader.readline()
        while not writer.is_closing():
            writer.write(b"\n")
            await writer.drain()
            await asyncio.sleep(0.2)


async def test_a_call_ends_at_its_timeout_when_the_daemon_drips_blank_frames(
        short_dir: Path) -> None:
    """A daemon dripping blank frames cannot hold a call past its timeout: InfraError."""
    path = str(short_dir / "drip.sock")
    server = await asyncio.start_unix_server(_drip, path)
    conn, proc = await _mux(path)
    try:
        channel = Channel(*await conn.open(CONTROL), describe="dripping daemon")
        await channel.call("hello", {})
        with pytest.raises(InfraError, match=r"no reply to tasks\.list within 2s"):
            await asyncio.wait_for(channel.call("tasks.list", {}, timeout=2), HUNG)
    finally:
        await conn.close()
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
        server.close()
        for writer in DRIPPING:
            writer.close()
        await asyncio.sleep(0.5)  # the handler sees its connection closed and returns
