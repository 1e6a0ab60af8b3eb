"""The async Channel and tunnel.open over a real unix socket: replies read through hud.wire."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from hud import wire
from hud.clients.channel import Channel, open_tunnel_stream
from hud.errors import InfraError, ProtocolError, RemoteError

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Peers:
    """Starts scripted unix-socket servers; each connection runs the script."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.servers: list[asyncio.Server] = []

    async def connect(self, script: Script) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        path = self.directory / f"p{len(self.servers)}.sock"

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                await script(reader, writer)
            finally:
                writer.close()

        self.servers.append(await asyncio.start_unix_server(handle, path=str(path)))
        return await asyncio.open_unix_connection(str(path))


@pytest.fixture
async def peers(short_dir: Path) -> AsyncIterator[Peers]:
    """Scripted peers, closed after the test."""
    made = Peers(short_dir)
    yield made
    for server in made.servers:
        server.close()


async def request(reader: asyncio.StreamReader) -> dict[str, Any]:
    """The next request the peer reads."""
    return json.loads(await reader.readline())


async def test_a_late_reply_to_a_timed_out_call_is_skipped(peers: Peers) -> None:
    """Call 1 times out; its reply, arriving before call 2's, is not taken as call 2's."""
    async def late(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        first, second = await request(reader), await request(reader)
        writer.write(wire.encode(wire.result_frame(first["id"], "answer to 1")))
        writer.write(wire.encode(wire.result_frame(second["id"], "answer to 2")))
        await writer.drain()
        await reader.read()

    channel = Channel(*await peers.connect(late), describe="peer")
    with pytest.raises(InfraError, match=r"peer: no reply to tasks\.list within"):
        await channel.call("tasks.list", timeout=0.2)
    assert await channel.call("tasks.list") == "answer to 2"
    await channel.close()


async def test_a_reply_for_an_unknown_id_is_a_protocol_error(peers: Peers) -> None:
    """A reply whose id is no earlier call's: ProtocolError naming the ids, not skipped."""
    async def stranger(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await request(reader)
        writer.write(wire.encode(wire.result_frame("someone-else", {})))
        await writer.drain()
        await reader.read()

    channel = Channel(*await peers.connect(stranger), describe="container 'c1'")
    with pytest.raises(ProtocolError, match="container 'c1' answered hello with a result for "
                       "request id 'someone-else', not 1") as caught:
        await channel.call("hello")
    assert caught.value.code == wire.INVALID_REQUEST
    await channel.close()


async def test_an_error_reply_is_a_remote_error(peers: Peers) -> None:
    """An error frame arrives as RemoteError with the peer's code and data."""
    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sent = await request(reader)
        writer.write(wire.encode(wire.error_frame(sent["id"], wire.INVALID_PARAMS,
                                                  "unknown task 'nope'", {"tasks": ["a"]})))
        await writer.drain()
        await reader.read()

    channel = Channel(*await peers.connect(refuse))
    with pytest.raises(RemoteError, match="unknown task 'nope'") as caught:
        await channel.call("tasks.start", {"id": "nope"})
    assert caught.value.code == wire.INVALID_PARAMS and caught.value.data == {"tasks": ["a"]}
    await channel.close()


async def test_a_non_json_reply_is_a_parse_error(peers: Peers) -> None:
    """A line that is not JSON: ProtocolError PARSE_ERROR naming the peer and the line."""
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await request(reader)
        writer.write(b"Traceback (most recent call last):\n")
        await writer.drain()
        await reader.read()

    channel = Channel(*await peers.connect(garbage), describe="hud connect")
    with pytest.raises(ProtocolError, match=r"hud connect answered hello with a line that is not "
                       r"JSON .*'Traceback") as caught:
        await channel.call("hello")
    assert caught.value.code == wire.PARSE_ERROR
    await channel.close()


async def test_tunnel_open_refused_is_a_remote_error(peers: Peers) -> None:
    """tunnel.open answered with an error: RemoteError with the daemon's message."""
    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sent = await request(reader)
        assert sent["params"] == {"capability": "shell", "token": "t0k"}
        writer.write(wire.encode(wire.error_frame(1, wire.INVALID_PARAMS, "unknown capability "
                                                  "'shell'; this environment has: none")))
        await writer.drain()

    reader, writer = await peers.connect(refuse)
    with pytest.raises(RemoteError, match="unknown capability 'shell'") as caught:
        await open_tunnel_stream(reader, writer, "shell", token="t0k")
    assert caught.value.code == wire.INVALID_PARAMS
    writer.close()


async def test_tunnel_open_answered_with_garbage_is_a_protocol_error(peers: Peers) -> None:
    """tunnel.open answered by something that is not a daemon: ProtocolError, not a crash."""
    async def ssh(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await request(reader)
        writer.write(b"SSH-2.0-OpenSSH_9.2\r\n")
        await writer.drain()

    reader, writer = await peers.connect(ssh)
    with pytest.raises(ProtocolError, match=r"answered tunnel\.open 'shell' with a line that is "
                       r"not JSON") as caught:
        await open_tunnel_stream(reader, writer, "shell")
    assert caught.value.code == wire.PARSE_ERROR
    writer.close()
