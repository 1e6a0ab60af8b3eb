"""Placements: where a rollout's environment lives, and how the host reaches it.

    LocalPlacement    the env in this process (a ControlServer on a private unix socket):
                      fast iteration, no Docker. One server serves every rollout.
    DockerPlacement   a fresh container per rollout, driven over `docker exec -i ... hud
                      connect`; labelled with job and rollout ids, `--network none` and
                      dropped capabilities by default, always removed.
    AttachPlacement   a running container (by name) or a daemon URL (tcp://...).

Each `open()` returns a `Lease`: a control `Channel`, a way to open tunnels to the
capabilities, and `close()`. Failures to provision are `InfraError`s.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import shutil
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hud.channel import Channel, open_tunnel_stream
from hud.environment import Environment
from hud.errors import ConfigError, InfraError
from hud.proc import arun

Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]
READY_TIMEOUT = 120.0
JOB_LABEL = "org.hud.job"
ROLLOUT_LABEL = "org.hud.rollout"


@dataclass
class Lease:
    """One rollout's hold on an environment."""

    channel: Channel
    tunnel: Callable[[str], Awaitable[Streams]]
    release: Callable[[], Awaitable[None]]
    info: dict[str, Any] = field(default_factory=dict)

    async def close(self) -> None:
        await self.channel.close()
        await self.release()


class Placement(abc.ABC):
    """Provisions environments for rollouts."""

    name: str = "placement"

    @abc.abstractmethod
    async def open(self, job_id: str, rollout_id: str) -> Lease:
        """Provision an environment for one rollout.

        Raises:
            InfraError: it could not be provisioned or reached.
        """

    async def shutdown(self) -> None:
        """Release what the placement holds across rollouts."""

    def describe(self) -> str:
        return self.name


class LocalPlacement(Placement):
    """The environment in this process, behind a private unix socket."""

    name = "local"

    def __init__(self, env: Environment) -> None:
        self.env = env
        self._daemon: Any = None
        self._dir: Path | None = None
        self._lock = asyncio.Lock()

    def describe(self) -> str:
        return f"local (in-process {self.env.name})"

    async def _ensure(self) -> Path:
        async with self._lock:
            if self._daemon is None:
                from hud.daemon import Daemon, DaemonConfig

                self._dir = Path(tempfile.mkdtemp(prefix="hud-local-"))
                sock = self._dir / "control.sock"
                daemon = Daemon(DaemonConfig(socket_path=sock, env=self.env))
                server = await daemon.start()
                if server.load_error is not None:
                    await daemon.close()
                    raise ConfigError(f"environment {self.env.name!r} failed to start: "
                                      f"{server.load_error}\n{server.load_error.traceback}")
                self._daemon = daemon
            assert self._dir is not None
            return self._dir / "control.sock"

    async def open(self, job_id: str, rollout_id: str) -> Lease:
        sock = await self._ensure()

        async def tunnel(name: str) -> Streams:
            reader, writer = await asyncio.open_unix_connection(str(sock), limit=1 << 20)
            await open_tunnel_stream(reader, writer, name)
            return reader, writer

        reader, writer = await asyncio.open_unix_connection(str(sock))

        async def release() -> None:
            return None

        channel = Channel(reader, writer, describe=f"local env {self.env.name}")
        return Lease(channel, tunnel, release, {"placement": "local"})

    async def shutdown(self) -> None:
        if self._daemon is not None:
            await self._daemon.close()
            self._daemon = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)


async def _exec_streams(argv: list[str]) -> tuple[asyncio.subprocess.Process, Streams]:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, limit=1 << 20,
    )
    assert proc.stdout is not None and proc.stdin is not None
    return proc, (proc.stdout, proc.stdin)  # type: ignore[return-value]


async def _reap(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(proc.wait(), 10)


class _ExecTransport:
    """Reach a daemon inside a running container through `docker exec -i`."""

    def __init__(self, container: str, docker: str = "docker") -> None:
        self.container = container
        self.docker = docker
        self._procs: list[asyncio.subprocess.Process] = []

    def argv(self, *extra: str) -> list[str]:
        return [self.docker, "exec", "-i", self.container, "hud", "connect", *extra]

    async def _open(self, *extra: str) -> Streams:
        proc, streams = await _exec_streams(self.argv(*extra))
        self._procs.append(proc)
        return streams

    async def logs(self) -> str:
        done = await arun([self.docker, "logs", "--tail", "20", self.container], timeout=20)
        state = await arun([self.docker, "inspect", "-f", "{{.State.Status}} exit={{.State.ExitCode}} "
                            "oom={{.State.OOMKilled}}", self.container], timeout=20)
        status = state.stdout.strip() if state.ok else "gone (no such container)"
        return f"container {self.container}: {status}\n{(done.stdout + done.stderr).strip()}"

    async def channel(self, ready_timeout: float) -> Channel:
        """A control channel, retried until the daemon answers `hello`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + ready_timeout
        last = ""
        while True:
            proc, (reader, writer) = await _exec_streams(self.argv())
            channel = Channel(reader, writer, describe=f"container {self.container}",
                              on_close=lambda p=proc: _reap(p), diagnose=self.logs)
            try:
                await channel.call("hello", {"client": "hud-eval"}, timeout=30)
                self._procs.append(proc)
                return channel
            except InfraError as exc:
                last = str(exc)
                await channel.close()
                stderr = (await proc.stderr.read()).decode(errors="replace") if proc.stderr else ""
                last = stderr.strip() or last
                if "No such container" in last or "is not running" in last:
                    raise InfraError(f"container {self.container} is not running: {last}") from exc
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


class DockerPlacement(Placement):
    """A fresh container per rollout from `image`, removed afterwards."""

    name = "docker"

    def __init__(
        self,
        image: str,
        *,
        network: str = "none",
        cpus: float | None = None,
        memory: str | None = None,
        extra_args: list[str] | None = None,
        ready_timeout: float = READY_TIMEOUT,
        docker: str = "docker",
    ) -> None:
        self.image = image
        self.network = network
        self.cpus = cpus
        self.memory = memory
        self.extra_args = list(extra_args or [])
        self.ready_timeout = ready_timeout
        self.docker = docker or shutil.which("docker") or "docker"

    def describe(self) -> str:
        return f"docker ({self.image}, network {self.network})"

    def run_argv(self, job_id: str, rollout_id: str) -> list[str]:
        argv = [
            self.docker, "run", "-d", "--init=false",
            "--label", f"{JOB_LABEL}={job_id}", "--label", f"{ROLLOUT_LABEL}={rollout_id}",
            "--network", self.network,
            # the daemon needs to switch to the agent user, own files and end the agent's
            # processes; everything else is dropped
            "--cap-drop", "ALL",
            *[f"--cap-add={c}" for c in ("CHOWN", "DAC_OVERRIDE", "FOWNER", "SETUID", "SETGID",
                                          "KILL")],
            "--security-opt", "no-new-privileges",
        ]
        if self.cpus:
            argv += ["--cpus", str(self.cpus)]
        if self.memory:
            argv += ["--memory", self.memory]
        return [*argv, *self.extra_args, self.image]

    async def open(self, job_id: str, rollout_id: str) -> Lease:
        done = await arun(self.run_argv(job_id, rollout_id), timeout=120)
        if not done.ok:
            raise InfraError(f"docker run {self.image} failed: {done.tail(5)}")
        container = done.stdout.strip()
        transport = _ExecTransport(container, self.docker)

        async def release() -> None:
            await transport.close()
            await arun([self.docker, "rm", "-f", container], timeout=60)

        try:
            channel = await transport.channel(self.ready_timeout)
        except BaseException:
            await release()
            raise
        return Lease(channel, transport.tunnel, release,
                     {"placement": "docker", "container": container[:12], "image": self.image})


class AttachPlacement(Placement):
    """A running container (by name) or a daemon at a tcp:// URL; nothing is removed."""

    name = "attach"

    def __init__(self, target: str, token: str | None = None, docker: str = "docker") -> None:
        self.target = target
        self.token = token
        self.docker = docker

    def describe(self) -> str:
        return f"attach ({self.target})"

    async def open(self, job_id: str, rollout_id: str) -> Lease:
        if self.target.startswith("tcp://"):
            return await self._open_tcp()
        transport = _ExecTransport(self.target, self.docker)
        channel = await transport.channel(30.0)
        return Lease(channel, transport.tunnel, transport.close,
                     {"placement": "attach", "container": self.target})

    async def _open_tcp(self) -> Lease:
        from urllib.parse import urlsplit

        url = urlsplit(self.target)
        if not url.hostname or not url.port:
            raise ConfigError(f"bad daemon url {self.target!r}; use tcp://HOST:PORT")
        host, port = url.hostname, url.port
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 10)
        except (OSError, asyncio.TimeoutError) as exc:
            raise InfraError(f"no hud daemon answers at {self.target}: {exc}") from exc
        channel = Channel(reader, writer, describe=self.target)
        await channel.call("hello", {"token": self.token} if self.token else {})

        async def tunnel(name: str) -> Streams:
            r, w = await asyncio.open_connection(host, port, limit=1 << 20)
            await open_tunnel_stream(r, w, name, token=self.token)
            return r, w

        async def release() -> None:
            return None

        return Lease(channel, tunnel, release, {"placement": "attach", "url": self.target})


def new_id() -> str:
    return uuid.uuid4().hex[:12]
