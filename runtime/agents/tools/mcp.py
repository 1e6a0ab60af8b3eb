"""The environment's MCP tools, proxied to a model as provider-neutral `Tool`s.

One official MCP `ClientSession` per rollout, over the run's tunnels, closed with the
harness's exit stack. Each MCP tool keeps its name, description and input schema; a
call's text content becomes the tool result, image content becomes PNG images, and the
server's `isError` becomes an error result (the model sees it and can recover).
"""

from __future__ import annotations

import base64
import contextlib
from typing import TYPE_CHECKING, Any

from hud.agents.context import RunContext
from hud.agents.tools import Tool, ToolResult, truncate

if TYPE_CHECKING:  # the MCP SDK loads when a session opens
    from mcp import ClientSession
    from mcp.types import CallToolResult
    from mcp.types import Tool as ToolSpec

CALL_TIMEOUT = 120.0


def _result(result: CallToolResult) -> ToolResult:
    from mcp.types import ImageContent, TextContent

    texts: list[str] = []
    images: list[bytes] = []
    for item in result.content:
        if isinstance(item, TextContent):
            texts.append(item.text)
        elif isinstance(item, ImageContent) and item.mimeType == "image/png":
            images.append(base64.b64decode(item.data))
        else:
            texts.append(f"[{item.type} content omitted]")
    return ToolResult(truncate("\n".join(texts)), is_error=bool(result.isError), images=images)


def _tool(session: ClientSession, spec: ToolSpec, name: str) -> Tool:
    async def call(args: dict[str, Any]) -> ToolResult:
        return _result(await session.call_tool(spec.name, args))

    return Tool(name=name, description=spec.description or spec.name,
                parameters=spec.inputSchema or {"type": "object", "properties": {}},
                run=call, timeout=CALL_TIMEOUT)


async def mcp_tools(run: RunContext, binding: dict[str, Any],
                    stack: contextlib.AsyncExitStack, prefix: str = "") -> list[Tool]:
    """Every tool the `mcp/...` binding offers, listed after the task started (so per-task
    tools are included).

    Raises:
        InfraError: the MCP server did not answer.
    """
    from hud.clients.bindings import mcp_session

    session = await stack.enter_async_context(mcp_session(run.tunnel, binding))
    listed = await session.list_tools()
    return [_tool(session, spec, f"{prefix}{spec.name}") for spec in listed.tools]
