"""Warm pools on real Docker: a job of 4N rollouts, one container per rollout with the right
labels, a container failing readiness replaced, Ctrl-C and a crash leaving none behind."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hud.eval import DockerPlacement, Placement, Taskset
from hud.eval.placement import Lease
from hud.eval.traces import read_trace
from tests.docker_fixtures import base_layer, docker_cli, env_dir, unique_tag  # noqa: F401

pytestmark = pytest.mark.docker


async def ok(run: Any) -> str:
    """An agent that answers right away."""
    return "ok"

HOLD = '''
import asyncio

from hud import Environment

env = Environment(name="pool-hold")


@env.template()
async def hold(n: int = 0):
    answer = yield "Say ok."
    yield 1.0 if answer == "ok" else 0.0


@hold.solution
async def solve() -> str:
    await asyncio.sleep(2)  # a rollout that takes a while, so a job can be interrupted
    return "ok"


tasks = [hold(n=n) for n in range(2)]
'''


@pytest.fixture(scope="module")
def hold_env(tmp_path_factory: pytest.TempPathFactory, base_layer: str) -> Iterator[tuple[Path, str]]:
    from hud.build.env_image import build_env

    folder = env_dir(tmp_path_factory.mktemp("pool"), "hold", HOLD)
    tag = unique_tag("hud-test-pool")
    build_env(folder, tag=tag)
    yield folder, tag
    docker_cli("rmi", "-f", tag, timeout=120)


def job_containers(job_id: str) -> list[str]:
    return docker_cli("ps", "-aq", "--filter", f"label=org.hud.job={job_id}",
                      check=True).stdout.split()


def container_labels(container: str) -> dict[str, str]:
    done = docker_cli("inspect", "-f", "{{json .Config.Labels}}", container, check=True)
    labels: dict[str, str] = json.loads(done.stdout)
    return labels


async def test_docker_warm_pool_of_2_under_8_rollouts_leaves_no_container(
        hold_env: tuple[Path, str]) -> None:
    """warm=2, 8 rollouts (4N) in real containers: all graded 1.0, none left with the label."""
    folder, tag = hold_env
    job = await Taskset.from_source(folder).run(ok, group=4, max_concurrent=2,
                                                runtime=DockerPlacement(tag), warm=2)
    assert [r.reward for r in job.runs] == [1.0] * 8, [r.error for r in job.runs]
    assert job_containers(job.id) == []


async def test_docker_no_container_serves_two_rollouts(hold_env: tuple[Path, str],
                                                       runs_dir: Path) -> None:
    """Each rollout's trace names its own container, labelled with the job and the pool
    lease the trace records."""
    folder, tag = hold_env
    labels: dict[str, dict[str, str]] = {}

    async def inspecting(run: Any) -> str:
        container = run._lease.info["container"]
        labels[container] = container_labels(container)
        return "ok"

    job = await Taskset.from_source(folder).run(inspecting, group=3, max_concurrent=2,
                                                runtime=DockerPlacement(tag), warm=2)
    assert job.reward == 1.0, [r.error for r in job.runs]
    placed = [next(e for e in read_trace(runs_dir / job.id / f"{r.trace_id}.jsonl")
                   if e["type"] == "placement") for r in job.runs]
    assert len({p["container"] for p in placed}) == 6
    for p in placed:
        assert labels[p["container"]]["org.hud.job"] == job.id
        assert labels[p["container"]]["org.hud.rollout"] == p["warm_lease"]


class FirstBroken(Placement):
    """Real containers; the first one's entrypoint exits at once, so it never gets ready."""

    name = "docker"

    def __init__(self, image: str) -> None:
        self.good = DockerPlacement(image)
        self.bad = DockerPlacement(image, extra_args=["--entrypoint", "true"], ready_timeout=30)
        self.broken: list[str] = []

    async def open(self, job_id: str, rollout_id: str) -> Lease:
        if not self.broken:
            self.broken.append(rollout_id)
            return await self.bad.open(job_id, rollout_id)
        return await self.good.open(job_id, rollout_id)

    async def shutdown(self) -> None:  # a wrapper passes it on: the removals finish there
        await self.good.shutdown()
        await self.bad.shutdown()


async def test_docker_container_failing_readiness_is_replaced_not_handed_out(
        hold_env: tuple[Path, str], caplog: pytest.LogCaptureFixture) -> None:
    """A container that exits before its daemon answers is replaced: every rollout runs on
    another, the failure is logged, and nothing with the job label is left."""
    folder, tag = hold_env
    placement = FirstBroken(tag)
    with caplog.at_level(logging.WARNING, logger="hud.eval"):
        job = await Taskset.from_source(folder).run(ok, group=2, max_concurrent=2,
                                                    runtime=placement, warm=2)
    assert job.reward == 1.0 and len(job.runs) == 4, [r.error for r in job.runs]
    assert placement.broken[0] not in {r.placement["warm_lease"] for r in job.runs}
    assert any(placement.broken[0] in r.getMessage() and "readiness" in r.getMessage()
               for r in caplog.records)
    assert job_containers(job.id) == []


def settled_containers(job_id: str) -> list[str]:
    """The job's containers once the engine has finished what the killed clients asked
    (the same list twice, a second apart)."""
    deadline = time.monotonic() + 60
    last = job_containers(job_id)
    while time.monotonic() < deadline:
        time.sleep(1)
        now = job_containers(job_id)
        if now == last:
            return now
        last = now
    raise AssertionError(f"the containers of job {job_id} kept changing: {last}")


def _settled_running(job_id: str) -> list[str]:
    """The job's containers once every one of them runs and the set holds for a second
    (the eval is stopped: only the docker clients it had started still act)."""
    deadline = time.monotonic() + 60
    last: list[str] = []
    while time.monotonic() < deadline:
        listed = docker_cli("ps", "-a", "--filter", f"label=org.hud.job={job_id}",
                            "--format", "{{.ID}} {{.State}}", check=True).stdout.split("\n")
        now = sorted(line for line in listed if line.strip())
        if now and now == last and all(line.endswith(" running") for line in now):
            return [line.split()[0] for line in now]
        last = now
        time.sleep(1)
    raise AssertionError(f"the containers of job {job_id} did not settle running: {last}")


def _end_group(proc: subprocess.Popen[bytes]) -> None:
    """End what is left of the eval's process group (started by this test)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def _first_ended_trace(runs: Path, proc: subprocess.Popen[bytes]) -> str:
    """The job id once one of its rollouts has ended (its trace has an `end` event)."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the eval ended before a rollout could be interrupted"
        for path in runs.glob("*/*.jsonl"):
            if '"type": "end"' in path.read_text():
                return path.parent.name
        time.sleep(0.1)
    raise AssertionError("no rollout ended within 300 s")


def test_docker_ctrl_c_during_a_warm_eval_leaves_no_container(hold_env: tuple[Path, str],
                                                              tmp_path: Path) -> None:
    """SIGINT to `hud eval --warm 2` after its first rollout: zero containers with its label."""
    folder, tag = hold_env
    runs = tmp_path / "runs"
    env = {**os.environ, "HUD_RUNS_DIR": str(runs)}
    proc = subprocess.Popen([sys.executable, "-m", "hud.cli.main", "eval", str(folder), "oracle",
                             "--runtime", f"docker:{tag}", "--group", "8", "--max-concurrent",
                             "2", "--warm", "2"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        job_id = _first_ended_trace(runs, proc)
        assert job_containers(job_id), "the job should be running containers when interrupted"
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole group
        proc.wait(timeout=180)
        assert proc.returncode != 0
        assert settled_containers(job_id) == []
    finally:
        _end_group(proc)


def test_docker_killed_warm_eval_is_pruned_by_its_job_label(hold_env: tuple[Path, str],
                                                            tmp_path: Path) -> None:
    """SIGKILL a warm eval: its pool containers carry the job label; those that could not
    go by themselves (paused here, so they cannot see their connection end) `hud prune
    --job` removes, every one."""
    folder, tag = hold_env
    runs = tmp_path / "runs"
    env = {**os.environ, "HUD_RUNS_DIR": str(runs)}
    proc = subprocess.Popen([sys.executable, "-m", "hud.cli.main", "eval", str(folder), "oracle",
                             "--runtime", f"docker:{tag}", "--group", "8", "--max-concurrent",
                             "1", "--warm", "2"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        job_id = _first_ended_trace(runs, proc)
        os.kill(proc.pid, signal.SIGSTOP)  # the pool holds what it holds now...
        # ...once the docker clients it had started have: a container still being created,
        # or one a finished rollout let go, cannot be paused (and goes by itself)
        paused = _settled_running(job_id)
        for container in paused:
            docker_cli("pause", container, check=True)
        os.killpg(proc.pid, signal.SIGKILL)  # the eval and its docker clients, as a crash
        proc.wait(timeout=30)
        left = settled_containers(job_id)
        assert paused and sorted(left) == sorted(paused), \
            "the killed job should have left its paused pool containers, and only those"
        done = subprocess.run([sys.executable, "-m", "hud.cli.main", "prune", "--job", job_id],
                              capture_output=True, text=True, timeout=120, env=env)
        assert done.returncode == 0 and f"removed {len(left)} container(s)" in done.stdout
        assert job_containers(job_id) == []
    finally:
        _end_group(proc)
