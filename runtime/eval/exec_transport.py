"""Reach a daemon inside a running container through `docker exec -i ... hud connect`.

One `docker exec -i CONTAINER hud connect` process per connection: the control channel,
and one per tunnel (`--tunnel NAME`). Every process is reaped when the transport closes.

The control channel is one exec, even for a container that was started a moment ago:
`hud connect --wait SECONDS` waits in the container for the daemon's socket to accept,
and the `hello` written at once is answered as soon as it does; the answer (the
manifest) is kept for the rollout, which never asks again. No retry loop of execs.

Used by the docker and attach placements. The processes are started by
`hud.build.docker.spawn` (so `HUD_DOCKER` holds), the diagnostics read through
`hud.build.docker.adocker`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from typing import Any

from hud.build import docker as hd
from hud.clients.channel import Channel
from hud.errors import DockerError, InfraError
from hud.eval.lease import HELLO, Streams

#: seconds the host waits for `hello` beyond the container-side wait (the exec's own start)
READY_MARGIN = 30.0
#: seconds given to a container whose exec ended under it to show as stopped
STOP_SETTLE = 10.0


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
        """A control channel, opened with one exec that waits for the daemon itself.

        `hud connect --wait` waits in the container (bounded by `ready_timeout`) for the
        daemon to accept; the `hello` is written at once and answered as soon as it
        does. The answer is kept in `self.hello`.

        Raises:
            InfraError: the container stopped (or was never running) before its daemon
                answered, or the daemon did not answer within `ready_timeout`; the message
                has the container's state and log tail.
            DockerError: the Docker engine cannot be reached.
        """
        proc, (reader, writer) = await self._exec_streams("--wait", f"{ready_timeout:g}")
        ready = False

        async def diagnose() -> str:  # once ready; before, the failure is told below
            return await self.logs() if ready else ""

        channel = Channel(reader, writer, describe=f"container {self.container}",
                          on_close=functools.partial(_reap, proc), diagnose=diagnose)
        try:
            self.hello = await channel.call("hello", dict(HELLO),
                                            timeout=ready_timeout + READY_MARGIN)
        except InfraError as exc:
            await channel.close()
            raise await self._not_ready(proc, str(exc), ready_timeout) from exc
        except BaseException:
            await channel.close()
            raise
        ready = True
        self._procs.append(proc)
        return channel

    async def _not_ready(self, proc: asyncio.subprocess.Process, why: str,
                         ready_timeout: float) -> InfraError:
        """The error for a `hud connect --wait` that ended without a `hello` answer."""
        said = (await proc.stderr.read()).decode(errors="replace").strip() if proc.stderr else ""
        if not said.startswith("error: "):
            # hud connect did not end by itself: its exec went with the container, whose
            # state docker may not show as exited yet; give it a moment to
            with contextlib.suppress(DockerError):
                await hd.adocker("wait", self.container, timeout=STOP_SETTLE,
                                 binary=self.docker)
        # the daemon log tail connect quoted is in `docker logs` below too (with the env's
        # own output): keep connect's one line
        said = said.split("\nlast lines of the daemon log:", 1)[0] or why
        if hd.engine_down(said):
            return DockerError(f"cannot reach container {self.container}: {said}\nthe Docker "
                               f"engine is not reachable; {hd.FIX_START}")
        if "no such option: --wait" in said.lower():
            return InfraError(f"the hud in container {self.container} predates `hud connect "
                              f"--wait`: {said}\nrebuild its image with this hud (`hud build`)")
        logs = await self.logs()
        status = logs.partition("\n")[0].partition(": ")[2]
        if not status.startswith("running"):
            return InfraError(f"container {self.container} stopped before its hud daemon "
                              f"answered hello ({said})\n{logs}")
        return InfraError(f"the hud daemon in container {self.container} did not answer hello "
                          f"(waited up to {ready_timeout:g}s): {said}\n{logs}")

    async def tunnel(self, name: str) -> Streams:
        return await self._open("--tunnel", name)

    async def close(self) -> None:
        for proc in self._procs:
            await _reap(proc)
        self._procs.clear()
