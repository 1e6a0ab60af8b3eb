"""Capabilities: daemons the runtime starts beside itself (ssh, mcp, cdp, rfb, robot).

A capability listens on loopback (or a unix socket) inside the container and is
published in the manifest as a `Binding`. The host never reaches it directly: it opens
a tunnel (`tunnel.open` first frame, or `hud connect --tunnel NAME`) and the control
server pipes bytes to `binding.url`.

Lifecycle, driven by the daemon:
    start()        once, after the environment's initialize hooks; returns the Binding
    before_start() a task is about to start, before the template's setup runs: sweep what
                   an earlier agent left (processes, scratch files), so that setup never
                   runs against state the agent controls. A failure refuses the start
                   (CAPABILITY_ERROR): a task never starts on an unswept workspace.
                   Called for every capability, the ssh workspace first.
    before_grade() the agent answered: stop what it could still do, so that nothing it
                   left running can tamper with grading
    task_ended()   after every task is graded or cancelled (kill what the agent left)
    healthy()      polled; False makes the daemon restart it (stop + start)
    stop()         once, at shutdown, before the shutdown hooks
"""

from __future__ import annotations

import abc

from hud.messages import Binding


class Capability(abc.ABC):
    """Base class for a capability daemon the runtime owns."""

    #: binding name, e.g. "shell"; unique within an environment
    name: str
    #: binding protocol id, e.g. "ssh/2"
    protocol: str

    @abc.abstractmethod
    async def start(self) -> Binding:
        """Start serving on loopback and return how to reach it."""

    @abc.abstractmethod
    async def stop(self) -> None:
        """Stop serving and release every process and port. Must be idempotent."""

    async def close(self) -> None:
        """`stop` for good: also remove what is kept across restarts (logs, a browser
        profile). The daemon calls it once, when it shuts down; a restart calls `stop`."""
        await self.stop()

    async def before_start(self) -> None:
        """A task is about to start: clear what an earlier agent left (see the module doc).

        Raises:
            Exception: anything; the daemon refuses the start and logs it.
        """

    async def before_grade(self) -> None:
        """The agent has answered: stop anything it left running before grading starts."""

    async def task_ended(self) -> None:
        """A task was graded or cancelled: end what the agent started for it."""

    async def healthy(self) -> bool:
        """Whether the capability still serves (the daemon restarts it when not)."""
        return True


class StaticCapability(Capability):
    """A binding to a service the environment runs itself (`env.add_capability`)."""

    def __init__(self, binding: Binding) -> None:
        self.name = binding.name
        self.protocol = binding.protocol
        self._binding = binding

    async def start(self) -> Binding:
        return self._binding

    async def stop(self) -> None:
        return None
