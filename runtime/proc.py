"""The one way hud runs a subprocess (docker, debootstrap, chromium, pip, ...).

Every call has a timeout and returns the exit code with both output streams, so callers
decide what a failure means and can quote the tail of the log in their error.

Design decisions:
- **Bounded output.** Each stream is read up to `limit` bytes. A program that writes more
  is killed (with its whole process group when it leads one, as `timeout(1)` does) and
  its result keeps the first `limit` bytes and says `truncated`. The daemon runs commands
  the agent can influence (setup, grading): their output must never grow its memory
  without bound (1 GiB of test output once grew it to 2.1 GB and got it OOM-killed).
- **One implementation.** `run` is `arun` on an event loop of its own (on a worker thread
  when the caller is itself inside a running loop), so the two cannot drift apart.
- **Nothing outlives a failed call.** A timeout, an overflow or a cancelled caller kills
  the child; pipes a grandchild still holds are closed rather than waited for.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from hud.errors import InfraError

#: default bound on each of stdout and stderr, in bytes
DEFAULT_LIMIT = 16 << 20
KILL_WAIT = 5.0


@dataclass(frozen=True)
class Completed:
    """A finished subprocess: its argv, exit code and decoded output.

    `truncated` is True when a stream passed the byte limit: the process was killed then,
    and stdout/stderr hold only the first `limit` bytes of each stream.
    """

    argv: tuple[str, ...]
    code: int
    stdout: str
    stderr: str
    truncated: bool = False

    @property
    def ok(self) -> bool:
        return self.code == 0

    def tail(self, lines: int = 20) -> str:
        """The last lines of stderr (or stdout when stderr is empty), for error messages."""
        text = self.stderr.strip() or self.stdout.strip()
        return "\n".join(text.splitlines()[-lines:])


def run(
    argv: Sequence[str],
    *,
    timeout: float,
    input: bytes | str | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    limit: int = DEFAULT_LIMIT,
) -> Completed:
    """Run `argv` to completion and capture its output (blocking twin of `arun`).

    Args:
        argv: the program and its arguments (never through a shell).
        timeout: seconds before the program is killed and InfraError raised.
        input: bytes or text fed to stdin (stdin is /dev/null without it).
        env: the complete environment (default: inherit this process's).
        cwd: working directory.
        limit: bytes kept per output stream; past it the program is killed and the
            result is `truncated`.

    Raises:
        InfraError: the program is missing, or it ran past `timeout` seconds (it is killed).
        ValueError: `limit` is not positive.
    """
    def call() -> Completed:
        return asyncio.run(arun(argv, timeout=timeout, input=input, env=env, cwd=cwd, limit=limit))

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return call()
    # called from synchronous code inside a running loop: that loop cannot be re-entered
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(call).result()


async def arun(
    argv: Sequence[str],
    *,
    timeout: float,
    input: bytes | str | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    limit: int = DEFAULT_LIMIT,
) -> Completed:
    """Run `argv` to completion and capture its output without blocking the event loop.

    Same arguments as `run`.

    Raises:
        InfraError: the program is missing, or it ran past `timeout` seconds (it is killed).
        ValueError: `limit` is not positive.
    """
    if limit < 1:
        raise ValueError(f"limit={limit} bytes; give a positive bound on each output stream")
    data = input.encode() if isinstance(input, str) else input
    loop = asyncio.get_running_loop()
    try:
        transport, capture = await loop.subprocess_exec(
            lambda: _Capture(loop, limit), *argv,
            stdin=subprocess.PIPE if data is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=dict(env) if env is not None else None, cwd=cwd)
    except FileNotFoundError as exc:
        raise InfraError(f"{argv[0]!r} is not installed or not on PATH ({exc})") from exc
    try:
        if data is not None:
            stdin = transport.get_pipe_transport(0)
            assert isinstance(stdin, asyncio.WriteTransport)
            stdin.write(data)  # a child that exits without reading it is fine
            stdin.write_eof()
        await asyncio.wait({capture.closed, capture.overflow}, timeout=timeout,
                           return_when=asyncio.FIRST_COMPLETED)
    except BaseException:  # the caller was cancelled: the child must not outlive the call
        _kill(transport)
        raise
    if not capture.closed.done():
        _kill(transport)
        try:
            await asyncio.wait_for(asyncio.shield(capture.closed), KILL_WAIT)
        except TimeoutError:
            raise InfraError(f"{' '.join(argv)!r} was killed but did not exit within "
                             f"{KILL_WAIT:g}s") from None
        if not capture.overflow.done():
            raise InfraError(f"{' '.join(argv)!r} did not finish within {timeout:g}s and "
                             f"was killed")
    transport.close()
    code = transport.get_returncode()
    assert code is not None
    out, err = (bytes(capture.streams[fd]).decode(errors="replace") for fd in (1, 2))
    return Completed(tuple(argv), code, out, err, truncated=capture.overflow.done())


class _Capture(asyncio.SubprocessProtocol):
    """Keeps up to `limit` bytes of stdout and stderr; past that, stops reading both."""

    def __init__(self, loop: asyncio.AbstractEventLoop, limit: int) -> None:
        self.limit = limit
        self.streams = {1: bytearray(), 2: bytearray()}
        self.transport: asyncio.SubprocessTransport | None = None
        #: done when a stream passed the limit
        self.overflow: asyncio.Future[None] = loop.create_future()
        #: done when the process exited and every pipe is closed
        self.closed: asyncio.Future[None] = loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.SubprocessTransport)
        self.transport = transport

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        kept = self.streams[fd]
        room = self.limit - len(kept)
        kept += data[:room]
        if len(data) > room and not self.overflow.done():
            self.overflow.set_result(None)
            assert self.transport is not None
            for out in (1, 2):  # the child now blocks in write(2) until it is killed
                pipe = self.transport.get_pipe_transport(out)
                if isinstance(pipe, asyncio.ReadTransport) and pipe.is_reading():
                    pipe.pause_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


def _kill(transport: asyncio.SubprocessTransport) -> None:
    """SIGKILL the child (its whole process group if it made one) and close its pipes.

    A grandchild may hold the pipes open: closing our ends means nobody waits for it.
    """
    pid = transport.get_pid()
    if transport.get_returncode() is None:
        with contextlib.suppress(ProcessLookupError):
            # a child that made itself a group leader (timeout(1), setsid) owns that group
            if os.getpgid(pid) == pid:
                os.killpg(pid, signal.SIGKILL)
            else:
                os.kill(pid, signal.SIGKILL)
    transport.close()
