"""Placements: where a rollout's environment lives, and how the host reaches it.

    LocalPlacement    the env in this process (a ControlServer on a private unix socket):
                      fast iteration, no Docker. One server serves every rollout.
    DockerPlacement   a fresh container per rollout, driven over its own `docker run -i`
                      (an image built by an older hud: over `docker exec -i ... hud
                      connect`); labelled with job and rollout ids, `--network none`,
                      dropped capabilities and a pids limit by default, always removed;
                      in hud.eval.docker, imported here too.
    AttachPlacement   a running container (by name) or a daemon URL (tcp://...);
                      in hud.eval.attach, imported here too.

Every docker command (run, exec, rm) goes through `hud.build.docker`, so `HUD_DOCKER`
and its typed errors hold here too; `docker=` names another client for one placement.

Each `open()` returns a ready `Lease` (hud.eval.lease): a control `Channel` on which the
daemon has answered `hello`, that answer (`Lease.hello`, the manifest, still untrusted),
a way to open tunnels to the capabilities, and `close()`. Every placement says `hello`
exactly once per lease, so a rollout never asks again. Failures to provision are
`InfraError`s.

One running environment serves one rollout at a time unless it declares more (the
manifest's `env.concurrency`, the in-process `Environment.concurrency`): rollouts share
its /workspace and its daemon refuses a `tasks.start` beyond that. So the local and
attach placements hold a slot of a per-target `Gate` from `open()` until the lease is
closed, and a group against one container runs its members one after another. The
docker placement gives each rollout its own container and needs no gate.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

from hud.clients.channel import Channel, open_tunnel_stream
from hud.environment import Environment
from hud.errors import ConfigError
from hud.eval.attach import AttachPlacement as AttachPlacement  # its home; imported here too
from hud.eval.docker import _NO_SYS_RESOURCE as _NO_SYS_RESOURCE
from hud.eval.docker import DEFAULT_PIDS_LIMIT as DEFAULT_PIDS_LIMIT  # its home, as below
from hud.eval.docker import JOB_LABEL as JOB_LABEL
from hud.eval.docker import MAX_REMOVING as MAX_REMOVING
from hud.eval.docker import NETWORK_LABEL as NETWORK_LABEL
from hud.eval.docker import READY_TIMEOUT as READY_TIMEOUT
from hud.eval.docker import ROLLOUT_LABEL as ROLLOUT_LABEL
from hud.eval.docker import DockerPlacement as DockerPlacement
from hud.eval.docker import check_network as check_network
from hud.eval.docker import new_id as new_id
from hud.eval.docker import shared_network as shared_network
from hud.eval.gate import Gate, at_once
from hud.eval.lease import HELLO
from hud.eval.lease import Lease as Lease  # the contract; imported from here too
from hud.eval.lease import Placement as Placement
from hud.eval.lease import Streams as Streams

log = logging.getLogger("hud.eval")


class LocalPlacement(Placement):
    """The environment in this process, behind a private unix socket."""

    name = "local"

    def __init__(self, env: Environment) -> None:
        self.env = env
        self._daemon: Any = None
        self._dir: Path | None = None
        self._lock = asyncio.Lock()
        self._gate: Gate | None = None

    def describe(self) -> str:
        return f"local (in-process {self.env.name}, {at_once(self.concurrency)})"

    @property
    def concurrency(self) -> int:
        """Rollouts the environment serves at once (`Environment(concurrency=N)`)."""
        return self.env.concurrency

    async def _ensure(self) -> Path:
        async with self._lock:
            if self._daemon is None:
                from hud.serve.daemon import Daemon, DaemonConfig

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
        if self._gate is None:
            self._gate = Gate()
        gate = self._gate
        await gate.learn(self.concurrency)
        await gate.acquire()

        async def tunnel(name: str) -> Streams:
            reader, writer = await asyncio.open_unix_connection(str(sock), limit=1 << 20)
            await open_tunnel_stream(reader, writer, name)
            return reader, writer

        try:
            reader, writer = await asyncio.open_unix_connection(str(sock))
        except BaseException:
            await gate.release()
            raise
        channel = Channel(reader, writer, describe=f"local env {self.env.name}")
        try:
            hello = await channel.call("hello", dict(HELLO))
        except BaseException:
            await channel.close()
            await gate.release()
            raise
        return Lease(channel, tunnel, gate.release, {"placement": "local"}, hello)

    async def shutdown(self) -> None:
        if self._daemon is not None:
            await self._daemon.close()
            self._daemon = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
