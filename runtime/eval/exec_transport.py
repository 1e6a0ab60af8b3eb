"""Reach a daemon inside a running container through `docker exec -i ... hud connect`.

One `docker exec -i CONTAINER hud connect` process per connection: the control channel
(retried until the daemon answers `hello`), and one per tunnel (`--tunnel NAME`). Every
process is reaped when the transport closes. Used by the docker and attach placements.
The processes are started by `hud.build.docker.spawn` (so `HUD_DOCKER` holds), the
diagnostics read through `hud.build.docker.adocker`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from typing import Any

from hud.build import docker as hd
from hud.clients.channel import Channel
from hud.errors import DockerError, InfraError

Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def _reap(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(proc.wait(), 10)


class ExecTransport:
    """Reach a daemon inside a running container through `docker exec -i`.

    Args:
        container: the container's name or id.
        docker: the docker client [default: `$HUD_DOCKER`, else `docker` on PATH].
    """

    def __init__(self, container: str, docker: str | None = None) -> None:
        self.container = container
        self.docker = docker
        self._procs: list[asyncio.subprocess.Process] = []
        #: the daemon's answer to `hello` on the last channel opened
        self.hello: Any = None

    def _connect_args(self, *extra: str) -> list[str]:
        return ["exec", "-i", self.container, "hud", "connect", *extra]

    def argv(self, *extra: str) -> list[str]:
        """The command line of one `hud connect` process (`extra`: e.g. `--tunnel NAME`).

        Raises:
            DockerError: no docker client is installed.
        """
        return hd.argv(*self._connect_args(*extra), binary=self.docker)

    async def _exec_streams(self, *extra: str) -> tuple[asyncio.subprocess.Process, Streams]:
        proc = await hd.spawn(*self._connect_args(*extra), binary=self.docker)
        assert proc.stdout is not None and proc.stdin is not None
        return proc, (proc.stdout, proc.stdin)

    async def _open(self, *extra: str) -> Streams:
        proc, streams = await self._exec_streams(*extra)
        self._procs.append(proc)
        return streams

    async def logs(self) -> str:
        """The container's state and the tail of its log, for error messages."""
        done = await hd.adocker("logs", "--tail", "20", self.container, timeout=20,
                                binary=self.docker)
        state = await hd.adocker("inspect", "-f", "{{.State.Status}} exit={{.State.ExitCode}} "
                                 "oom={{.State.OOMKilled}}", self.container, timeout=20,
                                 binary=self.docker)
        status = state.stdout.strip() if state.ok else "gone (no such container)"
        return f"container {self.container}: {status}\n{(done.stdout + done.stderr).strip()}"

    async def channel(self, ready_timeout: float) -> Channel:
        """A control channel, retried until the daemon answers `hello`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + ready_timeout
        last = ""
        while True:
            proc, (reader, writer) = await self._exec_streams()
            channel = Channel(reader, writer, describe=f"container {self.container}",
                              on_close=functools.partial(_reap, proc), diagnose=self.logs)
            try:
                self.hello = await channel.call("hello", {"client": "hud-eval"}, timeout=30)
                self._procs.append(proc)
                return channel
            except InfraError as exc:
                last = str(exc)
                await channel.close()
                stderr = (await proc.stderr.read()).decode(errors="replace") if proc.stderr else ""
                last = stderr.strip() or last
                if "No such container" in last or "is not running" in last:
                    raise InfraError(f"container {self.container} is not running: {last}") from exc
                if hd.engine_down(last):
                    raise DockerError(f"cannot reach container {self.container}: {last}\nthe "
                                      f"Docker engine is not reachable; {hd.FIX_START}") from exc
            if loop.time() > deadline:
                raise InfraError(f"the hud daemon in {self.container} did not answer within "
                                 f"{ready_timeout:g}s: {last}\n{await self.logs()}")
            await asyncio.sleep(0.1)

    async def tunnel(self, name: str) -> Streams:
        return await self._open("--tunnel", name)

    async def close(self) -> None:
        for proc in self._procs:
            await _reap(proc)
        self._procs.clear()
