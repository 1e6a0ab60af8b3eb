"""The mcp tools capability against the official MCP client over streamable HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from hud.capabilities.mcp import Tools
from hud.errors import ConfigError
from hud.messages import Binding


def _url(binding: Binding) -> str:
    return f"http://{binding.url.removeprefix('tcp://')}{binding.params['path']}"


@asynccontextmanager
async def session(binding: Binding) -> AsyncIterator[ClientSession]:
    async with (streamable_http_client(_url(binding)) as (read, write, _),
                ClientSession(read, write) as client):
        await client.initialize()
        yield client


@pytest.fixture
async def tools() -> AsyncIterator[Tools]:
    caps = Tools()

    @caps.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    @caps.tool(name="shout", description="Upper-case a word.")
    async def upper(word: str) -> str:
        return word.upper()

    @caps.tool()
    def explode() -> str:
        """Always fails."""
        raise RuntimeError("the grader's tool broke")

    await caps.start()
    yield caps
    await caps.stop()


def _text(result) -> str:  # type: ignore[no-untyped-def]
    return " ".join(block.text for block in result.content)


async def test_binding_is_mcp_over_loopback_with_path(tools: Tools) -> None:
    """The binding is mcp/2025-11-25 at a loopback tcp url with path /mcp."""
    binding = await tools.start()
    assert (binding.name, binding.protocol, binding.params) == ("tools", "mcp/2025-11-25", {"path": "/mcp"})
    assert binding.url.startswith("tcp://127.0.0.1:")


async def test_client_negotiates_the_bindings_protocol_version(tools: Tools) -> None:
    """The official client and the server agree on protocol version 2025-11-25."""
    url = _url(await tools.start())
    async with streamable_http_client(url) as (read, write, _), ClientSession(read, write) as client:
        assert (await client.initialize()).protocolVersion == "2025-11-25"


async def test_lists_and_calls_sync_and_async_tools(tools: Tools) -> None:
    """Env-wide tools are listed with their schema and answer calls."""
    async with session(await tools.start()) as client:
        listed = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert set(listed) == {"add", "shout", "explode"}
        assert listed["add"].inputSchema["required"] == ["a", "b"]
        assert listed["shout"].description == "Upper-case a word."
        assert _text(await client.call_tool("add", {"a": 2, "b": 40})) == "42"
        assert _text(await client.call_tool("shout", {"word": "hud"})) == "HUD"


async def test_tool_that_raises_is_a_tool_error_and_server_lives(tools: Tools) -> None:
    """A tool raising comes back as isError with its message; the next call works."""
    async with session(await tools.start()) as client:
        failed = await client.call_tool("explode", {})
        assert failed.isError and "the grader's tool broke" in _text(failed)
        assert _text(await client.call_tool("add", {"a": 1, "b": 1})) == "2"
    assert await tools.healthy()


async def test_invalid_arguments_are_an_error_naming_the_argument(tools: Tools) -> None:
    """Bad arguments give an MCP tool error naming the field; the server keeps serving."""
    async with session(await tools.start()) as client:
        bad = await client.call_tool("add", {"a": "not a number"})
        assert bad.isError and "a" in _text(bad) and "b" in _text(bad) and "Field required" in _text(bad)
        assert _text(await client.call_tool("add", {"a": 3, "b": 4})) == "7"


async def test_unknown_tool_is_an_error(tools: Tools) -> None:
    """Calling a tool that does not exist is an error naming it."""
    async with session(await tools.start()) as client:
        missing = await client.call_tool("nope", {})
        assert missing.isError and "nope" in _text(missing)


async def test_per_task_tool_lives_until_task_ended(tools: Tools) -> None:
    """A tool added with task=True while serving is listed, then removed by task_ended()."""
    binding = await tools.start()

    def secret_hint() -> str:
        """Only for this task."""
        return "look in /workspace/src"

    tools.add_tool(secret_hint, task=True)
    async with session(binding) as client:
        assert "secret_hint" in {t.name for t in (await client.list_tools()).tools}
        assert _text(await client.call_tool("secret_hint", {})) == "look in /workspace/src"
    await tools.task_ended()
    async with session(binding) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert names == {"add", "shout", "explode"}
        assert (await client.call_tool("secret_hint", {})).isError


async def test_duplicate_tool_name_is_a_config_error(tools: Tools) -> None:
    """Registering a second tool under a taken name fails with the registered names."""
    with pytest.raises(ConfigError, match=r"tool 'add' is registered twice.*registered: add, explode, shout"):
        tools.add_tool(lambda: 1, name="add")


async def test_removing_an_unknown_tool_is_a_config_error(tools: Tools) -> None:
    """remove_tool() of a name never registered says which names exist."""
    with pytest.raises(ConfigError, match=r"no tool 'ghost' to remove"):
        tools.remove_tool("ghost")


async def test_stop_is_idempotent_and_ends_health(tools: Tools) -> None:
    """healthy() is true while serving; stop() twice is fine and makes it false."""
    assert await tools.healthy()
    await tools.stop()
    await tools.stop()
    assert not await tools.healthy()


async def test_restart_serves_the_same_tools(tools: Tools) -> None:
    """After stop(), start() serves again with every env-wide tool."""
    await tools.stop()
    async with session(await tools.start()) as client:
        assert _text(await client.call_tool("add", {"a": 5, "b": 5})) == "10"


def test_registering_tools_imports_no_mcp() -> None:
    """Declaring tools imports neither mcp nor uvicorn (only start() does)."""
    probe = ("import sys; from hud.capabilities.mcp import Tools; t = Tools(); t.tool()(lambda x: x); "
             "print(sorted(m for m in sys.modules if m.split('.')[0] in ('mcp', 'uvicorn')))")
    done = subprocess.run([sys.executable, "-c", probe], check=False, capture_output=True,
                          text=True, timeout=60)
    assert done.stdout.strip() == "[]", done.stderr


def _server_ends_nodelay(port: int) -> list[int]:
    """TCP_NODELAY of every connection this process accepted on `port` (its server ends)."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            if not os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                continue
            sock = socket.socket(fileno=os.dup(int(fd)))
        except OSError:
            continue
        with sock:
            if sock.family != socket.AF_INET or sock.type != socket.SOCK_STREAM:
                continue
            try:
                sock.getpeername()  # a listener has no peer
            except OSError:
                continue
            if sock.getsockname()[1] == port:
                found.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
    return found


async def test_served_connections_have_nodelay(tools: Tools) -> None:
    """The server end of a client's connection sends at once (TCP_NODELAY): no response
    waits for the client's delayed ACK."""
    binding = await tools.start()
    async with session(binding) as client:
        assert _text(await client.call_tool("add", {"a": 20, "b": 22})) == "42"
        flags = _server_ends_nodelay(int(binding.url.rsplit(":", 1)[1]))
    assert flags and all(flags), flags


def test_sdk_loads_at_the_first_client_not_at_start() -> None:
    """start() imports neither mcp nor uvicorn; the first client's request does, and is answered."""
    probe = """
import asyncio, sys
from hud.capabilities.mcp import Tools

def loaded():
    return sorted(m for m in ('mcp', 'uvicorn') if m in sys.modules)

async def main():
    tools = Tools()

    @tools.tool()
    def echo(a: int) -> int:
        return a

    port = int((await tools.start()).url.rsplit(':', 1)[1])
    print(loaded())
    reader, writer = await asyncio.open_connection('127.0.0.1', port)
    writer.write(b'GET /mcp HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n')
    print((await asyncio.wait_for(reader.readline(), 30)).split()[:1], loaded())
    writer.close()
    await tools.stop()

asyncio.run(main())
"""
    done = subprocess.run([sys.executable, "-c", probe], check=False, capture_output=True,
                          text=True, timeout=60)
    assert done.stdout.splitlines() == ["[]", "[b'HTTP/1.1'] ['mcp', 'uvicorn']"], done.stderr


async def test_tool_the_sdk_rejects_fails_the_first_client(caplog: pytest.LogCaptureFixture) -> None:
    """A tool signature the SDK refuses: the first client is disconnected, the log says why,
    and the capability reports itself unhealthy (so the daemon restarts it)."""
    caps = Tools()

    def hidden(_secret: int) -> int:
        return _secret

    caps.add_tool(hidden)
    binding = await caps.start()
    try:
        with caplog.at_level(logging.ERROR):
            reader, writer = await asyncio.open_connection("127.0.0.1", int(binding.url.rsplit(":", 1)[1]))
            with contextlib.suppress(ConnectionError):  # a reset, or an orderly close:
                assert await asyncio.wait_for(reader.read(), 30) == b""
            writer.close()
        assert not await caps.healthy()
        assert "capability 'tools' could not start serving" in caplog.text
        assert "_secret" in caplog.text
    finally:
        await caps.stop()


async def test_stop_before_any_client_closes_the_port() -> None:
    """Stopping a server no client ever reached releases its port."""
    caps = Tools()
    caps.add_tool(len, name="length")
    port = int((await caps.start()).url.rsplit(":", 1)[1])
    await caps.stop()
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", port)


async def test_tool_calls_are_not_logged_one_by_one(tools: Tools, caplog: pytest.LogCaptureFixture) -> None:
    """The SDK's per-request INFO lines stay out of the log (no write per tool call)."""
    with caplog.at_level(logging.INFO):
        async with session(await tools.start()) as client:
            for n in range(3):
                assert _text(await client.call_tool("add", {"a": n, "b": 1})) == str(n + 1)
    chatter = [r.getMessage() for r in caplog.records
               if r.name.startswith("mcp") and r.levelno < logging.WARNING]
    assert chatter == []
