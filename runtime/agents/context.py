"""What an agent receives for one rollout, and what an agent is.

    class Agent(Protocol):
        async def __call__(self, run: RunContext) -> answer

A `RunContext` carries the prompt, the manifest's bindings, tunnels to the capabilities,
the trace, and (for the oracle) the task's reference solution. The rollout runner
(`hud.eval.rollout`) makes one per rollout; agents depend on this module only, never on
the runner, the placements or the trace files behind it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

from hud.clients.bindings import BindingClients, Streams
from hud.task import Task


class Calls(Protocol):
    """The control channel, as far as an agent may use it."""

    async def call(self, method: str, params: dict[str, Any] | None = None, *,
                   timeout: float = ...) -> Any: ...


class Hold(Protocol):
    """A rollout's hold on its environment (`hud.eval.placement.Lease` is one)."""

    @property
    def channel(self) -> Calls: ...

    @property
    def tunnel(self) -> Callable[[str], Awaitable[Streams]]: ...


class Recorder(Protocol):
    """Where trace events go (`hud.eval.traces.TraceWriter` is one)."""

    #: the trace file; agents save what they record (screenshots) beside it
    path: Path

    def event(self, type: str, **data: Any) -> object: ...


class RunContext(BindingClients):
    """What an agent gets for one rollout (`manifest` as `hud.clients.untrusted.parse_manifest`
    returned it: validated)."""

    def __init__(self, task: Task, prompt: Any, start_frame: dict[str, Any],
                 manifest: dict[str, Any], lease: Hold, trace: Recorder,
                 max_steps: int | None = None) -> None:
        self.task = task
        self.prompt = prompt
        self.start_frame = start_frame
        self.manifest = manifest
        self.bindings: dict[str, dict[str, Any]] = {b["name"]: b for b in manifest.get("bindings", [])}
        self.trace = trace
        self.max_steps = max_steps
        self._lease = lease
        #: set by the agent: why it stopped (answered, max_steps, ...)
        self.stop_reason: str | None = None

    def binding(self, protocol_prefix: str) -> dict[str, Any] | None:
        """The first binding whose protocol starts with `protocol_prefix` (e.g. "ssh/")."""
        for binding in self.bindings.values():
            if binding["protocol"].startswith(protocol_prefix):
                return binding
        return None

    async def tunnel(self, name: str) -> Streams:
        """A raw byte stream to capability `name`."""
        return await self._lease.tunnel(name)

    async def solve(self) -> Any:
        """The task's reference answer, computed in the environment (oracle agents)."""
        result = await self._lease.channel.call("tasks.solve")
        return result["answer"]

    def record(self, type: str, **data: Any) -> None:
        """Add an event to this rollout's trace."""
        self.trace.event(type, **data)


class Agent(Protocol):
    """Anything an eval can run: called once per rollout, returns the answer to grade
    (`None` when it has none). Plain `async def agent(run)` functions qualify. An agent
    may list `secrets` (strings, e.g. its API key) that the rollout redacts from every
    trace event and error it stores."""

    async def __call__(self, run: RunContext) -> Any: ...
