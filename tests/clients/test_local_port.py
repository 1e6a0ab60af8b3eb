"""LocalPort: a loopback port whose every connection is a fresh tunnel to one capability.

The tunnel opener here connects to a real in-process TCP server standing in for a
capability's daemon (what `hud connect --tunnel NAME` reaches in a container).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from hud.capabilities.mcp import Tools
from hud.clients.bindings import LocalPort, Streams
from tests.sshkit import until

TIMEOUT = 15.0

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Upstream:
    """A real TCP server playing the capability; counts open and finished connections."""

    def __init__(self, handle: Handler) -> None:
        self.handle = handle
        self.opened = 0
        self.finished = 0
        self.names: list[str] = []
        self._server: asyncio.Server | None = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.opened += 1
        try:
            await self.handle(reader, writer)
        except ConnectionError:
            pass
        finally:
            writer.close()
            self.finished += 1

    @property
    def open(self) -> int:
        return self.opened - self.finished

    async def opener(self, name: str) -> Streams:
        """The tunnel opener LocalPort calls once per accepted connection."""
        assert self._server is not None
        self.names.append(name)
        return await asyncio.open_connection(*self._server.sockets[0].getsockname()[:2])

    async def __aenter__(self) -> Upstream:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(1 << 16):
        writer.write(data)
        await writer.drain()


@pytest.fixture
async def echo() -> AsyncIterator[tuple[Upstream, LocalPort]]:
    async with Upstream(_echo) as upstream:
        port = LocalPort(upstream.opener, "echo")
        await port.start()
        try:
            yield upstream, port
        finally:
            await port.stop()


async def _connect(port: LocalPort) -> Streams:
    return await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port.port), TIMEOUT)


async def test_bytes_round_trip_through_the_tunnel(echo: tuple[Upstream, LocalPort]) -> None:
    """1 MiB sent to the port reaches the capability and comes back, then the tunnel ends."""
    upstream, port = echo
    reader, writer = await _connect(port)
    payload = os.urandom(1 << 20)
    writer.write(payload)
    writer.write_eof()
    assert await asyncio.wait_for(reader.read(), TIMEOUT) == payload
    writer.close()
    assert upstream.names == ["echo"]
    assert await until(lambda: upstream.open == 0)


async def test_each_connection_gets_its_own_tunnel(echo: tuple[Upstream, LocalPort]) -> None:
    """Two open connections are two tunnels at once."""
    upstream, port = echo
    conns = [await _connect(port) for _ in range(2)]
    for _, writer in conns:
        writer.write(b"ping\n")
    for reader, _ in conns:
        assert await asyncio.wait_for(reader.readline(), TIMEOUT) == b"ping\n"
    assert upstream.open == 2
    for _, writer in conns:
        writer.close()
    assert await until(lambda: upstream.open == 0)


async def test_vanished_client_ends_its_tunnel(echo: tuple[Upstream, LocalPort]) -> None:
    """A client that drops mid-stream has its tunnel closed."""
    upstream, port = echo
    _, writer = await _connect(port)
    writer.write(b"half a message")
    assert await until(lambda: upstream.open == 1)
    writer.transport.abort()
    assert await until(lambda: upstream.open == 0)


async def test_flooding_capability_of_a_vanished_client_is_cut_off() -> None:
    """A capability flooding a client that stops reading and drops gets its tunnel closed."""

    async def flood(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            writer.write(b"y" * (1 << 16))
            await writer.drain()

    async with Upstream(flood) as upstream:
        port = LocalPort(upstream.opener, "flood")
        await port.start()
        try:
            reader, writer = await _connect(port)
            await asyncio.wait_for(reader.readexactly(1 << 16), TIMEOUT)
            writer.transport.abort()
            assert await until(lambda: upstream.finished == 1)
        finally:
            await port.stop()


async def test_capability_closing_closes_the_client() -> None:
    """When the capability ends the connection, the client sees its last bytes, then EOF."""

    async def bye(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"bye\n")
        await writer.drain()

    async with Upstream(bye) as upstream:
        port = LocalPort(upstream.opener, "bye")
        await port.start()
        try:
            reader, _ = await _connect(port)
            assert await asyncio.wait_for(reader.read(), TIMEOUT) == b"bye\n"
        finally:
            await port.stop()


async def test_failing_opener_closes_the_connection_and_keeps_serving() -> None:
    """A tunnel that cannot open closes that connection; the port serves the next one."""
    calls: list[str] = []

    async def refuse(name: str) -> Streams:
        calls.append(name)
        raise ConnectionRefusedError(f"no capability {name}")

    port = LocalPort(refuse, "gone")
    await port.start()
    try:
        for _ in range(2):
            reader, _ = await _connect(port)
            assert await asyncio.wait_for(reader.read(), TIMEOUT) == b""
        assert calls == ["gone", "gone"]
    finally:
        await port.stop()


async def test_stop_ends_open_connections_and_tunnels(echo: tuple[Upstream, LocalPort]) -> None:
    """stop() with a connection open closes it and its tunnel; stopping twice is fine."""
    upstream, port = echo
    reader, writer = await _connect(port)
    writer.write(b"x")
    assert await asyncio.wait_for(reader.readexactly(1), TIMEOUT) == b"x"
    await port.stop()
    await port.stop()
    assert await asyncio.wait_for(reader.read(), TIMEOUT) == b""
    assert await until(lambda: upstream.open == 0)
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port.port)


async def test_mcp_client_works_through_the_port() -> None:
    """The official MCP client reaches the mcp capability through a LocalPort URL."""
    tools = Tools()

    @tools.tool()
    def mul(a: int, b: int) -> int:
        """Multiply."""
        return a * b

    binding = await tools.start()
    host, _, tcp_port = binding.url.removeprefix("tcp://").rpartition(":")

    async def opener(name: str) -> Streams:
        assert name == binding.name
        return await asyncio.open_connection(host, int(tcp_port))

    port = LocalPort(opener, binding.name)
    await port.start()
    try:
        url = f"http://127.0.0.1:{port.port}{binding.params['path']}"
        async with streamable_http_client(url) as (read, write, _), ClientSession(read, write) as client:
            await client.initialize()
            result = await client.call_tool("mul", {"a": 6, "b": 7})
            assert result.content[0].text == "42"  # type: ignore[union-attr]
    finally:
        await port.stop()
        await tools.stop()
