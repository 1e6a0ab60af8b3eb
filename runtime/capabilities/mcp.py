"""The `mcp` capability: the environment's tools, served with the official MCP SDK.

Design decisions:
- **Official SDK, streamable HTTP.** Tools are registered on a `FastMCP` server (so an
  author's function signature becomes its JSON schema, and exceptions become tool errors
  with `isError`, never a dead server). It serves streamable HTTP at `/mcp` on
  127.0.0.1 at an ephemeral port; the host reaches it only through a tunnel.
- **In the daemon's event loop.** uvicorn runs as a task of the running loop (no thread),
  on a socket we bind first (so the port is known before serving) and without installing
  its own signal handlers (the daemon owns SIGTERM).
- **Lazy.** Registering a tool imports nothing; `mcp` and `uvicorn` are imported by
  `start()`, which the daemon calls only when the environment declared a tool. The
  in-container CLI path never pays for them.
- **Env-wide and per-task tools.** `tool()`/`add_tool()` register for the environment's
  lifetime; `add_tool(..., task=True)` (e.g. from a template's setup) registers until the
  task is graded or cancelled: `task_ended()` removes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from hud.capability import Capability
from hud.errors import ConfigError, InfraError
from hud.messages import BINDING_PROTOCOLS, Binding

if TYPE_CHECKING:
    import uvicorn
    from mcp.server.fastmcp import FastMCP

log = logging.getLogger("hud.capabilities.mcp")

MCP_PATH = "/mcp"
START_TIMEOUT = 15.0
STOP_TIMEOUT = 5.0

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class _Spec:
    fn: Callable[..., Any]
    name: str
    description: str | None
    task: bool


def _quiet_client_close(record: logging.LogRecord) -> bool:
    """Drop the SDK's ERROR for a client that closed its session normally (not a fault)."""
    exc = record.exc_info[1] if record.exc_info else None
    return not (
        record.getMessage().startswith("Error in standalone SSE writer")
        and type(exc).__name__ == "ClosedResourceError"
    )


class Tools(Capability):
    """An MCP server (`mcp/2025-11-25`) offering the environment's tools.

    Args:
        name: the binding name.
        server_name: the name the MCP server reports in `initialize`.
    """

    protocol = BINDING_PROTOCOLS["mcp"]

    def __init__(self, *, name: str = "tools", server_name: str = "hud") -> None:
        self.name = name
        self.server_name = server_name
        self._specs: dict[str, _Spec] = {}
        self._mcp: FastMCP | None = None
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._binding: Binding | None = None

    # -- registration -----------------------------------------------------------------------

    def tool(self, name: str | None = None, *, description: str | None = None) -> Callable[[F], F]:
        """Decorator: register an env-wide tool (sync or async function).

        The function's type hints become the tool's input schema and its docstring the
        description, as in the MCP SDK's `FastMCP.tool`.
        """

        def register(fn: F) -> F:
            self.add_tool(fn, name=name, description=description)
            return fn

        return register

    def add_tool(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        task: bool = False,
    ) -> str:
        """Register `fn` as a tool; with `task=True` it lasts until the task ends.

        Returns:
            The tool's name.

        Raises:
            ConfigError: a tool of that name is already registered.
        """
        tool_name = name or fn.__name__
        if tool_name in self._specs:
            raise ConfigError(
                f"tool {tool_name!r} is registered twice; pick another name= "
                f"(registered: {', '.join(sorted(self._specs))})"
            )
        spec = _Spec(fn, tool_name, description, task)
        if self._mcp is not None:
            self._mcp.add_tool(fn, name=tool_name, description=description)
        self._specs[tool_name] = spec
        return tool_name

    def remove_tool(self, name: str) -> None:
        """Unregister a tool.

        Raises:
            ConfigError: no tool of that name is registered.
        """
        if name not in self._specs:
            registered = ", ".join(sorted(self._specs)) or "none"
            raise ConfigError(f"no tool {name!r} to remove (registered: {registered})")
        del self._specs[name]
        if self._mcp is not None:
            self._mcp.remove_tool(name)

    @property
    def names(self) -> list[str]:
        """Names of the registered tools, sorted."""
        return sorted(self._specs)

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> Binding:
        """Serve the registered tools over streamable HTTP on 127.0.0.1.

        Raises:
            InfraError: the server did not come up within the start timeout.
        """
        if self._binding is not None and self._task is not None and not self._task.done():
            return self._binding
        import uvicorn
        from mcp.server.fastmcp import FastMCP

        class _Server(uvicorn.Server):
            @contextlib.contextmanager
            def capture_signals(self) -> Iterator[None]:
                # The daemon owns SIGINT/SIGTERM; uvicorn must not replace its handlers.
                yield

        # JSON responses (not SSE) let the client reuse its HTTP connection: through an
        # exec tunnel every new connection is a `docker exec` (~100 ms); measured 105 → 49 ms
        # per tool call (bench/bench_tunnel.py)
        self._mcp = FastMCP(self.server_name, log_level="WARNING", streamable_http_path=MCP_PATH,
                            json_response=True)
        logging.getLogger("mcp.server.streamable_http").addFilter(_quiet_client_close)
        for spec in self._specs.values():
            self._mcp.add_tool(spec.fn, name=spec.name, description=spec.description)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        config = uvicorn.Config(
            self._mcp.streamable_http_app(), log_level="warning", access_log=False,
            lifespan="on", timeout_graceful_shutdown=int(STOP_TIMEOUT),
        )
        self._server = _Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name=f"mcp:{self.name}")
        deadline = time.monotonic() + START_TIMEOUT
        while not self._server.started:
            if self._task.done() or time.monotonic() > deadline:
                error = self._task.exception() if self._task.done() else None
                await self.stop()
                sock.close()
                raise InfraError(
                    f"the MCP server for capability {self.name!r} did not start within "
                    f"{START_TIMEOUT:g}s ({error!r}); see the hud serve log"
                )
            await asyncio.sleep(0.01)
        self._binding = Binding(
            name=self.name, protocol=self.protocol, url=f"tcp://127.0.0.1:{port}",
            params={"path": MCP_PATH},
        )
        log.info("mcp tools %r on 127.0.0.1:%d%s: %s", self.name, port, MCP_PATH, ", ".join(self.names))
        return self._binding

    async def stop(self) -> None:
        """Stop serving (idempotent); open requests get a few seconds to finish."""
        server, task = self._server, self._task
        self._server = self._task = None
        self._mcp = None
        self._binding = None
        if server is None or task is None:
            return
        server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(task), STOP_TIMEOUT)
        except Exception:  # noqa: BLE001 — a timeout, or the server task failed: force it down
            server.force_exit = True
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, STOP_TIMEOUT)

    async def task_ended(self) -> None:
        """Remove the tools registered for the task that just ended."""
        for spec in [s for s in self._specs.values() if s.task]:
            self.remove_tool(spec.name)

    async def healthy(self) -> bool:
        """Whether the HTTP server task is alive and serving."""
        serving = bool(self._server and self._server.started)
        return self._task is not None and not self._task.done() and serving
