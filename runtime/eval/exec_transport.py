"""Reach a daemon inside a running container through one `docker exec -i ... hud connect
--mux`.

One exec per container carries everything: the control channel and every tunnel are
streams of one SSH connection over the exec's stdin/stdout (hud.serve.mux,
hud.clients.mux), so a rollout pays for one `docker exec` and opening a tunnel costs a
round trip inside it. When the exec ends (killed, the container stopped), every stream
on it ends: the control channel's next call is an `InfraError`, never a hang.

The connection is made with one exec, even for a container that was started a moment
ago: `hud connect --mux --wait SECONDS` waits in the container for the daemon's socket
to accept, and the `hello` written at once is answered as soon as it does. The answer
(the manifest) is kept for the rollout, which never asks again. The connection carries
plain control lines until the first tunnel: `tunnel()` then starts SSH on it
(hud.serve.upgrade) and moves the control channel onto an SSH stream, the same daemon
session; a rollout that opens no tunnel never pays for SSH on either side.

Used by the docker and attach placements. The process is started by
`hud.build.docker.spawn` (so `HUD_DOCKER` holds), the diagnostics read through
`hud.build.docker.adocker`.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
from typing import Any, cast

from hud.build import docker as hd
from hud.clients.channel import Channel
from hud.clients.mux import MuxConnection
from hud.errors import DockerError, HudError, InfraError, ProtocolError
from hud.eval.lease import HELLO, Streams
from hud.serve.upgrade import SWITCH, SWITCHED

#: seconds the host waits for `hello` beyond the container-side wait (the exec's own start)
READY_MARGIN = 30.0
#: seconds given to a container whose exec ended under it to show as stopped
STOP_SETTLE = 10.0
#: seconds the exec gets to end by itself once its connection is closed
EXIT_GRACE = 2.0
#: seconds SSH may take to start on the connection (the container imports asyncssh)
SSH_START_TIMEOUT = 60.0
#: bytes of the control channel's answers the host buffers before it stops reading
STREAM_LIMIT = 1 << 20
#: what click says (old and new wording) when the image's hud lacks --mux or --wait
_OLD_HUD = re.compile(r"no such option:? '?--(mux|wait)\b", re.IGNORECASE)
#: what an image's `hud connect --mux` that starts with SSH says to control lines: its
#: identification string (read as the answer), or its complaint on stderr
_SSH_FIRST = re.compile(r"SSH-2\.0-|no SSH client on stdin/stdout")
#: the destination name of the control stream (hud.serve.mux.CONTROL; not imported from
#: there, which would load asyncssh before it is needed)
CONTROL = "hud-control"


async def _reap(proc: asyncio.subprocess.Process, grace: float = 0.0) -> None:
    if grace and proc.returncode is None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), grace)
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(proc.wait(), 10)


class ExecTransport:
    """Reach a daemon inside a running container through one `docker exec -i`.

    Args:
        container: the container's name or id.
        docker: the docker client [default: `$HUD_DOCKER`, else `docker` on PATH].
    """

    def __init__(self, container: str, docker: str | None = None) -> None:
        self.container = hd.checked_ref(container, "container")  # never a docker option
        self.docker = docker
        self._proc: asyncio.subprocess.Process | None = None
        #: the control channel, and the writer of the exec's pipes while they carry it
        #: alone (before SSH starts)
        self._control: Channel | None = None
        self._plain: asyncio.StreamWriter | None = None
        self._mux: MuxConnection | None = None
        self._switching = asyncio.Lock()
        #: the daemon's answer to `hello` on the control channel
        self.hello: Any = None

    @property
    def pid(self) -> int | None:
        """The pid of the `docker exec` client process carrying the connection."""
        return self._proc.pid if self._proc is not None else None

    async def state(self) -> str | None:
        """The container's state ("running exit=0 oom=false"), None once it is gone."""
        state = await hd.adocker("inspect", "-f", "{{.State.Status}} exit={{.State.ExitCode}} "
                                 "oom={{.State.OOMKilled}}", self.container, timeout=20,
                                 binary=self.docker)
        return state.stdout.strip() if state.ok else None

    async def logs(self) -> str:
        """The container's state and the tail of its log, for error messages."""
        done = await hd.adocker("logs", "--tail", "20", self.container, timeout=20,
                                binary=self.docker)
        status = await self.state() or "gone (no such container)"
        return f"container {self.container}: {status}\n{(done.stdout + done.stderr).strip()}"

    async def channel(self, ready_timeout: float) -> Channel:
        """The control channel, on a connection opened with one exec that waits for the
        daemon itself.

        `hud connect --mux --wait` waits in the container (bounded by `ready_timeout`)
        for the daemon to accept; the `hello` is written at once and answered as soon as
        it does. The answer is kept in `self.hello`. Call it once per transport.

        Raises:
            InfraError: the container stopped (or was never running) before its daemon
                answered, or the daemon did not answer within `ready_timeout`; the message
                has the container's state and log tail.
            DockerError: the Docker engine cannot be reached.
        """
        if self._proc is not None:
            raise InfraError(f"container {self.container}: this transport is connected "
                             f"already; open tunnels on it, or make another")
        ours, theirs = socket.socketpair()
        try:
            proc = await hd.spawn(*self._command(ready_timeout), binary=self.docker,
                                  stdio=theirs)
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self._proc = proc
        self._started(proc)
        ready = False

        async def diagnose() -> str:  # once ready; before, the failure is told below
            return await self.logs() if ready else ""

        try:
            ours.setblocking(False)
            reader, writer = await asyncio.open_connection(sock=ours, limit=STREAM_LIMIT)
            channel = Channel(reader, writer, describe=f"container {self.container}",
                              diagnose=diagnose)
            self._control, self._plain = channel, writer
            try:
                self.hello = await channel.call("hello", dict(HELLO),
                                                timeout=self._hello_timeout(ready_timeout))
            except BaseException:
                await channel.close()
                raise
        except (InfraError, ProtocolError) as exc:
            await self.close()
            raise await self._not_ready(proc, str(exc), ready_timeout, exc) from exc
        except BaseException:
            await self.close()
            raise
        ready = True
        return channel

    def _command(self, ready_timeout: float) -> list[str]:
        """The docker command whose stdin/stdout are the connection."""
        return ["exec", "-i", self.container, "hud", "connect", "--mux", "--wait",
                f"{ready_timeout:g}"]

    def _hello_timeout(self, ready_timeout: float) -> float:
        """How long the host waits for the `hello` answer (the exec waits in the
        container up to `ready_timeout`; then it says why)."""
        return ready_timeout + READY_MARGIN

    def _started(self, proc: asyncio.subprocess.Process) -> None:
        """Called once the docker command runs, before the `hello`."""

    async def _not_ready(self, proc: asyncio.subprocess.Process, why: str,
                         ready_timeout: float, cause: BaseException | None = None) -> HudError:
        """The error for a `hud connect --mux` that gave no `hello` answer (reaped);
        `cause` is the error the hello call raised."""
        said = ""
        if proc.stderr is not None:
            with contextlib.suppress(Exception):
                said = (await asyncio.wait_for(proc.stderr.read(), 5)).decode(
                    errors="replace").strip()
        if not said and "no hud daemon answered" not in why:
            # the exec went with the container, whose state docker may not show as
            # exited yet; give it a moment to
            with contextlib.suppress(DockerError):
                await hd.adocker("wait", self.container, timeout=STOP_SETTLE,
                                 binary=self.docker)
        said = said or why
        # the daemon log tail connect quoted is in `docker logs` below too (with the env's
        # own output): keep connect's one line
        said = said.split("\nlast lines of the daemon log:", 1)[0]
        if hd.engine_down(said):
            return DockerError(f"cannot reach container {self.container}: {said}\nthe Docker "
                               f"engine is not reachable; {hd.FIX_START}")
        if _SSH_FIRST.search(said) or _SSH_FIRST.search(why):
            return InfraError(f"the hud in container {self.container} speaks an older `hud "
                              f"connect --mux` (SSH from the first byte): {said[-300:]}\n"
                              f"rebuild its image with this hud (`hud build`)")
        if _OLD_HUD.search(said):
            return InfraError(f"the hud in container {self.container} predates `hud connect "
                              f"--mux`: {said}\nrebuild its image with this hud (`hud build`)")
        logs = await self.logs()
        status = logs.partition("\n")[0].partition(": ")[2]
        if not status.startswith("running"):
            return InfraError(f"container {self.container} stopped before its hud daemon "
                              f"answered hello ({said})\n{logs}")
        return InfraError(f"the hud daemon in container {self.container} did not answer hello "
                          f"(waited up to {ready_timeout:g}s): {said}\n{logs}")

    async def tunnel(self, name: str) -> Streams:
        """A new stream to capability `name` on the container's connection; the first
        starts SSH on it (see the module docstring), which moves the control channel onto
        one of its streams.

        Raises:
            RemoteError: the daemon refused it (unknown capability, capability down).
            InfraError: the connection is gone (the exec ended, the container stopped).
        """
        async with self._switching:
            if self._mux is None:
                await self._start_ssh()
        assert self._mux is not None
        return await self._mux.open(name)

    async def _start_ssh(self) -> None:
        control, plain = self._control, self._plain
        if control is None or plain is None or self._proc is None:
            raise InfraError(f"container {self.container}: not connected (open the control "
                             f"channel first)")

        async def carrier() -> Streams:
            self._mux = await MuxConnection.switch(
                cast(asyncio.Transport, plain.transport),
                describe=f"container {self.container}", timeout=SSH_START_TIMEOUT)
            return await self._mux.open(CONTROL)

        await control.switch(SWITCH, SWITCHED.strip(), carrier, timeout=SSH_START_TIMEOUT)

    async def disconnect(self) -> None:
        """Close the connection: every stream on it."""
        mux, self._mux = self._mux, None
        plain, self._plain = self._plain, None
        if mux is not None:
            await mux.close()
        elif plain is not None:
            plain.close()  # before SSH: the pipes carry the control channel alone

    async def close(self) -> None:
        """Close the connection (every stream on it) and reap the exec."""
        await self.disconnect()
        if self._proc is not None:
            await _reap(self._proc, EXIT_GRACE)
