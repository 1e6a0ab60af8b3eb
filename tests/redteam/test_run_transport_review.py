"""Red-team review of the docker placement's `docker run -i` connection (RunTransport):
a hostile agent reaching for the run's pipes, a hostile image lying about serving its
stdio, and the host dying, cancelled or pooling mid-rollout; no container left behind."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import pytest

from hud.errors import HudError
from hud.eval import DockerPlacement, Taskset
from tests.docker_fixtures import base_layer, docker_cli, env_dir, unique_tag  # noqa: F401

pytestmark = pytest.mark.docker

WS_ENV = '''
from hud import Environment, graders

env = Environment(name="run-transport-review")
ws = env.workspace()


@env.template()
async def probe():
    await ws.run("nohup sleep 600 >/dev/null 2>&1 &", user="agent", timeout=30)
    answer = yield "Answer ok."
    yield 1.0 if answer == "ok" else 0.0


@env.template()
async def graded():
    answer = yield "Write /workspace/attack.sh; it is run when you are graded."
    yield await graders.command("/workspace", ["sh", "attack.sh"],
                                expect_stdout=lambda out: "REACHED" not in out and "done" in out)


tasks = [probe(), graded()]
'''

# run by the grader (as hud-grader): write a forged grade into every descriptor of every
# process of another uid (the daemon's, tini's: the run's pipes among them)
FORGE = r"""
frame='{"jsonrpc":"2.0","id":2,"result":{"reward":1.0}}'
for p in /proc/[0-9]*; do
  [ "$(stat -c %u $p 2>/dev/null)" = "$(id -u)" ] && continue  # its own, harmless
  for fd in 0 1 2 3 4 5 6 7 8 9 10 11 12; do
    if (printf '%s\n' "$frame" >> $p/fd/$fd) 2>/dev/null; then echo "REACHED $p/fd/$fd"; fi
  done
done
echo done
"""

# derived images that carry org.hud.connect=stdio but do not serve a clean connection
SILENT = 'CMD ["sleep", "3600"]\n'
GARBAGE_HOOK = ("RUN printf '#!/bin/sh\\nprintf \"not-json-at-all\\\\n\" > /proc/1/fd/1\\n' "
                "> /etc/hud/entrypoint.d/10-garbage && chmod 0755 /etc/hud/entrypoint.d/10-garbage\n")
FLOOD_HOOK = ("RUN printf '#!/bin/sh\\n(head -c 3000000 /dev/zero | tr \"\\\\\\\\0\" x "
              "> /proc/1/fd/1) &\\n' > /etc/hud/entrypoint.d/10-flood "
              "&& chmod 0755 /etc/hud/entrypoint.d/10-flood\n")

# as the agent: open every low descriptor of every root process, to read and to write
OPEN_ALL = r"""
n=0
for p in /proc/[0-9]*; do
  [ "$(stat -c %u $p 2>/dev/null)" = 0 ] || continue
  n=$((n+1))
  for fd in 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
    if (: >> $p/fd/$fd) 2>/dev/null; then echo "WROTE $p/fd/$fd"; fi
    if timeout 1 sh -c ": < $p/fd/$fd" 2>/dev/null; then echo "READ $p/fd/$fd"; fi
  done
done
echo "root processes: $n"
"""

# as root: every process holding one of pid 1's three pipes (the run's stdin, stdout,
# stderr), with its uid
HOLDERS = r"""
pipes=" $(readlink /proc/1/fd/0) $(readlink /proc/1/fd/1) $(readlink /proc/1/fd/2) "
for p in /proc/[0-9]*; do
  for f in $p/fd/*; do
    l=$(readlink $f 2>/dev/null) || continue
    case "$pipes" in *" $l "*) echo "${p#/proc/} $(stat -c %u $p)";; esac
  done
done | sort -u
"""

# an agent process that ignores every catchable signal and outlives its session
STUBBORN = ("setsid sh -c 'trap \"\" TERM INT HUP QUIT; while :; do sleep 1; done' "
            ">/dev/null 2>&1 < /dev/null & echo started")

HOLD_LEASE = """
import asyncio, sys
from hud.eval import DockerPlacement

async def main():
    lease = await DockerPlacement(sys.argv[1], ready_timeout=60).open("rt-review", sys.argv[2])
    if sys.argv[3] == "tunnel":
        await lease.tunnel("shell")
    print(lease.info["container"], flush=True)
    await asyncio.sleep(600)

asyncio.run(main())
"""


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory, base_layer: str):  # type: ignore[no-untyped-def]
    """The review env as built, and three derived images that carry the stdio label but
    never answer cleanly: a CMD that does not serve, a hook that writes a bad line and
    one that floods the connection."""
    from hud.build.env_image import build_env

    root = tmp_path_factory.mktemp("rt-review")
    folder = env_dir(root, "env", WS_ENV)
    made = {"env": unique_tag("hud-test-rtr"), "source": str(folder)}
    build_env(folder, tag=made["env"])
    for kind, tail in (("silent", SILENT), ("garbage", GARBAGE_HOOK), ("flood", FLOOD_HOOK)):
        made[kind] = unique_tag(f"hud-test-rtr-{kind}")
        docker_cli("build", "-t", made[kind], "-", input=f"FROM {made['env']}\n{tail}",
                   check=True)
    yield made
    docker_cli("rmi", "-f", *(made[k] for k in ("silent", "garbage", "flood", "env")),
               timeout=120)


def _gone(container: str, within: float = 60) -> bool:
    """Whether `container` is no longer listed (polled up to `within` seconds)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if docker_cli("ps", "-aq", "--filter", f"name=^{container}$", check=True).stdout == "":
            return True
        time.sleep(0.5)
    return False


def _tasks(images, name: str = "probe") -> Taskset:  # type: ignore[no-untyped-def]
    return Taskset.from_source(images["source"]).filter([name])


def _left(job_id: str) -> str:
    return docker_cli("ps", "-aq", "--filter", f"label=org.hud.job={job_id}", check=True).stdout


async def _rollout(images, probe):  # type: ignore[no-untyped-def]
    """One rollout on the review env whose agent runs `probe(run, container)` and answers
    ok; (probe's value, the job, the container)."""
    seen = {}

    async def agent(run):  # type: ignore[no-untyped-def]
        seen["container"] = run._lease.info["container"]
        seen["value"] = await probe(run, seen["container"])
        return "ok"

    job = await _tasks(images).run(
        agent, runtime=DockerPlacement(images["env"]))
    assert [r.reward for r in job.runs] == [1.0], [r.error for r in job.runs]
    return seen["value"], job, seen["container"]


async def test_the_agent_opens_no_descriptor_of_a_root_process(images) -> None:  # type: ignore[no-untyped-def]
    """As `agent`, no descriptor 0-20 of tini or the daemon (the run's pipes among them)
    opens for reading or writing through /proc."""

    async def probe(run, container):  # type: ignore[no-untyped-def]
        ssh = await run.ssh()
        try:
            return (await ssh.run(OPEN_ALL)).stdout
        finally:
            ssh.close()

    tried, _, _ = await _rollout(images, probe)
    assert "root processes: 0" not in tried, tried
    assert "WROTE" not in tried and "READ" not in tried, tried


async def test_no_agent_process_holds_any_pipe_of_the_run(images) -> None:  # type: ignore[no-untyped-def]
    """With the agent's ssh session, its background process and a task's `ws.run` child
    alive, only root processes hold the run's stdin, stdout or stderr (so the agent can
    neither frame the host nor write into the log tail its error messages quote)."""

    async def probe(run, container):  # type: ignore[no-untyped-def]
        ssh = await run.ssh()
        try:
            await ssh.run("nohup sleep 300 >/dev/null 2>&1 &", check=True)
            return docker_cli("exec", container, "sh", "-c", HOLDERS, check=True).stdout
        finally:
            ssh.close()

    holders, _, _ = await _rollout(images, probe)
    held = [line.split() for line in holders.splitlines()]
    assert held, holders
    assert {uid for _, uid in held} == {"0"}, holders


async def test_a_stubborn_agent_process_does_not_keep_the_container(images) -> None:  # type: ignore[no-untyped-def]
    """An agent process in its own session that ignores TERM/INT/HUP does not outlive the
    rollout: once the job returns, its container is gone."""

    async def probe(run, container):  # type: ignore[no-untyped-def]
        ssh = await run.ssh()
        try:
            return (await ssh.run(STUBBORN, check=True)).stdout
        finally:
            ssh.close()

    said, job, container = await _rollout(images, probe)
    assert "started" in said
    assert docker_cli("ps", "-aq", "--filter", f"name=^{container}$", check=True).stdout == ""
    assert _left(job.id) == ""


@pytest.mark.parametrize("phase", ["plain", "tunnel"])
def test_a_host_killed_with_sigkill_leaves_no_container(images, phase: str) -> None:  # type: ignore[no-untyped-def]
    """The host process SIGKILLed while it holds a lease (control lines only, or after
    SSH started): its docker client sees the end of stdin and the container goes."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD_LEASE, images["env"], f"k-{phase}",
                             phase], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True)
    try:
        assert proc.stdout is not None
        container = proc.stdout.readline().strip()
        assert container.startswith("hud-"), container
        assert docker_cli("ps", "-q", "--filter", f"name=^{container}$", check=True).stdout
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert _gone(container), docker_cli("ps", "-a", "--filter", f"name={container}").stdout


async def test_a_killed_docker_client_ends_the_rollout_and_its_container(images) -> None:  # type: ignore[no-untyped-def]
    """The rollout's `docker run` client SIGKILLed mid-rollout: the rollout is an
    infra_error (never a reward) and the container goes."""
    seen = {}

    async def agent(run):  # type: ignore[no-untyped-def]
        seen["container"] = run._lease.info["container"]
        transport_pid = run._lease.tunnel.__self__.pid
        os.kill(transport_pid, signal.SIGKILL)
        await asyncio.sleep(1)
        ssh = await run.ssh()
        await ssh.run("true")
        return "ok"

    job = await _tasks(images).run(
        agent, runtime=DockerPlacement(images["env"]))
    assert [r.status for r in job.runs] == ["infra_error"], [r.error for r in job.runs]
    assert [r.reward for r in job.runs] != [1.0]
    assert _gone(seen["container"])


@pytest.mark.parametrize(("kind", "said"), [("silent", "did not answer hello"),
                                             ("garbage", "not-json-at-all"),
                                             ("flood", "not JSON(.|\n)*xxxx")])
async def test_an_image_that_lies_about_stdio_fails_bounded_and_is_removed(  # type: ignore[no-untyped-def]
        images, kind: str, said: str) -> None:
    """An image labelled org.hud.connect=stdio whose container does not serve (sleeps),
    or whose hook writes a bad line or 3 MB without a newline to the connection: open()
    raises a HudError within its ready timeout (plus margins) and no container is left."""
    job_id = unique_tag("rtr-liar")
    placement = DockerPlacement(images[kind], ready_timeout=5)
    with pytest.raises(HudError, match=rf"container hud-\w+(.|\n)*{said}"):
        await asyncio.wait_for(placement.open(job_id, "r1"), 60)
    await placement.shutdown()
    assert _left(job_id) == ""


async def test_a_graded_program_cannot_forge_a_grade_into_any_descriptor(images) -> None:  # type: ignore[no-untyped-def]
    """The agent's program, run at grade time as hud-grader, writes a forged grade frame
    into every descriptor of every other process: none opens, and the task grades as the
    grader decides (not an infra error, not the forged reward)."""
    seen = {}

    async def agent(run):  # type: ignore[no-untyped-def]
        ssh = await run.ssh()
        try:
            await ssh.run(f"cat > /workspace/attack.sh <<'EOF'\n{FORGE}\nEOF", check=True)
        finally:
            ssh.close()
        seen["container"] = run._lease.info["container"]
        return "ok"

    job = await _tasks(images, "graded").run(agent, runtime=DockerPlacement(images["env"]))
    assert [(r.status, r.reward) for r in job.runs] == [("completed", 1.0)], \
        [(r.status, r.reward, r.error) for r in job.runs]


async def test_a_bad_hello_answer_is_not_blamed_on_a_container_that_stopped(images) -> None:  # type: ignore[no-untyped-def]
    """A hook writes a non-JSON line to the connection: the error names the bad answer and
    does not claim the container stopped by itself (the host ended it)."""
    placement = DockerPlacement(images["garbage"], ready_timeout=5)
    with pytest.raises(HudError, match="not JSON") as caught:
        await placement.open(unique_tag("rtr-blame"), "r1")
    await placement.shutdown()
    assert "stopped before" not in str(caught.value), str(caught.value)


async def test_an_unused_warm_pool_leaves_no_container(images) -> None:  # type: ignore[no-untyped-def]
    """`warm=3` for one rollout: the environments the pool opened ahead and never used
    are gone when the job returns."""

    async def agent(run):  # type: ignore[no-untyped-def]
        return "ok"

    job = await _tasks(images).run(
        agent, runtime=DockerPlacement(images["env"]), warm=3)
    assert [r.reward for r in job.runs] == [1.0], [r.error for r in job.runs]
    assert _left(job.id) == ""


async def test_a_job_cancelled_mid_rollout_leaves_no_container(images) -> None:  # type: ignore[no-untyped-def]
    """A job cancelled (Ctrl-C) while its agent holds an ssh session: the cancel
    propagates and the rollout's container is gone once it has."""
    inside = asyncio.Event()
    seen = {}

    async def agent(run):  # type: ignore[no-untyped-def]
        seen["container"] = run._lease.info["container"]
        ssh = await run.ssh()
        await ssh.run("nohup sleep 300 >/dev/null 2>&1 &")
        inside.set()
        await asyncio.sleep(600)
        return "ok"

    job = asyncio.ensure_future(_tasks(images).run(
        agent, runtime=DockerPlacement(images["env"])))
    await asyncio.wait_for(inside.wait(), 120)
    job.cancel()
    with pytest.raises(asyncio.CancelledError):
        await job
    assert _gone(seen["container"], within=1)
