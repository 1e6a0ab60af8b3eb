"""What a placement hands a rollout: a `Lease` on a ready environment, and the
`Placement` contract itself (the local, docker and attach ones are in hud.eval.placement).

A lease is ready when `Placement.open()` returns it: its daemon has answered `hello` on
its channel, and the answer rides on the lease (`Lease.hello`), so a rollout, a warm
pool or `hud.attach` reads the manifest from there and never asks a second time.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from hud.clients.channel import Channel

#: a byte stream to one capability (a tunnel)
Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]
#: the params of the one `hello` every placement sends
HELLO: dict[str, Any] = {"client": "hud-eval"}


@dataclass
class Lease:
    """One rollout's hold on an environment.

    `hello` is the daemon's answer to the `hello` the placement sent on `channel` (the
    manifest, untrusted until `hud.clients.untrusted.parse_manifest` passes it); None
    only from a placement that did not say it (a custom one), and then the rollout does.
    """

    channel: Channel
    tunnel: Callable[[str], Awaitable[Streams]]
    release: Callable[[], Awaitable[None]]
    info: dict[str, Any] = field(default_factory=dict)
    hello: Any = None

    def source(self) -> str:
        """What this lease reaches, for messages (e.g. "image 'x' (container 0123abcd)")."""
        info = self.info
        if "image" in info:
            return f"image {info['image']!r} (container {info.get('container')})"
        if "container" in info:
            return f"container {info['container']!r}"
        if "url" in info:
            return f"the daemon at {info['url']}"
        return f"the {info.get('placement', 'attached')} environment"

    async def close(self) -> None:
        try:
            await self.channel.close()
        finally:
            await self.release()


class Placement(abc.ABC):
    """Provisions environments for rollouts."""

    name: str = "placement"

    @abc.abstractmethod
    async def open(self, job_id: str, rollout_id: str) -> Lease:
        """Provision an environment for one rollout; return it ready (`hello` answered,
        the answer in `Lease.hello`).

        Raises:
            InfraError: it could not be provisioned or reached.
        """

    async def shutdown(self) -> None:
        """Release what the placement holds across rollouts, and wait for the cleanup its
        leases left running (DockerPlacement's container removals). A placement that
        wraps another passes this on."""

    def describe(self) -> str:
        return self.name
