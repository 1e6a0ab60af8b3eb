"""Taskset construction, files, filters, and running in the local placement."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from hud.agents import NopAgent, OracleAgent
from hud.errors import ConfigError
from hud.eval import Taskset, group_relative
from hud.eval.traces import read_trace
from hud.serve.loader import load_environment
from tests.conftest import ENVS

LETTERS = str(ENVS / "letters.py")


def test_from_source_lists_the_envs_tasks() -> None:
    """A tasks.py source gives its listed tasks."""
    assert [t.args for t in Taskset.from_source(LETTERS)] == [
        {}, {"word": "raspberry"}, {"word": "blueberry"}]


def test_to_file_and_back(tmp_path: Path) -> None:
    """JSONL round trip keeps tasks and slugs."""
    ts = Taskset.from_source(LETTERS)
    again = Taskset.from_file(ts.to_file(tmp_path / "t.jsonl"))
    assert [t.slug for t in again] == [t.slug for t in ts]
    json_list = Taskset.from_file(ts.to_file(tmp_path / "t.json"))
    assert len(json_list) == 3


def test_bad_task_file_row_names_the_line(tmp_path: Path) -> None:
    """An invalid row says which one."""
    path = tmp_path / "bad.jsonl"
    path.write_text('{"env": "e", "id": "t"}\n{"id": 5}\n')
    with pytest.raises(ConfigError, match="task 2 is invalid"):
        Taskset.from_file(path)


def test_filter_by_slug_and_unknown_slug() -> None:
    """filter keeps named tasks; an unknown one lists what exists."""
    ts = Taskset.from_source(LETTERS)
    assert len(ts.filter(["count_letter*"])) == 3  # a glob over slugs
    with pytest.raises(ConfigError, match="no task 'nope'"):
        ts.filter(["nope"])


def test_minted_tasks_find_their_environment_in_process() -> None:
    """Taskset(template(...)) runs locally without naming the env."""
    env = load_environment(LETTERS)
    template = env.templates["count_letter"]
    job = asyncio.run(Taskset(template(word=w) for w in ("kiwi", "apple")).run(OracleAgent()))
    assert job.reward == 1.0 and "local" in job.placement


async def test_oracle_group_of_16_concurrently() -> None:
    """A group of 16 per task all grade 1.0 with the oracle; groups are in order."""
    job = await Taskset.from_source(LETTERS).run(OracleAgent(), group=16)
    assert set(job.results) == {t.slug for t in Taskset.from_source(LETTERS)}
    for runs in job.results.values():
        assert [r.index for r in runs] == list(range(16))
        assert len({r.group_id for r in runs}) == 1
        assert group_relative([r.reward for r in runs]) == [0.0] * 16
    assert job.reward == 1.0


async def test_rollouts_run_concurrently() -> None:
    """Rollouts overlap: 8 agents that each wait 0.3 s finish far sooner than 2.4 s."""
    peak = 0
    active = 0

    async def slow_agent(run):  # type: ignore[no-untyped-def]
        nonlocal peak, active
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.3)
        active -= 1
        return await run.solve()

    job = await Taskset.from_source(LETTERS).filter(["count_letter*"]).run(slow_agent, group=3)
    assert peak == 9 and job.reward == 1.0


async def test_max_concurrent_bounds_parallelism() -> None:
    """max_concurrent=2 never has more than 2 agents running."""
    peak = active = 0

    async def agent(run):  # type: ignore[no-untyped-def]
        nonlocal peak, active
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.05)
        active -= 1
        return None

    await Taskset.from_source(LETTERS).run(agent, group=3, max_concurrent=2)
    assert peak == 2


async def test_nop_scores_zero() -> None:
    """The nop agent answers nothing and grades 0.0 — a result, not an error."""
    job = await Taskset.from_source(LETTERS).run(NopAgent())
    assert job.reward == 0.0 and not job.errors


async def test_agent_exception_is_agent_error() -> None:
    """An agent that raises: agent_error, no reward, the task cancelled."""

    async def broken(run):  # type: ignore[no-untyped-def]
        raise RuntimeError("model API said 500")

    job = await Taskset.from_source(LETTERS).filter(["count_letter"]).run(broken)
    run = job.runs[0]
    assert (run.status, run.reward, run.stop_reason) == ("agent_error", None, "error")
    assert run.error == "RuntimeError: model API said 500"
    assert job.reward is None


async def test_agent_timeout() -> None:
    """An agent past the timeout: status timeout."""

    async def sleepy(run):  # type: ignore[no-untyped-def]
        await asyncio.sleep(30)

    job = await Taskset.from_source(LETTERS).filter(["count_letter-7723267a"]).run(sleepy, timeout=0.2)
    assert (job.runs[0].status, job.runs[0].reward, job.runs[0].stop_reason) == (
        "timeout", 0.0, "timeout")
    assert job.reward == 0.0  # running out of time is the agent's outcome: it counts


async def test_grader_crash_is_grade_error_counted_and_not_retried() -> None:
    """A grader that raises after the agent acted: grade_error, no reward recorded, not
    retried (the agent may have caused it), and the job's mean counts it as unearned."""
    ts = Taskset.from_source(str(ENVS / "faults.py")).filter(["raises_in_grading"])
    job = await ts.run(NopAgent(), retries=2)
    assert [r.status for r in job.runs] == ["grade_error"]
    assert "grader broke" in job.runs[0].error and job.runs[0].reward is None
    assert job.reward == 0.0 and job.errors == job.runs


async def test_flaky_infra_is_retried_to_a_full_group() -> None:
    """A member that fails on infra once is re-run; the group keeps its size."""
    from hud.errors import InfraError

    failures = {"left": 1}

    async def flaky(run):  # type: ignore[no-untyped-def]
        if failures["left"]:
            failures["left"] -= 1
            raise InfraError("tunnel broke")
        return await run.solve()

    job = await Taskset.from_source(LETTERS).filter(["count_letter"]).run(flaky, group=4, retries=1)
    runs = job.results["count_letter"]
    assert len(runs) == 4 and all(r.ok and r.reward == 1.0 for r in runs)
    assert sum(r.attempt == 2 for r in runs) == 1


async def test_traces_are_written(runs_dir: Path) -> None:
    """Each run has a JSONL trace with the phases, and the job has a summary."""
    job = await Taskset.from_source(LETTERS).filter(["count_letter"]).run(OracleAgent())
    run = job.runs[0]
    events = read_trace(runs_dir / job.id / f"{run.trace_id}.jsonl")
    assert [e["type"] for e in events] == [
        "rollout", "placement", "start", "oracle", "answer", "grade", "end"]
    assert set(run.timings) == {"placement", "start", "agent", "grade", "teardown"}
    summary = json.loads((runs_dir / job.id / "job.json").read_text())
    assert summary["runs"][0]["reward"] == 1.0


async def test_group_must_be_positive() -> None:
    """group=0 is a ConfigError."""
    with pytest.raises(ConfigError, match="group must be >= 1"):
        await Taskset.from_source(LETTERS).run(NopAgent(), group=0)


def test_unknown_env_for_local_placement(tmp_path: Path) -> None:
    """Tasks whose environment is not loaded cannot run locally: the error says what to pass."""
    from hud.task import Task

    ts = Taskset([Task(env="not-loaded-anywhere", id="t")])
    with pytest.raises(ConfigError, match="not loaded in this process"):
        ts.placement("local")


async def test_a_rollout_that_swallowed_a_cancel_is_cancelled_again(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Cancelling a job whose agent swallows the first cancel (as Python 3.11's
    asyncio.wait_for can): after the grace it is cancelled again and the job ends."""
    from hud.eval import taskset as taskset_module

    monkeypatch.setattr(taskset_module, "SETTLE_GRACE", 0.2)
    seen: list[str] = []
    working = asyncio.Event()

    async def stubborn(run):  # type: ignore[no-untyped-def]
        working.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            seen.append("swallowed")
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            seen.append("cancelled again")
            raise

    job = asyncio.create_task(
        Taskset.from_source(LETTERS).filter(["count_letter-7723267a"]).run(stubborn))
    await asyncio.wait_for(working.wait(), 30)
    job.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(job, 30)
    assert seen == ["swallowed", "cancelled again"]


async def test_a_function_agent_is_recorded_by_its_name(runs_dir: Path) -> None:
    """A plain async function as the agent: the job and its traces name it, not "function"."""
    async def my_agent(run: object) -> None:
        return None

    job = await Taskset.from_source(LETTERS).filter(["count_letter-7723267a"]).run(my_agent)
    assert job.agent == "test_a_function_agent_is_recorded_by_its_name.<locals>.my_agent"
    events = read_trace(runs_dir / job.id / f"{job.runs[0].trace_id}.jsonl")
    assert events[0]["agent"] == job.agent
