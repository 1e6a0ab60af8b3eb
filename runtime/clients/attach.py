"""The host library's front door: attach to a running environment and use its capabilities.

    async with await hud.attach("run1") as env:        # a container name, or tcp://HOST:PORT
        print(env.manifest["tasks"])
        ssh = await env.ssh()                           # asyncssh connection, over docker exec
        print((await ssh.run("ls /workspace")).stdout)
        prompt = await env.start("fix_bug")
        reward = await env.grade("done")

Everything rides on exec tunnels (or TCP for a URL): no published ports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hud.clients.bindings import BindingClients, Streams
from hud.clients.untrusted import parse_manifest
from hud.eval.placement import AttachPlacement, Lease, new_id

if TYPE_CHECKING:
    from asyncssh import SSHClientConnection


class RemoteEnv(BindingClients):
    """A running environment reached from the host: control channel plus capabilities."""

    def __init__(self, target: str, lease: Lease, manifest: dict[str, Any]) -> None:
        self.target = target
        self.manifest = manifest
        self.bindings = {b["name"]: b for b in manifest.get("bindings", [])}
        self._lease = lease
        self._ssh: list[SSHClientConnection] = []

    async def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        """A raw control-protocol call on this connection's session.

        Raises:
            RemoteError: the daemon answered an error.
            InfraError: the connection broke.
        """
        return await self._lease.channel.call(method, params)

    async def start(self, task: str, args: dict[str, Any] | None = None) -> Any:
        """Start a task; returns its prompt."""
        return (await self.call("tasks.start", {"id": task, "args": args or {}}))["prompt"]

    async def grade(self, answer: Any) -> float:
        """Grade the task this connection started; returns the score."""
        return float((await self.call("tasks.grade", {"answer": answer}))["score"])

    async def tunnel(self, name: str) -> Streams:
        """A raw byte stream to capability `name`."""
        return await self._lease.tunnel(name)

    async def ssh(self, name: str | None = None) -> SSHClientConnection:
        """An asyncssh connection (see `BindingClients.ssh`), closed with this object."""
        conn = await super().ssh(name)
        self._ssh.append(conn)
        return conn

    async def close(self) -> None:
        for conn in self._ssh:
            conn.close()
        await self._lease.close()

    async def __aenter__(self) -> RemoteEnv:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def attach(target: str, token: str | None = None) -> RemoteEnv:
    """Attach to a running container (by name) or a daemon at `tcp://HOST:PORT`.

    The manifest is read as untrusted input (`hud.clients.untrusted.parse_manifest`): one that
    does not pass its strict models is refused before anything in it is used. Unlike a
    Taskset's attach placement, this does not wait for the container's other rollouts;
    its daemon refuses a `start` beyond the concurrency it declares.

    Raises:
        InfraError: nothing answers there.
        ProtocolError: the container's manifest is invalid (the field is named).
    """
    placement = AttachPlacement(target, token, gate=False)
    lease = await placement.open("attach", new_id())
    try:
        manifest = parse_manifest(lease.hello, placement.source())  # said by the placement
    except BaseException:
        await lease.close()
        raise
    return RemoteEnv(target, lease, manifest)
