"""Tools an agent harness offers a model, built from the capabilities a manifest binds.

A `Tool` is provider-neutral: a name, a description, a JSON Schema for its input, and an
async `run(args) -> ToolResult`. Each provider harness translates tools to its own
wire format (Anthropic tools, OpenAI function tools, Gemini function declarations).
Tools exist only for the capabilities the manifest offers; `tools_for(run)` picks them:

    ssh/2    bash, edit                              (hud.agents.tools.shell)
    mcp/...  every MCP tool of the environment       (hud.agents.tools.mcp)
    rfb/3.8  computer: screenshot, click, type, ...  (hud.agents.tools.computer)
    cdp/1.3  browser_navigate, browser_click, ...    (hud.agents.tools.computer)
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hud.agents.context import RunContext

#: tool output beyond this many characters is cut (head and tail kept) before the model sees it
MAX_OUTPUT_CHARS = 20_000


@dataclass
class ToolResult:
    """What a tool call returns to the model."""

    text: str
    is_error: bool = False
    #: PNG screenshots and the like, for providers that take images in tool results
    images: list[bytes] = field(default_factory=list)


@dataclass
class Tool:
    """A provider-neutral tool."""

    name: str
    description: str
    parameters: dict[str, Any]
    run: Callable[[dict[str, Any]], Awaitable[ToolResult]]
    #: seconds one call may take before it is reported to the model as timed out
    timeout: float = 120.0
    #: facts a harness may need to declare the tool natively (e.g. a computer's display size)
    meta: dict[str, Any] = field(default_factory=dict)


def truncate(text: str, limit: int = MAX_OUTPUT_CHARS) -> str:
    """Keep the head and the tail of long output, saying how much was cut."""
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n[... {len(text) - limit} characters cut ...]\n{text[-half:]}"


async def tools_for(run: RunContext, *, stack: contextlib.AsyncExitStack | None = None) -> list[Tool]:
    """The tools for the capabilities `run` binds.

    Args:
        run: the rollout.
        stack: connections opened for the tools are closed with it; without one they
            live until the rollout's tunnels close.

    Raises:
        InfraError: a capability's connection failed (the rollout is an infra error).
    """
    from hud.agents.tools import shell

    ssh = [b for b in run.bindings.values() if b["protocol"].startswith("ssh/")]
    tools: list[Tool] = []
    for binding in ssh:
        conn = await shell.connect(run, binding)
        if stack is not None:
            stack.push_async_callback(shell.close, conn)
        suffix = f"_{binding['name']}" if len(ssh) > 1 else ""
        tools += shell.ssh_tools(conn, binding.get("params", {}).get("cwd") or ".", suffix)
    mcp = [b for b in run.bindings.values() if b["protocol"].startswith("mcp/")]
    if mcp:
        from hud.agents.tools.mcp import mcp_tools

        own = stack if stack is not None else contextlib.AsyncExitStack()
        for binding in mcp:
            prefix = f"{binding['name']}_" if len(mcp) > 1 else ""
            tools += await mcp_tools(run, binding, own, prefix)
    if any(b["protocol"].startswith("rfb/") for b in run.bindings.values()):
        from hud.agents.tools.computer import computer_tools

        tools += await computer_tools(run)
    if any(b["protocol"].startswith("cdp/") for b in run.bindings.values()):
        from hud.agents.tools.computer import browser_tools

        tools += await browser_tools(run)
    return tools
