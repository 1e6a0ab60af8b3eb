"""Eval on real Docker: a fresh container per rollout with a pids limit, typed infra errors,
hud prune, and a group attached to one running container taking turns."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hud.agents import NopAgent, OracleAgent
from hud.eval import DockerPlacement, Taskset
from tests.docker_fixtures import base_layer, containers, docker_cli, env_dir, image_tags, unique_tag  # noqa: F401

pytestmark = pytest.mark.docker

LETTERS_PY = Path(__file__).resolve().parent.parent / "envs" / "letters.py"
LETTERS = LETTERS_PY.read_text()


@pytest.fixture(scope="module")
def letters_image(tmp_path_factory: pytest.TempPathFactory, base_layer: str):
    from hud.build.env_image import build_env

    folder = env_dir(tmp_path_factory.mktemp("letters"), "letters", LETTERS)
    tag = unique_tag("hud-test-letters")
    build_env(folder, tag=tag)
    yield tag
    docker_cli("rmi", "-f", tag, timeout=120)


# one workspace file per container: members of a group that ran at once would overwrite
# each other's token and grade 0 (what the coding template's shared /workspace did)
SHARED = (Path(__file__).resolve().parent.parent / "envs" / "remember.py").read_text()

# the agent forks sleepers until fork fails, then ends them; prints "COUNT ERRNO-NAME"
FORK_LOOP = """python3 -c '
import errno, os, time
pids = []
try:
    while len(pids) < 5000:
        pid = os.fork()
        if pid == 0:
            time.sleep(120)
            os._exit(0)
        pids.append(pid)
    print(len(pids), "no-limit")
except OSError as exc:
    print(len(pids), errno.errorcode[exc.errno])
finally:
    for pid in pids:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
'"""


@pytest.fixture(scope="module")
def shared_env(tmp_path_factory: pytest.TempPathFactory, base_layer: str):
    from hud.build.env_image import build_env

    folder = env_dir(tmp_path_factory.mktemp("shared"), "shared", SHARED)
    tag = unique_tag("hud-test-shared")
    build_env(folder, tag=tag)
    yield folder, tag
    docker_cli("rmi", "-f", tag, timeout=120)


def job_containers(job_id: str) -> list[str]:
    done = docker_cli("ps", "-aq", "--filter", f"label=org.hud.job={job_id}", check=True)
    return done.stdout.split()


async def test_oracle_and_nop_in_docker_placement(letters_image: str) -> None:
    """Oracle grades 1.0 and nop 0.0 in fresh containers, all removed afterwards."""
    tasks = Taskset.from_source(LETTERS_PY)
    oracle = await tasks.run(OracleAgent(), group=2, runtime=f"docker:{letters_image}")
    assert oracle.reward == 1.0, [r.error for r in oracle.errors]
    assert {r.placement["container"] for r in oracle.runs}.__len__() == 6  # one per rollout
    nop = await tasks.run(NopAgent(), runtime=DockerPlacement(letters_image))
    assert nop.reward == 0.0 and not nop.errors
    assert job_containers(oracle.id) == [] and job_containers(nop.id) == []


async def test_rollout_containers_have_no_network(letters_image: str) -> None:
    """Rollout containers run with --network none and dropped capabilities."""
    seen: dict[str, str] = {}

    async def inspect(run):  # type: ignore[no-untyped-def]
        container = run._lease.info["container"]
        done = docker_cli("inspect", "-f", "{{.HostConfig.NetworkMode}} {{.HostConfig.CapDrop}}",
                          container, check=True)
        seen["config"] = done.stdout.strip()
        return await run.solve()

    tasks = Taskset.from_source(LETTERS_PY)
    job = await tasks.filter(["count_letter-7723267a"]).run(inspect, runtime=f"docker:{letters_image}")
    assert job.reward == 1.0
    assert seen["config"] == "none [ALL]"


async def test_container_killed_mid_rollout_is_infra_error_and_retried(letters_image: str) -> None:
    """A container that dies under the agent: infra_error, never 0.0; a retry completes it."""
    killed = {"done": False}

    async def killer(run):  # type: ignore[no-untyped-def]
        if not killed["done"]:
            killed["done"] = True
            docker_cli("kill", run._lease.info["container"], check=True)
        return await run.solve()

    tasks = Taskset.from_source(LETTERS_PY)
    job = await tasks.filter(["count_letter-7723267a"]).run(
        killer, runtime=f"docker:{letters_image}", retries=1)
    first, second = sorted(job.runs, key=lambda r: r.attempt)
    assert first.status == "infra_error" and first.reward is None
    assert "container" in first.error
    assert second.status == "completed" and second.reward == 1.0
    assert job.reward == 1.0 and job.errors == []


# kills the `hud connect --mux` process in the container by pid; the pattern is split so
# the shell running it does not match itself
KILL_MUX = ('m=mux; for p in /proc/[0-9]*; do case "$(tr "\\0" " " < $p/cmdline)" in '
            '*"connect --$m"*) kill -9 "${p#/proc/}";; esac; done')


def kill_carrier(container: str) -> None:
    """Kill the process carrying a rollout's connection: this host's `docker run -i` client
    that started `container` (by the unique name the placement gave it; by pid)."""
    wanted = f"\0--name\0{container}\0".encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if b"\0run\0" in cmdline and wanted in cmdline:
            os.kill(int(proc.name), signal.SIGKILL)
            return
    raise AssertionError(f"no docker run client of {container} on this host")


async def test_exec_killed_mid_rollout_is_infra_error_and_the_group_completes(
        letters_image: str) -> None:
    """The `docker run -i` client that carries a rollout's connection dies under the agent:
    that rollout is an infra_error (not 0.0, no hang), and with retries the group of 3 completes."""
    killed = {"done": False}

    async def killer(run):  # type: ignore[no-untyped-def]
        if not killed["done"]:
            killed["done"] = True
            kill_carrier(run._lease.info["container"])
        return await run.solve()

    tasks = Taskset.from_source(LETTERS_PY)
    job = await tasks.filter(["count_letter-7723267a"]).run(
        killer, group=3, max_concurrent=1, runtime=f"docker:{letters_image}", retries=1)
    failed = [r for r in job.runs if r.status != "completed"]
    assert [r.status for r in failed] == ["infra_error"] and failed[0].reward is None, failed[0].error
    assert "connection lost" in failed[0].error
    done = [r for r in job.runs if r.status == "completed"]
    assert len(done) == 3 and {r.reward for r in done} == {1.0}
    assert job.reward == 1.0 and job.errors == []


async def test_tools_broken_by_a_lost_connection_are_infra_not_agent_error(
        shared_env: tuple[Path, str]) -> None:
    """The connection's carrier dies while the agent holds an ssh session; the agent's next
    command raises
    (asyncssh's error, not hud's): the rollout is an infra_error, and the retry completes."""
    folder, tag = shared_env
    killed = {"done": False}

    async def killer(run):  # type: ignore[no-untyped-def]
        ssh = await run.ssh()
        if not killed["done"]:
            killed["done"] = True
            kill_carrier(run._lease.info["container"])
        done = await ssh.run("cat /workspace/token", check=True)
        return done.stdout.strip()

    job = await Taskset.from_source(folder).run(killer, runtime=DockerPlacement(tag), retries=1)
    first, second = sorted(job.runs, key=lambda r: r.attempt)
    assert first.status == "infra_error" and first.reward is None, first.error
    assert "connection was lost under the agent" in first.error
    assert second.status == "completed" and second.reward == 1.0, second.error


def _sleepy_eval(letters_image: str, tmp_path: Path) -> tuple[subprocess.Popen[bytes], list[str]]:
    """An eval in its own process whose agent sleeps, once the agent runs; and its
    container (the labelled containers that were not there before)."""
    before = set(_labelled())
    script = tmp_path / "slow_eval.py"
    script.write_text(
        "import asyncio, sys\n"
        "from hud.eval import Taskset\n"
        f"tasks = Taskset.from_source({str(LETTERS_PY)!r})\n"
        "async def sleepy(run):\n"
        "    print('AGENT-RUNNING', flush=True)\n"
        "    await asyncio.sleep(600)\n"
        "asyncio.run(tasks.filter(['count_letter-7723267a'])"
        f".run(sleepy, runtime='docker:{letters_image}'))\n"
    )
    env = {**os.environ, "HUD_RUNS_DIR": str(tmp_path / "runs")}
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, env=env)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert b"AGENT-RUNNING" in line
    return proc, [c for c in _labelled() if c not in before]


def _labelled() -> list[str]:
    return docker_cli("ps", "-aq", "--filter", "label=org.hud.job", check=True).stdout.split()


def test_killed_job_s_containers_go_by_themselves(letters_image: str, tmp_path: Path) -> None:
    """SIGKILL an eval mid-rollout: its container's connection ends with it, so the
    container stops and docker removes it, with no `hud prune`."""
    proc, ours = _sleepy_eval(letters_image, tmp_path)
    try:
        assert len(ours) == 1
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        for _ in range(600):
            if ours[0] not in _labelled():
                break
            time.sleep(0.1)
        assert ours[0] not in _labelled()
    finally:
        proc.kill()


def test_killed_job_leaves_containers_that_prune_removes(letters_image: str, tmp_path: Path) -> None:
    """`hud prune` keeps a running eval's container; once the eval is SIGKILLed it removes
    what it left (a container that could not go by itself: paused here)."""
    proc, ours = _sleepy_eval(letters_image, tmp_path)
    try:
        live = subprocess.run([sys.executable, "-m", "hud.cli.main", "prune"],
                              capture_output=True, text=True, timeout=120)
        assert live.returncode == 0 and "still running" in live.stdout, live.stdout
        assert len(ours) == 1
        docker_cli("pause", ours[0], check=True)  # it cannot see its connection end
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        assert ours[0] in _labelled(), "the paused container should have stayed"
        done = subprocess.run([sys.executable, "-m", "hud.cli.main", "prune"], capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0 and "removed" in done.stdout, done.stdout
        assert ours[0] not in _labelled()
    finally:
        proc.kill()


def test_hud_task_list_reads_the_image_label(letters_image: str) -> None:
    """`hud task list --image` lists tasks without starting a container."""
    done = subprocess.run([sys.executable, "-m", "hud.cli.main", "task", "list", "--image",
                           letters_image, "--json"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)["tasks"]) == 3


def test_eval_cli_defaults_to_docker_for_a_built_dir(letters_image: str, tmp_path: Path) -> None:
    """A directory with hud.lock.json runs in docker placement, said on the first line."""
    from hud.build.env_image import build_env

    folder = env_dir(tmp_path, "built", LETTERS)
    tag = unique_tag("hud-test-built")
    try:
        build_env(folder, tag=tag)
        env = {**os.environ, "HUD_RUNS_DIR": str(tmp_path / "runs")}
        done = subprocess.run([sys.executable, "-m", "hud.cli.main", "eval", str(folder), "oracle"],
                              capture_output=True, text=True, timeout=300, env=env)
        assert done.returncode == 0, done.stderr
        assert done.stderr.splitlines()[0].startswith(f"placement: docker ({tag}")
        assert "reward 1.000 over 3 completed runs" in done.stdout
    finally:
        docker_cli("rmi", "-f", tag, timeout=120)


async def test_rollout_containers_have_a_pids_limit(letters_image: str) -> None:
    """A rollout container runs with docker's PidsLimit at the default, 1024."""
    seen: dict[str, str] = {}

    async def inspect(run):  # type: ignore[no-untyped-def]
        done = docker_cli("inspect", "-f", "{{.HostConfig.PidsLimit}}",
                          run._lease.info["container"], check=True)
        seen["limit"] = done.stdout.strip()
        return await run.solve()

    tasks = Taskset.from_source(LETTERS_PY)
    job = await tasks.filter(["count_letter-7723267a"]).run(inspect, runtime=f"docker:{letters_image}")
    assert job.reward == 1.0 and seen["limit"] == "1024"


async def test_an_agents_fork_loop_stops_at_the_pids_limit(shared_env) -> None:  # type: ignore[no-untyped-def]
    """The agent forks over ssh until fork fails with EAGAIN, below pids_limit=200."""
    folder, tag = shared_env
    seen: dict[str, str] = {}

    async def forker(run):  # type: ignore[no-untyped-def]
        seen["limit"] = docker_cli("inspect", "-f", "{{.HostConfig.PidsLimit}}",
                                   run._lease.info["container"], check=True).stdout.strip()
        conn = await run.ssh()
        try:
            seen["out"] = (await conn.run(FORK_LOOP, timeout=120)).stdout.strip()
        finally:
            conn.close()
        return "done"

    job = await Taskset.from_source(folder).run(forker, runtime=DockerPlacement(tag, pids_limit=200),
                                                timeout=300)
    assert job.runs[0].status == "completed", job.runs[0].error
    count, why = seen["out"].split()
    assert seen["limit"] == "200" and why == "EAGAIN" and 0 < int(count) < 200


async def test_oracle_group_on_one_running_container_all_score(shared_env, containers) -> None:  # type: ignore[no-untyped-def]
    """A group of 4 against one running container sharing /workspace: every member 1.0."""
    folder, tag = shared_env
    name = containers.run(tag, options=("--network", "none"))
    containers.wait_healthy(name)
    oracle = OracleAgent()

    async def thoughtful_oracle(run):  # type: ignore[no-untyped-def]
        await asyncio.sleep(0.5)  # room for the other members to start, were they let
        return await oracle(run)

    job = await Taskset.from_source(folder).run(thoughtful_oracle, group=4, runtime=name)
    assert [r.reward for r in job.runs] == [1.0] * 4, [r.error for r in job.runs]
    assert "attach" in job.placement
