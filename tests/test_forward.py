"""The host-side Forwarder: a loopback port piped through one command per connection.

The tunnel command here is a small Python bridge to a TCP port, standing in for
`docker exec -i run1 hud connect --tunnel NAME` (same shape: bytes on stdin/stdout).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hud.forward import Forwarder
from hud.capabilities.mcp import Tools
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from tests.bridge import bridge_argv

TIMEOUT = 15.0



async def _until(predicate, timeout: float = TIMEOUT) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.02)
    return False


def _children() -> set[int]:
    me = str(os.getpid())
    kids = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[1] == me and fields[0] != "Z":
                kids.add(int(entry))
    return kids


@pytest.fixture
async def echo() -> AsyncIterator[Forwarder]:
    async with Forwarder(["cat"], linger=2.0) as fwd:
        yield fwd


async def _connect(fwd: Forwarder) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.wait_for(asyncio.open_connection("127.0.0.1", fwd.port), TIMEOUT)


async def test_bytes_round_trip_through_the_command(echo: Forwarder) -> None:
    """What a client sends goes through the command and comes back (here: cat)."""
    reader, writer = await _connect(echo)
    payload = os.urandom(1 << 20)
    writer.write(payload)
    writer.write_eof()
    assert await asyncio.wait_for(reader.read(), TIMEOUT) == payload
    writer.close()
    assert await _until(lambda: echo.active == 0)


async def test_each_connection_gets_its_own_process(echo: Forwarder) -> None:
    """Two open connections run two commands at once."""
    conns = [await _connect(echo) for _ in range(2)]
    for _, writer in conns:
        writer.write(b"ping\n")
    for reader, _ in conns:
        assert await asyncio.wait_for(reader.readline(), TIMEOUT) == b"ping\n"
    assert echo.active == 2
    for _, writer in conns:
        writer.close()
    assert await _until(lambda: echo.active == 0)


async def test_vanished_client_leaves_no_process(echo: Forwarder) -> None:
    """A client that drops mid-stream gets its command terminated and reaped."""
    before = _children()
    _, writer = await _connect(echo)
    writer.write(b"half a message")
    await _until(lambda: echo.active == 1)
    writer.transport.abort()
    assert await _until(lambda: echo.active == 0)
    assert await _until(lambda: _children() <= before)


async def test_flooding_command_of_a_vanished_client_is_reaped() -> None:
    """A command flooding output to a client that stops reading and drops is still reaped."""
    async with Forwarder(["yes"]) as fwd:
        reader, writer = await _connect(fwd)
        await reader.readexactly(1 << 16)
        writer.transport.abort()
        assert await _until(lambda: fwd.active == 0)
        assert await _until(lambda: not fwd._procs)


async def test_command_that_ignores_eof_is_terminated_after_linger() -> None:
    """A command that never finishes after the client's EOF is ended after `linger`."""
    async with Forwarder(["sleep", "300"], linger=0.5) as fwd:
        reader, writer = await _connect(fwd)
        writer.write_eof()
        assert await asyncio.wait_for(reader.read(), TIMEOUT) == b""
        assert await _until(lambda: fwd.active == 0)


async def test_command_exit_closes_the_client() -> None:
    """When the command exits, the client sees EOF."""
    async with Forwarder(["echo", "bye"]) as fwd:
        reader, _ = await _connect(fwd)
        assert await asyncio.wait_for(reader.read(), TIMEOUT) == b"bye\n"


async def test_missing_command_closes_the_connection_and_keeps_serving() -> None:
    """A command that cannot start closes that connection; the listener lives on."""
    async with Forwarder(["/nonexistent/hud-tunnel"]) as fwd:
        for _ in range(2):
            reader, _ = await _connect(fwd)
            assert await asyncio.wait_for(reader.read(), TIMEOUT) == b""


async def test_stop_ends_open_connections_and_processes() -> None:
    """stop() with a connection open kills its command; stopping twice is fine."""
    fwd = Forwarder(["cat"])
    await fwd.start()
    reader, writer = await _connect(fwd)
    writer.write(b"x")
    assert await asyncio.wait_for(reader.readexactly(1), TIMEOUT) == b"x"
    await fwd.stop()
    await fwd.stop()
    assert fwd.active == 0
    assert await asyncio.wait_for(reader.read(), TIMEOUT) == b""


async def test_mcp_client_works_through_a_forwarded_url() -> None:
    """The official MCP client reaches the tools server through a bridge command."""
    tools = Tools()

    @tools.tool()
    def mul(a: int, b: int) -> int:
        """Multiply."""
        return a * b

    binding = await tools.start()
    port = binding.url.rsplit(":", 1)[1]
    try:
        async with Forwarder(bridge_argv(port)) as fwd:
            url = f"http://127.0.0.1:{fwd.port}{binding.params['path']}"
            async with streamable_http_client(url) as (read, write, _), ClientSession(read, write) as client:
                await client.initialize()
                result = await client.call_tool("mul", {"a": 6, "b": 7})
                assert result.content[0].text == "42"
        assert fwd.active == 0
    finally:
        await tools.stop()
