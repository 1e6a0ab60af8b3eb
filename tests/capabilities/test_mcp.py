"""The mcp tools capability against the official MCP client over streamable HTTP."""

from __future__ import annotations

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
