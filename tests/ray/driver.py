"""A Ray driver for the tests: runs one job on the test cluster, prints it as JSON.

Run inside the cluster's network namespace (`ip netns exec NS python driver.py JSON`),
because Ray's servers listen on that namespace's loopback only. The JSON names the job:
image, runtime, agent ("oracle", "slow-oracle": a class of this file, pickled by value,
or "fake-claude": Claude against a FakeAPI served here), group, retries, spread, and
`kill` (the pid of a node's `ray start`, crashed once `kill_after` runs have ended).
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from typing import Any

from hud.agents.context import RunContext
from hud.agents.offline import OracleAgent


class SlowOracle:
    """The oracle, two seconds late: every slot is busy when a node is stopped."""

    name = "slow-oracle"

    async def __call__(self, run: RunContext) -> Any:
        await asyncio.sleep(2.0)
        return await OracleAgent()(run)


class Unpicklable:
    """An agent holding a lock: it cannot be pickled to a node."""

    name = "unpicklable"

    def __init__(self) -> None:
        import threading

        self.lock = threading.Lock()

    async def __call__(self, run: RunContext) -> Any:
        return None


def _agent(spec: dict[str, Any], out: dict[str, Any]) -> Any:
    from hud.eval.ray import AgentSpec

    name = spec["agent"]
    if name == "slow-oracle":
        return SlowOracle()
    if name == "unpicklable":
        return Unpicklable()
    if name == "fake-claude":
        from tests.agents.providers import Anthropic, FakeAPI

        api = FakeAPI()
        api.script = [(200, Anthropic("anthropic").answer("done"))]
        out["api"] = api
        # the key comes from this (the driver's) environment, as a user's would
        return AgentSpec("claude-sonnet-4-5", base_url=f"http://127.0.0.1:{api.port}",
                         max_retries=0)
    return AgentSpec(name)


async def main(spec: dict[str, Any]) -> dict[str, Any]:
    from hud.eval import Taskset
    from hud.eval.ray import RayPlacement

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    taskset = Taskset(Taskset.from_source(spec["image"]).tasks[:spec.get("tasks", 3)])
    extra: dict[str, Any] = {}
    agent = _agent(spec, extra)
    placement = RayPlacement(spec["image"], spec["runtime"], spread=spec.get("spread", "spread"))
    ended = 0

    def on_run(run: Any) -> None:
        nonlocal ended
        ended += 1
        if spec.get("kill") and ended == spec["kill_after"]:
            from tests.ray.cluster import crash_node

            crash_node(spec["kill"])  # the node is lost mid-job
        if ended == spec.get("interrupt_after"):
            signal.raise_signal(signal.SIGINT)  # Ctrl-C, as a user would press it

    try:
        job = await taskset.run(agent, group=spec["group"], runtime=placement,
                                retries=spec.get("retries", 0), on_run=on_run,
                                max_concurrent=spec.get("max_concurrent"))
    except Exception as exc:  # noqa: BLE001 - the test reads the error
        return {"error": f"{type(exc).__name__}: {exc}"}
    api = extra.get("api")
    from ray._private import state  # what a dashboard shows of jobs and actors

    return {
        "ray_state": json.dumps([state.jobs(), state.actors()], default=str),
        "job": job.id,
        "final": [{"status": r.status, "reward": r.reward, "node": r.placement.get("node"),
                   "trace": r.trace_id, "group": r.group_id, "error": r.error}
                  for r in job.final_runs],
        "all": [{"status": r.status, "attempt": r.attempt, "node": r.placement.get("node"),
                 "error": r.error} for r in job.runs],
        "headers": api.headers if api is not None else [],
    }


if __name__ == "__main__":
    try:
        answer = asyncio.run(main(json.loads(sys.argv[1])))
    except KeyboardInterrupt:
        answer = {"interrupted": True}
    print(json.dumps(answer))
