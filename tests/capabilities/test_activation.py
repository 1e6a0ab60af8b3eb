"""Socket activation: a listener that loads its server at the first client, with TCP_NODELAY."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from hud.capabilities.activation import FirstConnection, loopback_listener

TIMEOUT = 10.0


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(await reader.readline())
    await writer.drain()
    writer.close()


async def _ask(port: int, line: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(line)
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(), TIMEOUT)
    finally:
        writer.close()


def test_listener_is_on_loopback_and_accepts() -> None:
    """The listener is bound to 127.0.0.1 at an ephemeral port and completes connects."""
    with loopback_listener() as sock:
        host, port = sock.getsockname()
        assert (host, port > 0) == ("127.0.0.1", True)
        with socket.create_connection((host, port), timeout=TIMEOUT):
            pass


def test_connections_accepted_from_the_listener_have_nodelay() -> None:
    """A connection accepted from the listener (without asyncio) has TCP_NODELAY set."""
    with loopback_listener() as sock, socket.create_connection(sock.getsockname(), timeout=TIMEOUT):
        sock.setblocking(True)
        conn, _ = sock.accept()
        with conn:
            assert conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


async def test_connections_an_asyncio_server_accepts_have_nodelay() -> None:
    """A server started on the listener with `sock=` (uvicorn's and asyncssh's way) gets
    connections with TCP_NODELAY."""
    seen: list[int] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(writer.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        await _echo(reader, writer)

    sock = loopback_listener()
    server = await asyncio.start_server(handler, sock=sock)
    async with server:
        assert await _ask(sock.getsockname()[1], b"hi\n") == b"hi\n"
    assert len(seen) == 1 and seen[0] != 0


async def test_activate_runs_once_at_the_first_connection() -> None:
    """Nothing runs until a client connects; then `activate` runs once and its server
    answers that client and the next ones."""
    sock = loopback_listener()
    port = sock.getsockname()[1]
    servers: list[asyncio.Server] = []

    async def activate() -> None:
        servers.append(await asyncio.start_server(_echo, sock=sock))

    first = FirstConnection(sock, activate, "echo")
    try:
        assert (first.activated, servers) == (False, [])
        assert await _ask(port, b"one\n") == b"one\n"
        assert await _ask(port, b"two\n") == b"two\n"
        await first.wait()
        assert (first.activated, first.pending, len(servers), first.failed) == (True, False, 1, None)
    finally:
        await first.close()
        for server in servers:
            server.close()
        sock.close()


async def test_a_client_that_leaves_at_once_still_activates() -> None:
    """Connecting and closing straight away (how a pool would pre-load a server) runs
    `activate`, and the server then answers the next client."""
    sock = loopback_listener()
    port = sock.getsockname()[1]
    servers: list[asyncio.Server] = []
    called = asyncio.Event()

    async def activate() -> None:
        called.set()
        servers.append(await asyncio.start_server(_echo, sock=sock))

    first = FirstConnection(sock, activate, "echo")
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.close()
        await asyncio.wait_for(called.wait(), TIMEOUT)
        await first.wait()
        assert (len(servers), first.failed) == (1, None)
        assert await _ask(port, b"next\n") == b"next\n"
    finally:
        await first.close()
        for server in servers:
            server.close()
        sock.close()


async def test_failed_activation_drops_the_client_and_is_reported(caplog: pytest.LogCaptureFixture) -> None:
    """`activate` raising: the waiting client's connection ends, `failed` holds the error,
    and the log names the capability."""
    sock = loopback_listener()

    async def activate() -> None:
        raise RuntimeError("the server library is broken")

    first = FirstConnection(sock, activate, "broken")
    try:
        try:
            answer = await _ask(sock.getsockname()[1], b"hello\n")
        except ConnectionError:
            answer = b""
        await first.wait()
        assert answer == b""
        assert isinstance(first.failed, RuntimeError)
        assert "capability 'broken' could not start serving" in caplog.text
        assert "the server library is broken" in caplog.text
    finally:
        await first.close()
        sock.close()


async def test_close_before_any_client_stops_watching() -> None:
    """close() with no client yet leaves nothing watching the socket."""
    sock = loopback_listener()
    calls: list[int] = []

    async def activate() -> None:
        calls.append(1)

    first = FirstConnection(sock, activate, "idle")
    await first.close()
    try:
        assert not asyncio.get_running_loop().remove_reader(sock.fileno())
        assert (first.activated, calls) == (False, [])
    finally:
        sock.close()


def test_ssh_workspace_loads_asyncssh_at_the_first_client(tmp_path: Path) -> None:
    """The ssh workspace's start() imports no asyncssh; its first client gets the server's
    SSH banner, served by asyncssh loaded then."""
    probe = f"""
import asyncio, sys
from hud.capabilities.ssh import Workspace

async def main():
    ws = Workspace({str(tmp_path)!r}, user=None)
    port = int((await ws.start()).url.rsplit(':', 1)[1])
    print('asyncssh' in sys.modules)
    reader, writer = await asyncio.open_connection('127.0.0.1', port)
    banner = await asyncio.wait_for(reader.readline(), 30)
    print(banner.startswith(b'SSH-2.0-'), 'asyncssh' in sys.modules)
    writer.close()
    await ws.stop()

asyncio.run(main())
"""
    done = subprocess.run([sys.executable, "-c", probe], check=False, capture_output=True,
                          text=True, timeout=60)
    assert done.stdout.splitlines() == ["False", "True True"], done.stderr
