"""Start a rollout's container and reach its daemon over the `docker run -i` itself.

The docker placement's own containers need no `docker exec` at all: the container is
started with `docker run -i --rm` and `HUD_CONNECT=stdio`, and its daemon serves the
multiplexed connection (plain control lines, then SSH at the first tunnel) on the run's
stdin/stdout (hud.serve.attached). So a rollout pays for one docker client process and
no runc exec, the `hello` written at once is answered as soon as the daemon listens,
and the container's lifetime is the connection's: closing it (or this process dying,
or the docker client being killed) ends the daemon, the container exits and docker
removes it (`--rm`). `finish()` waits for that, bounded, and removes the container
itself only when it did not go.

The container's output is not logged by docker (`--log-driver none`: its stdout is the
connection); the daemon's log arrives on the run's stderr, which is read all along (a
full pipe would stall the daemon) and its tail kept for error messages. Only images
built with this hud serve their stdio (the placement checks `CONNECT_LABEL`); others are
reached with ExecTransport, which this extends.
"""

from __future__ import annotations

import asyncio
import contextlib

from hud.build import docker as hd
from hud.errors import DockerError, HudError, InfraError, ProtocolError
from hud.eval.exec_transport import ExecTransport

#: bytes of the run's stderr (docker's messages, the daemon's log) kept for errors
STDERR_TAIL = 16 * 1024
#: seconds a container gets to stop and go once its connection is closed (the daemon
#: itself exits within hud.serve.attached.STOP_BOUND)
GONE_TIMEOUT = 30.0
#: seconds the host gives `docker run` itself (creating and starting the container) on
#: top of the placement's ready_timeout for the daemon
START_MARGIN = 10.0
#: seconds a container whose daemon never answered gets to go before it is removed
NOT_READY_GRACE = 2.0
#: the exit status `docker run` gives when the container could not be started at all
RUN_FAILED = 125


class RunTransport(ExecTransport):
    """Start a container with `docker run -i ... IMAGE` (`run_args`, which name it `name`
    and set `HUD_CONNECT=stdio`) and reach its daemon over the run's stdin/stdout.

    Args:
        name: the container's name (`--name` in `run_args`).
        run_args: the docker arguments, from `run` to the image.
        docker: the docker client [default: `$HUD_DOCKER`, else `docker` on PATH].
    """

    def __init__(self, name: str, run_args: list[str], docker: str | None = None) -> None:
        super().__init__(name, docker)
        self.run_args = list(run_args)
        self._tail = bytearray()
        self._drain: asyncio.Task[None] | None = None
        self._killed = False  # the docker client was ended here, not by the container

    def _command(self, ready_timeout: float) -> list[str]:
        return self.run_args

    def _hello_timeout(self, ready_timeout: float) -> float:
        return ready_timeout + START_MARGIN

    def _started(self, proc: asyncio.subprocess.Process) -> None:
        self._drain = asyncio.ensure_future(self._read_stderr(proc))

    async def _read_stderr(self, proc: asyncio.subprocess.Process) -> None:
        if proc.stderr is None:
            return
        with contextlib.suppress(Exception):
            while chunk := await proc.stderr.read(1 << 14):
                self._tail += chunk
                del self._tail[:-STDERR_TAIL]

    def stderr_tail(self) -> str:
        """The last lines of the run's stderr: docker's own messages, the daemon's log."""
        return self._tail.decode(errors="replace").strip()

    async def logs(self) -> str:
        """The container's state and the tail of the daemon's log, for error messages."""
        status = await self.state() or "gone (removed)"
        return f"container {self.container}: {status}\n{self.stderr_tail()[-2000:]}"

    async def _not_ready(self, proc: asyncio.subprocess.Process, why: str,
                         ready_timeout: float, cause: BaseException | None = None) -> HudError:
        """The error for a run whose daemon gave no `hello` answer (the run reaped)."""
        if self._drain is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._drain), 5)
        said = self.stderr_tail()
        if hd.engine_down(said):
            return DockerError(f"cannot start container {self.container}: {said[-500:]}\n"
                               f"the Docker engine is not reachable; {hd.FIX_START}")
        if proc.returncode == RUN_FAILED:
            return DockerError(f"docker run {self.run_args[-1]} failed: {said[-1500:]}")
        if isinstance(cause, ProtocolError):  # the host ended the run on a bad answer
            return InfraError(f"the container {self.container} did not answer hello as a hud "
                              f"daemon does ({why}); the container was removed. Its log "
                              f"ends:\n{said[-2000:]}")
        if proc.returncode is not None and not self._killed:
            return InfraError(f"container {self.container} stopped before its hud daemon "
                              f"answered hello (exit={proc.returncode}; {why})\n{said[-2000:]}")
        return InfraError(f"the hud daemon in container {self.container} did not answer hello "
                          f"(waited up to {ready_timeout:g}s after the container's start, "
                          f"+{START_MARGIN:g}s for the start itself): it is still starting; "
                          f"the container was removed. Its log ends:\n{said[-2000:]}")

    async def finish(self, timeout: float = GONE_TIMEOUT) -> None:
        """Wait (up to `timeout`) for the container to go once disconnected (closing the
        connection stops the daemon, the container exits and docker removes it); if it has
        not, end the docker client and remove the container (`docker rm -f`)."""
        proc = self._proc
        if proc is None:
            return
        gone = False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), timeout)
            gone = True
        if not gone:
            self._killed = True
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(proc.wait(), 10)
        if not gone or proc.returncode != 0:
            # a run that failed, or a container that did not go by itself
            with contextlib.suppress(DockerError):
                await hd.adocker("rm", "-f", self.container, timeout=60, binary=self.docker)
        if self._drain is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._drain, 5)

    async def close(self) -> None:
        """Close the connection and wait for the container to go (`disconnect`, then
        `finish`); one whose daemon never answered is not waited for long (it may not
        be reading its stdin yet) before it is removed."""
        await self.disconnect()
        await self.finish(GONE_TIMEOUT if self.hello is not None else NOT_READY_GRACE)
