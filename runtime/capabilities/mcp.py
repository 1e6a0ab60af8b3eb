"""The `mcp` capability: the environment's tools, served with the official MCP SDK.

Design decisions:
- **Official SDK, streamable HTTP.** Tools are registered on a `FastMCP` server (so an
  author's function signature becomes its JSON schema, and exceptions become tool errors
  with `isError`, never a dead server). It serves streamable HTTP at `/mcp` on
  127.0.0.1 at an ephemeral port; the host reaches it only through a tunnel.
- **In the daemon's event loop.** uvicorn runs as a task of the running loop (no thread),
  on a socket we bind first (so the port is known before serving) and without installing
  its own signal handlers (the daemon owns SIGTERM).
- **Lazy, twice.** Registering a tool imports nothing. `start()` (which the daemon calls
  only when the environment declared a tool) only binds the listening socket; `mcp` and
  `uvicorn` (~20 MB, ~0.3 s) are imported when the first client connects
  (`hud.capabilities.activation`). An author's tool whose signature the SDK rejects
  therefore shows up then, in the hud serve log, and the capability is restarted.
- **Env-wide and per-task tools.** `tool()`/`add_tool()` register for the environment's
  lifetime; `add_tool(..., task=True)` (e.g. from a template's setup) registers until the
  task is graded or cancelled: `task_ended()` removes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from hud.capabilities.activation import FirstConnection, loopback_listener
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


def _load_sdk() -> None:
    """Import uvicorn and the MCP SDK's FastMCP (what the first connection needs)."""
    import uvicorn  # noqa: F401
    from mcp.server import fastmcp  # noqa: F401


async def _abandon(server: uvicorn.Server, task: asyncio.Task[None]) -> None:
    """Bring down a server that failed to start, releasing the listener from the loop
    (the caller then closes the socket: asyncio must not watch a closed descriptor)."""
    server.should_exit = server.force_exit = True
    task.cancel()
    await asyncio.wait({task}, timeout=STOP_TIMEOUT)
    for listener in getattr(server, "servers", []):  # set once startup got that far
        listener.close()


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
        self._activation: FirstConnection | None = None
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
        """Listen on 127.0.0.1 and return the binding; the MCP server itself (the SDK and
        uvicorn) is loaded when the first client connects (`hud.capabilities.activation`).

        Raises:
            OSError: no loopback socket could be bound.
        """
        if self._binding is not None and await self.healthy():
            return self._binding
        await self.stop()
        sock = loopback_listener()
        port = sock.getsockname()[1]
        self._activation = FirstConnection(sock, self._serve, self.name)
        self._binding = Binding(
            name=self.name, protocol=self.protocol, url=f"tcp://127.0.0.1:{port}",
            params={"path": MCP_PATH},
        )
        log.info("mcp tools %r on 127.0.0.1:%d%s: %s", self.name, port, MCP_PATH, ", ".join(self.names))
        return self._binding

    async def _serve(self) -> None:
        """At the first connection: build the FastMCP app and serve it on the listener.

        Raises:
            InfraError: the server did not come up within the start timeout.
        """
        assert self._activation is not None
        sock = self._activation.sock
        # ~0.3 s of imports: in a thread, so the control channel keeps answering meanwhile
        await asyncio.to_thread(_load_sdk)
        import uvicorn
        from mcp.server.fastmcp import FastMCP

        class _Server(uvicorn.Server):
            @contextlib.contextmanager
            def capture_signals(self) -> Iterator[None]:
                # The daemon owns SIGINT/SIGTERM; uvicorn must not replace its handlers.
                yield

        # JSON responses (not SSE) let the client reuse its HTTP connection: through an
        # exec tunnel every new connection is a `docker exec` (~100 ms); measured 105 → 49 ms
        # per tool call (bench/bench_tunnel.py), then 49 → 9 ms with TCP_NODELAY on the
        # listener (48 → 3.3 ms in one process, bench/bench_capabilities.py).
        self._mcp = FastMCP(self.server_name, log_level="WARNING", streamable_http_path=MCP_PATH,
                            json_response=True)
        # The SDK logs every request at INFO ("Processing request of type ..."): a log
        # write per tool call, and a serve.log that grows with the agent's calls
        logging.getLogger("mcp").setLevel(logging.WARNING)
        logging.getLogger("mcp.server.streamable_http").addFilter(_quiet_client_close)
        for spec in self._specs.values():
            self._mcp.add_tool(spec.fn, name=spec.name, description=spec.description)
        config = uvicorn.Config(
            self._mcp.streamable_http_app(), log_level="warning", access_log=False,
            lifespan="on", timeout_graceful_shutdown=int(STOP_TIMEOUT),
            http="h11", ws="none",  # the only protocol spoken here; no websockets import
        )
        server = self._server = _Server(config)
        task = self._task = asyncio.create_task(server.serve(sockets=[sock]), name=f"mcp:{self.name}")
        deadline = time.monotonic() + START_TIMEOUT
        while not server.started:
            if task.done() or time.monotonic() > deadline:
                error = task.exception() if task.done() else None
                await _abandon(server, task)
                raise InfraError(
                    f"the MCP server for capability {self.name!r} did not start within "
                    f"{START_TIMEOUT:g}s ({error!r}); see the hud serve log"
                )
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        """Stop serving (idempotent); open requests get a few seconds to finish."""
        activation, server, task = self._activation, self._server, self._task
        self._activation = self._server = self._task = None
        self._mcp = None
        self._binding = None
        if activation is not None:
            await activation.close()
        if server is not None and task is not None:
            server.should_exit = True
            try:
                await asyncio.wait_for(asyncio.shield(task), STOP_TIMEOUT)
            except Exception:  # noqa: BLE001 — a timeout, or the server task failed: force it down
                server.force_exit = True
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await asyncio.wait_for(task, STOP_TIMEOUT)
        if activation is not None:
            activation.sock.close()

    async def task_ended(self) -> None:
        """Remove the tools registered for the task that just ended."""
        for spec in [s for s in self._specs.values() if s.task]:
            self.remove_tool(spec.name)

    async def healthy(self) -> bool:
        """Whether it serves: listening for its first client, starting, or the HTTP server
        task alive and started."""
        activation = self._activation
        if activation is None or activation.failed is not None:
            return False
        if self._task is None or activation.pending:
            return True  # no client yet, or the SDK is loading, or uvicorn is starting
        return not self._task.done() and bool(self._server and self._server.started)
