"""Socket activation: a capability listens at start and loads its server at the first client.

Design decisions:
- **Why.** The ssh and mcp servers stand on big libraries (asyncssh; the MCP SDK with
  its pydantic models, starlette and uvicorn): loaded at start they cost the daemon
  ~30 MB and ~0.5 s before the manifest is served (74.6 → 44.3 MB idle, 768 → 301 ms
  start to manifest, bench/bench_capabilities.py), even when no client ever connects
  (an idle warm-pool container, a rollout that never calls a tool). So `start()` only
  binds the listening socket, which is all the binding needs, and the server is loaded
  when the first client connects. That client waits for the load instead (~0.1 s for
  ssh, ~0.3 s for mcp); a warm pool that would rather pay it ahead can open and close
  one tunnel to each capability.
- **No accept before the server exists.** The socket listens from `start()`, so a
  client's connect completes at once in the kernel's backlog; the event loop only watches
  the socket for readability. At the first pending connection the watch is dropped and
  `activate()` runs once: it imports the library and hands the very same listening
  socket to the real server (`loop.create_server(sock=...)` underneath), which accepts
  the waiting connection. Nothing is proxied, no byte is buffered by us.
- **Failures are loud.** If `activate()` raises, the error is logged with its traceback,
  the socket is closed (waiting clients see the connection reset, not a hang) and
  `failed` is set, so the capability reports itself unhealthy and the daemon restarts it.
- **TCP_NODELAY.** `loopback_listener()` makes its socket with `proto=IPPROTO_TCP`:
  asyncio turns Nagle's algorithm off on an accepted connection only when the socket says
  it is TCP, and a bare `socket(AF_INET, SOCK_STREAM)` has proto 0. With Nagle on, a
  response written as headers then body (h11 does) waits for the client's delayed ACK:
  ~40 ms per MCP `tools/call` (bench/bench_capabilities.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Awaitable, Callable

log = logging.getLogger("hud.capabilities.activation")

BACKLOG = 128


def loopback_listener(backlog: int = BACKLOG) -> socket.socket:
    """A non-blocking TCP socket listening on 127.0.0.1 at an ephemeral port, whose
    connections send every write at once (TCP_NODELAY, see the module doc).

    Raises:
        OSError: the socket could not be bound (no loopback interface).
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Linux copies the listener's TCP_NODELAY to the connections it accepts: set here
        # too, so that a server not going through asyncio's transports gets it as well.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(backlog)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class FirstConnection:
    """Runs `activate()` once, when the first client connects to the listening `sock`.

    Create it inside the running event loop. `activate` must hand `sock` to a server that
    accepts on it; until it is called nothing accepts, so connections wait in the backlog.

    Args:
        sock: a listening socket (`loopback_listener()`).
        activate: the coroutine function that loads and starts the real server.
        name: the capability's name, for the log and the task's name.
    """

    def __init__(self, sock: socket.socket, activate: Callable[[], Awaitable[None]],
                 name: str) -> None:
        self.sock = sock
        self.name = name
        self._activate = activate
        self._loop = asyncio.get_running_loop()
        self._task: asyncio.Task[None] | None = None
        #: why activation failed, once it has
        self.failed: BaseException | None = None
        self._watching = True
        self._loop.add_reader(sock.fileno(), self._connected)

    @property
    def activated(self) -> bool:
        """Whether a client has connected (activation ran or is running)."""
        return self._task is not None

    @property
    def pending(self) -> bool:
        """Whether activation is running right now (a client connected, not served yet)."""
        return self._task is not None and not self._task.done()

    def _connected(self) -> None:
        self._unwatch()
        self._task = self._loop.create_task(self._run(), name=f"activate:{self.name}")

    async def _run(self) -> None:
        try:
            await self._activate()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # logged here, reported through `failed`
            self.failed = exc
            log.exception("capability %r could not start serving at its first connection; "
                          "its clients are disconnected and it will be restarted", self.name)
            self.sock.close()

    async def wait(self) -> None:
        """Wait until activation finished (at once if no client connected yet)."""
        if self._task is not None:
            await asyncio.shield(self._task)

    def _unwatch(self) -> None:
        if self._watching:
            self._watching = False
            if self.sock.fileno() >= 0:
                self._loop.remove_reader(self.sock.fileno())

    async def close(self) -> None:
        """Stop watching and cancel an activation in progress (the caller closes `sock`)."""
        self._unwatch()
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
