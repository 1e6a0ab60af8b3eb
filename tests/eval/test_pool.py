"""Warm pools: environments opened ahead of demand, each serving one rollout, none left over.

These drive `WarmPool` through `Taskset.run` over a placement that opens real leases on
one in-process daemon and counts them (the seam: `Placement.open`), and can fail chosen
opens the way a container that never answers fails its readiness check. The same rules
against real containers and `hud eval --warm` are in test_pool_docker.py.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hud import Environment
from hud.errors import ConfigError, InfraError
from hud.eval import LocalPlacement, Placement, Taskset
from hud.eval.placement import Lease
from hud.eval.pool import WarmPool
from hud.eval.traces import read_trace

ENV = Environment(name="pool-unit", concurrency=64)


@ENV.template()
async def say_ok(n: int = 0):  # type: ignore[no-untyped-def]
    answer = yield "Say ok."
    yield 1.0 if answer == "ok" else 0.0


def taskset(tasks: int = 1) -> Taskset:
    return Taskset([say_ok(n=i) for i in range(tasks)], env=ENV)


async def ok(run: Any) -> str:
    """An agent that answers right after a moment, so that rollouts overlap."""
    await asyncio.sleep(0.01)
    return "ok"


class Counting(Placement):
    """Real leases on one in-process daemon, counted; opens numbered in `fail` (or all,
    with `fail_all`) raise as a container that never answers would; opens numbered from
    `block_from` wait for `unblock`."""

    name = "counting"

    def __init__(self, fail: tuple[int, ...] = (), fail_all: bool = False,
                 block_from: int | None = None) -> None:
        self.inner = LocalPlacement(ENV)
        self.fail, self.fail_all, self.block_from = set(fail), fail_all, block_from
        self.unblock = asyncio.Event()
        self.attempts = 0
        self.opened: list[str] = []
        self.failed: list[str] = []
        self.live: set[str] = set()
        self.closed = 0
        self.peak = 0
        self.after_open: Callable[[], object] | None = None

    def describe(self) -> str:
        return "counting (test)"

    async def open(self, job_id: str, rollout_id: str) -> Lease:
        self.attempts += 1
        number = self.attempts
        if self.block_from is not None and number >= self.block_from:
            await self.unblock.wait()
        await asyncio.sleep(0)  # readiness takes a moment
        if self.fail_all or number in self.fail:
            self.failed.append(rollout_id)
            raise InfraError(f"the daemon of {rollout_id} did not answer hello")
        lease = await self.inner.open(job_id, rollout_id)
        self.opened.append(rollout_id)
        self.live.add(rollout_id)
        self.peak = max(self.peak, len(self.live))
        inner_release = lease.release

        async def release() -> None:
            self.live.discard(rollout_id)
            self.closed += 1
            await inner_release()

        lease.release = release
        if self.after_open is not None:
            self.after_open()
        return lease

    async def shutdown(self) -> None:
        await self.inner.shutdown()


async def until(condition: Callable[[], bool], what: str) -> None:
    """Yield to the loop until `condition` holds (a deadline, not a timing assert)."""
    deadline = time.monotonic() + 20
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        await asyncio.sleep(0.005)


async def test_a_job_of_4n_rollouts_completes_and_closes_every_lease() -> None:
    """warm=2 under 8 rollouts: all graded 1.0, 8 leases opened, 8 closed, none live."""
    placement = Counting()
    job = await taskset(2).run(ok, group=4, max_concurrent=2, runtime=placement, warm=2)
    assert [r.reward for r in job.runs] == [1.0] * 8, [r.error for r in job.runs]
    assert (placement.attempts, len(placement.opened), placement.closed) == (8, 8, 8)
    assert placement.live == set() and "warm pool of 2" in job.placement


async def test_each_rollout_gets_its_own_lease_and_the_trace_records_it(runs_dir: Path) -> None:
    """Every run names a distinct pool lease (warm-...) that the placement opened, in its
    trace's placement event too."""
    placement = Counting()
    job = await taskset().run(ok, group=6, max_concurrent=2, runtime=placement, warm=3)
    served = [r.placement["warm_lease"] for r in job.runs]
    assert len(set(served)) == 6 and set(served) == set(placement.opened)
    assert all(lease.startswith("warm-") for lease in served)
    for run in job.runs:
        events = read_trace(runs_dir / job.id / f"{run.trace_id}.jsonl")
        placed = next(e for e in events if e["type"] == "placement")
        assert placed["warm_lease"] == run.placement["warm_lease"]


async def test_the_pool_opens_ahead_but_never_beyond_the_rollouts_left() -> None:
    """With one rollout at a time and warm=3, 4 leases live while the first agent works;
    a job of 2 rollouts with warm=5 opens exactly 2."""
    placement = Counting()
    seen: list[int] = []

    async def watcher(run: Any) -> str:
        if not seen:
            await until(lambda: len(placement.live) == 4, "3 leases ready beside the first")
            seen.append(len(placement.live))
        return "ok"

    job = await taskset().run(watcher, group=8, max_concurrent=1, runtime=placement, warm=3)
    assert job.reward == 1.0 and seen == [4] and placement.peak == 4
    small = Counting()
    await taskset().run(ok, group=2, max_concurrent=1, runtime=small, warm=5)
    assert small.attempts == 2 and small.closed == 2


async def test_max_concurrent_still_bounds_the_agents() -> None:
    """warm=4 does not let more than max_concurrent=2 agents run at once."""
    active = peak = 0

    async def counted(run: Any) -> str:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.02)
        active -= 1
        return "ok"

    placement = Counting()
    job = await taskset().run(counted, group=8, max_concurrent=2, runtime=placement, warm=4)
    assert job.reward == 1.0 and peak == 2 and placement.peak <= 2 + 4


async def test_a_failed_readiness_is_replaced_and_never_handed_out(
        caplog: pytest.LogCaptureFixture) -> None:
    """Opens 1 and 3 fail: every rollout still completes on a lease that opened, and each
    failure is logged."""
    placement = Counting(fail=(1, 3))
    with caplog.at_level(logging.WARNING, logger="hud.eval"):
        job = await taskset().run(ok, group=4, max_concurrent=2, runtime=placement, warm=2)
    assert [r.reward for r in job.runs] == [1.0] * 4
    served = {r.placement["warm_lease"] for r in job.runs}
    assert len(placement.failed) == 2 and not served & set(placement.failed)
    assert placement.attempts == 6 and placement.live == set()
    failures = [r.getMessage() for r in caplog.records if "failed its readiness check" in r.message]
    assert len(failures) == 2 and placement.failed[0] in failures[0]


async def test_a_broken_placement_fails_the_job_instead_of_looping(runs_dir: Path) -> None:
    """Every open fails: the job raises one InfraError after max(3, warm) failures in a
    row, a bounded number of opens was tried, and the job summary is written."""
    placement = Counting(fail_all=True)
    with pytest.raises(InfraError, match=r"3 environments in a row failed their readiness "
                                         r"check on counting \(test\); the last: the daemon"):
        await taskset().run(ok, group=6, max_concurrent=2, runtime=placement, warm=2, retries=3)
    assert 3 <= placement.attempts <= 3 + 2 + 2  # those in flight when it gave up
    summary = json.loads(next(runs_dir.glob("*/job.json")).read_text())
    assert {r["status"] for r in summary["runs"]} <= {"infra_error"}


async def test_a_retry_is_served_by_the_pool() -> None:
    """An infra failure under the agent is retried on a fresh lease; all leases close."""
    failures = {"left": 1}

    async def flaky(run: Any) -> str:
        if failures["left"]:
            failures["left"] -= 1
            raise InfraError("tunnel broke")
        return "ok"

    placement = Counting()
    job = await taskset().run(flaky, group=4, max_concurrent=2, runtime=placement, warm=2,
                              retries=1)
    assert sorted(r.status for r in job.runs) == ["completed"] * 4 + ["infra_error"]
    assert placement.attempts == 5 and placement.closed == 5 and placement.live == set()


async def test_cancelling_the_job_closes_every_lease_even_those_still_opening() -> None:
    """Cancelled with agents working, leases ready and opens in flight: once the opens
    finish, every lease the placement opened is closed."""
    placement = Counting(block_from=5)
    working: list[Any] = []

    async def stuck(run: Any) -> str:
        working.append(run)
        await asyncio.Event().wait()
        return "never"

    job = asyncio.create_task(taskset().run(stuck, group=8, max_concurrent=2,
                                            runtime=placement, warm=3))
    await until(lambda: len(working) == 2, "2 agents at work")
    await until(lambda: len(placement.live) == 4, "2 leases served and 2 ready")
    await until(lambda: placement.attempts == 5, "the fifth open in flight")
    job.cancel()
    await asyncio.sleep(0)
    placement.unblock.set()
    with pytest.raises(asyncio.CancelledError):
        await job
    assert placement.live == set() and placement.closed == len(placement.opened) == 5


async def test_a_lease_handed_to_a_cancelled_rollout_goes_back_to_the_pool() -> None:
    """A rollout cancelled just as its lease arrives does not take it: the pool keeps it
    ready and closes it on close."""
    placement = Counting(block_from=1)
    pool = WarmPool(placement, 1, job_id="job-x", demand=1)
    pool.start()
    waiter = asyncio.create_task(pool.open("job-x", "rollout-1"))
    await until(lambda: placement.attempts == 1, "the open in flight")
    placement.after_open = lambda: asyncio.get_running_loop().call_soon(waiter.cancel)
    placement.unblock.set()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert pool.ready == 1 and pool.stats.served == 0
    await pool.shutdown()
    assert placement.live == set() and placement.closed == 1


async def test_open_for_another_job_is_refused() -> None:
    """A pool opens for its own job only (its containers carry that job's label)."""
    pool = WarmPool(Counting(), 1, job_id="job-a", demand=1)
    with pytest.raises(ConfigError, match="opens environments for job 'job-a', not 'job-b'"):
        await pool.open("job-b", "r")
    await pool.shutdown()


@pytest.mark.parametrize("warm", [-1, 1.5, True, "2"])
async def test_warm_must_be_a_whole_number(warm: Any) -> None:
    """warm is an int >= 0; anything else is a ConfigError showing the value."""
    with pytest.raises(ConfigError, match=r"warm must be a whole number >= 0 .*got "):
        await taskset().run(ok, runtime=Counting(), warm=warm)


async def test_warm_with_one_running_environment_is_refused() -> None:
    """warm > 0 with the local placement is a ConfigError that names the fix."""
    with pytest.raises(ConfigError, match=r"warm=2 starts environments ahead of demand, but "
                                          r"local .*runtime='docker:IMAGE'"):
        await taskset().run(ok, runtime="local", warm=2)
