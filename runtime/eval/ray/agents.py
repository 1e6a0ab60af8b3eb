"""How an agent reaches a Ray node: by its spec (name + config), or pickled.

`AgentSpec("claude-sonnet-4-5", max_steps=20)` is an agent by name: `create_agent` builds
it once on the driver (so a bad name, a missing SDK or a missing key fails there, before
any rollout) and again on each node. A provider key travels with the spec, read from the
driver's environment (or `api_key=`), in a `Secret`: it is never written to a trace (the
node's trace writer redacts it, as on one host), never logged, and never put in Ray's job
metadata or runtime environment (nodes need no key in theirs); it rides only in the
arguments of the slot actor's call, which Ray keeps in its object store, not its logs.

`Taskset.run(create_agent(...), runtime="ray")` works as well: an offline agent (oracle,
nop) travels by name, a provider agent made by `create_agent` travels pickled (its key
inside, as above). A user's own agent class or function travels pickled when it can be
(cloudpickle, Ray's own); when it cannot, the error says why and what to do.
"""

from __future__ import annotations

from typing import Any

from hud.agents.context import Agent, RunContext
from hud.errors import ConfigError
from hud.eval.rollout import agent_name


class Secret:
    """A string that never shows itself: repr and str are "[secret]"."""

    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value

    def __repr__(self) -> str:
        return "Secret([secret])"

    __str__ = __repr__


class AgentSpec:
    """An agent by name and config, built with `hud.agents.create_agent` where it runs.

    Args:
        model: the agent's name or model id (as `create_agent` takes it).
        **config: its options (`create_agent`'s); `api_key` is kept as a `Secret`.

    Raises:
        ConfigError: `create_agent` refuses it here on the driver (bad name, no SDK, no key).
    """

    def __init__(self, model: str, **config: Any) -> None:
        from hud.agents import create_agent

        self.model = model
        given = config.pop("api_key", None)
        self.config = config
        agent = create_agent(model, **self._kwargs(given))
        self.name = agent_name(agent)
        key = getattr(agent, "api_key", None) if given is None else given
        self._key = Secret(key) if isinstance(key, str) and key else None
        self._agent: Agent | None = agent

    def _kwargs(self, key: str | None) -> dict[str, Any]:
        return {**self.config, **({"api_key": key} if key else {})}

    @property
    def secrets(self) -> tuple[str, ...]:
        """What a trace must never contain (the provider key)."""
        return (self._key.value,) if self._key is not None else ()

    def build(self) -> Agent:
        """The agent itself (built once per process).

        Raises:
            ConfigError: `create_agent` refuses the spec on this node.
        """
        if self._agent is None:
            from hud.agents import create_agent

            self._agent = create_agent(self.model, **self._kwargs(
                self._key.value if self._key else None))
        return self._agent

    async def __call__(self, run: RunContext) -> Any:
        return await self.build()(run)

    def __getstate__(self) -> dict[str, Any]:
        # the built agent (an SDK client, sockets) stays here; the node builds its own
        return {"model": self.model, "config": self.config, "name": self.name,
                "_key": self._key, "_agent": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def __repr__(self) -> str:
        return f"AgentSpec({self.model!r}, {sorted(self.config)})"


def shippable(agent: Agent) -> Agent:
    """What of `agent` is sent to the nodes: a spec for an offline agent, the agent
    itself (pickled by Ray) otherwise, checked here so a failure names the agent.

    Raises:
        ConfigError: the agent cannot be pickled (why, and what to pass instead).
    """
    from hud.agents.offline import NopAgent, OracleAgent

    if isinstance(agent, AgentSpec):
        return agent
    if type(agent) in (OracleAgent, NopAgent):
        return AgentSpec(agent_name(agent))
    from ray import cloudpickle

    try:
        cloudpickle.dumps(agent)  # type: ignore[no-untyped-call]
    except Exception as exc:  # noqa: BLE001 - anything pickling raises is the answer
        raise ConfigError(
            f"agent {agent_name(agent)!r} cannot be sent to the Ray nodes: pickling it "
            f"failed ({type(exc).__name__}: {exc}); pass hud.eval.ray.AgentSpec(NAME, "
            f"**config) for a built-in agent, or make your agent picklable (no open "
            f"clients, sockets or locks in its attributes until it first runs)") from None
    return agent
