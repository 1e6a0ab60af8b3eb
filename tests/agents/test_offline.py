"""Offline agents: oracle, nop, replay; create_agent."""

from __future__ import annotations

import pytest

from hud.agents import NopAgent, OracleAgent, ReplayAgent, create_agent
from hud.errors import ConfigError
from hud.eval import Taskset
from tests.conftest import ENVS


def test_create_agent_names() -> None:
    """oracle and nop need no key."""
    assert isinstance(create_agent("oracle"), OracleAgent)
    assert isinstance(create_agent("nop"), NopAgent)


def test_unknown_agent_lists_the_available_ones() -> None:
    """An unknown name is a ConfigError listing what exists."""
    with pytest.raises(ConfigError, match="no agent 'llama-3'; available: oracle, nop, replay:JOB_ID"):
        create_agent("llama-3")


async def test_oracle_without_solution_is_infra_error() -> None:
    """A template with no reference solution: the run fails as infra, saying how to add one."""
    job = await Taskset.from_source(str(ENVS / "faults.py")).filter(["chat_prompt"]).run(OracleAgent())
    assert job.runs[0].status == "infra_error"
    assert "@chat_prompt.solution" in job.runs[0].error


async def test_replay_resends_stored_answers() -> None:
    """replay:JOB gives the same rewards as the job it replays."""
    source = Taskset.from_source(str(ENVS / "letters.py"))
    first = await source.run(OracleAgent(), group=2)
    again = await source.run(create_agent(f"replay:{first.id}"), group=2)
    assert {s: [r.reward for r in rs] for s, rs in again.results.items()} == \
           {s: [r.reward for r in rs] for s, rs in first.results.items()}
    assert isinstance(create_agent("replay", job=first.id), ReplayAgent)


def test_replay_of_unknown_job() -> None:
    """A job id that does not exist says where it looked."""
    with pytest.raises(ConfigError, match="no job 'nosuchjob'"):
        create_agent("replay:nosuchjob")
