"""Agents: anything with `async def __call__(run: RunContext) -> answer`.

`create_agent(name)` builds the offline agents (`oracle`, `nop`, `replay:JOB_ID`). To bring
your own, write a class (or async function) taking a `hud.eval.RunContext`: read
`run.prompt`, use `run.tunnel(name)` / `run.bindings` to act, `run.record(...)` to trace,
and return the answer.
"""

from __future__ import annotations

from typing import Any

from hud.agents.offline import NopAgent, OracleAgent, ReplayAgent
from hud.errors import ConfigError

__all__ = sorted(["NopAgent", "OracleAgent", "ReplayAgent", "create_agent"])

OFFLINE = ("oracle", "nop", "replay:JOB_ID")


def create_agent(model: str, **config: Any) -> Any:
    """Build an agent from a name.

    Raises:
        ConfigError: the name matches no agent this installation has (they are listed).
    """
    if model == "oracle":
        return OracleAgent()
    if model == "nop":
        return NopAgent()
    if model.startswith("replay:") or model == "replay":
        job = config.get("job") or model.partition(":")[2]
        if not job:
            raise ConfigError("the replay agent needs a job id: replay:JOB_ID")
        return ReplayAgent(job)
    raise ConfigError(
        f"no agent {model!r}; available: {', '.join(OFFLINE)}. Provider agents (claude-*, "
        f"gpt-*, gemini-*, OpenAI-compatible endpoints) are not part of this release yet"
    )
