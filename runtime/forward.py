"""Host side: a loopback TCP port whose every connection is piped through a fresh command.

A capability inside a container is reached only through an exec tunnel
(`docker exec -i run1 hud connect --tunnel tools`). Clients that want a URL (the MCP SDK's
streamable HTTP client, later CDP and VNC clients) get one from a `Forwarder`: it listens
on 127.0.0.1 at an ephemeral port and, for each accepted connection, spawns the tunnel
command and copies bytes both ways.

Design decisions:
- **One process per connection, never leaked.** When the command's output ends, the
  client is closed; when the client stops sending, the command gets EOF on stdin and
  `LINGER` seconds to finish its output. Then (or on `stop()`) it is terminated, killed
  if it ignores that, and always reaped. Each command runs in its own session so the
  signal reaches whatever it spawned.
- **Backpressure.** Each direction awaits `drain()`, so a slow reader slows the writer
  instead of growing a buffer.
- ssh does not need this: asyncssh's `connect(..., proxy_command=[...])` (and OpenSSH's
  `-o ProxyCommand=`) run the tunnel command themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
from collections import deque
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Self

log = logging.getLogger("hud.forward")

CHUNK = 1 << 16
LINGER = 30.0
TERM_TIMEOUT = 5.0


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until EOF, then pass the EOF on (half-close) where the transport allows it."""
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
        else:
            writer.close()
    except (ConnectionError, RuntimeError):
        pass


async def _tail(reader: asyncio.StreamReader, lines: deque[str]) -> None:
    while line := await reader.readline():
        lines.append(line.decode(errors="replace").rstrip())


class Forwarder:
    """Listen on 127.0.0.1 and pipe each connection through a new `argv` process.

    Args:
        argv: the tunnel command, e.g. `["docker", "exec", "-i", "run1", "hud",
            "connect", "--tunnel", "tools"]`.
        env: environment for the command (default: the caller's).
        linger: seconds the command may keep writing after the client stopped sending.

    Use as `async with Forwarder(argv) as fwd: ... fwd.port ...`, or `start()`/`stop()`.
    """

    def __init__(
        self, argv: Sequence[str], *, env: Mapping[str, str] | None = None, linger: float = LINGER
    ) -> None:
        if not argv:
            raise ValueError("Forwarder needs a command to run for each connection")
        self.argv = list(argv)
        self.env = dict(env) if env is not None else None
        self.linger = linger
        self.port = 0
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._procs: set[asyncio.subprocess.Process] = set()
        self._ending: set[asyncio.Future[None]] = set()

    @property
    def url(self) -> str:
        """`tcp://127.0.0.1:PORT` once started."""
        return f"tcp://127.0.0.1:{self.port}"

    @property
    def active(self) -> int:
        """How many tunnel processes are running now."""
        return sum(1 for proc in self._procs if proc.returncode is None)

    async def start(self) -> str:
        """Start listening; returns the URL."""
        if self._server is None:
            self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
            self.port = self._server.sockets[0].getsockname()[1]
        return self.url

    async def stop(self) -> None:
        """Stop listening, close every connection, and end every tunnel process (idempotent)."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for task in list(self._handlers):
            task.cancel()
        if self._handlers:
            await asyncio.wait(self._handlers, timeout=TERM_TIMEOUT * 2)
        if self._ending:
            await asyncio.wait(self._ending, timeout=TERM_TIMEOUT * 2)
        if server is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(server.wait_closed(), TERM_TIMEOUT)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)
        proc: asyncio.subprocess.Process | None = None
        stderr: deque[str] = deque(maxlen=20)
        pumps: list[asyncio.Task[None]] = []
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, env=self.env, start_new_session=True,
            )
            self._procs.add(proc)
            assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
            up = asyncio.create_task(_copy(reader, proc.stdin))
            down = asyncio.create_task(_copy(proc.stdout, writer))
            pumps = [up, down, asyncio.create_task(_tail(proc.stderr, stderr))]
            await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
            if not down.done():
                # the client stopped sending: let the command finish its answer
                await asyncio.wait({down}, timeout=self.linger)
        except OSError as exc:
            log.warning("tunnel command %s could not start: %s", self.argv[0], exc)
        finally:
            writer.close()
            if proc is not None:
                # shielded and tracked: a stop() cancelling this handler still reaps proc
                ending = asyncio.ensure_future(self._end(proc, pumps))
                self._ending.add(ending)
                ending.add_done_callback(self._ending.discard)
                await asyncio.shield(ending)
                if proc.returncode not in (0, -signal.SIGTERM, -signal.SIGKILL) and stderr:
                    log.warning("tunnel command exited %s: %s", proc.returncode, " | ".join(stderr))

    async def _end(self, proc: asyncio.subprocess.Process, pumps: list[asyncio.Task[None]]) -> None:
        """Stop the pumps, then TERM (later KILL) the command's group and reap it.

        Reaping reads the rest of its output to EOF: on Python 3.11 a subprocess is only
        reaped once its pipes are closed, and a paused pipe never would be.
        """
        for pump in pumps:
            pump.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, sig)
            try:
                await asyncio.wait_for(proc.communicate(), TERM_TIMEOUT)
                break
            except (TimeoutError, OSError):
                continue
        self._procs.discard(proc)
