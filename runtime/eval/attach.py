"""AttachPlacement: rollouts in a running container (by name) or on a daemon at a tcp://
URL, which hud neither starts nor removes.

A container is reached over one `docker exec -i ... hud connect --mux`
(hud.eval.exec_transport), as the docker placement does; a URL over TCP, one connection
per tunnel. Leases on one target take a slot of its `Gate` (hud.eval.gate) until closed.
"""

from __future__ import annotations

import asyncio

from hud.build import docker as hd
from hud.clients.channel import Channel, open_tunnel_stream
from hud.clients.untrusted import parse_manifest
from hud.errors import ConfigError, InfraError
from hud.eval.exec_transport import ExecTransport
from hud.eval.gate import at_once, gate_for
from hud.eval.lease import HELLO, Lease, Placement, Streams


class AttachPlacement(Placement):
    """A running container (by name) or a daemon at a tcp:// URL; nothing is removed.

    Leases on one target are held to the environment's declared concurrency (default 1):
    a group runs its members one after another (see the module docstring). `gate=False`
    opens without waiting (for `hud.attach`; the daemon still refuses a start too many).
    `docker` names another docker client [default: `$HUD_DOCKER`, else PATH's].
    """

    name = "attach"

    def __init__(self, target: str, token: str | None = None, docker: str | None = None,
                 *, gate: bool = True) -> None:
        if not target.startswith("tcp://"):
            hd.checked_ref(target, "container")  # never a docker option
        self.target = target
        self.token = token
        self.docker = docker
        self.gate = gate

    def describe(self) -> str:
        return f"attach ({self.target}, {at_once(None)})"

    def source(self) -> str:
        """What the target is, for messages."""
        return f"the daemon at {self.target}" if self.target.startswith("tcp://") \
            else f"container {self.target!r}"

    async def open(self, job_id: str, rollout_id: str) -> Lease:
        if not self.gate:
            return await self._open()
        gate = gate_for(self.target)
        await gate.acquire()
        try:
            lease = await self._open()
        except BaseException:
            await gate.release()
            raise
        try:
            await gate.learn(parse_manifest(lease.hello, self.source())["env"]["concurrency"])
        except BaseException:
            try:
                await lease.close()
            finally:
                await gate.release()
            raise
        inner = lease.release

        async def release() -> None:
            try:
                await inner()
            finally:
                await gate.release()

        lease.release = release
        return lease

    async def _open(self) -> Lease:
        if self.target.startswith("tcp://"):
            return await self._open_tcp()
        transport = ExecTransport(self.target, self.docker)
        channel = await transport.channel(30.0)
        return Lease(channel, transport.tunnel, transport.close,
                     {"placement": "attach", "container": self.target}, transport.hello)

    async def _open_tcp(self) -> Lease:
        from urllib.parse import urlsplit

        url = urlsplit(self.target)
        if not url.hostname or not url.port:
            raise ConfigError(f"bad daemon url {self.target!r}; use tcp://HOST:PORT")
        host, port = url.hostname, url.port
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 10)
        except (TimeoutError, OSError) as exc:
            raise InfraError(f"no hud daemon answers at {self.target}: {exc}") from exc
        channel = Channel(reader, writer, describe=self.target)
        try:
            hello = await channel.call("hello", {**HELLO, "token": self.token} if self.token
                                       else dict(HELLO))
        except BaseException:
            await channel.close()
            raise

        async def tunnel(name: str) -> Streams:
            r, w = await asyncio.open_connection(host, port, limit=1 << 20)
            await open_tunnel_stream(r, w, name, token=self.token)
            return r, w

        async def release() -> None:
            return None

        return Lease(channel, tunnel, release, {"placement": "attach", "url": self.target},
                     hello)
