"""In a real container, as a hostile agent over ssh: what it leaves does not reach the next
task, its symlinks do not steer root, its processes are expendable and do not survive."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.docker_fixtures import base_layer, containers, docker_cli, env_dir, openssh_as_agent, unique_tag  # noqa: F401

pytestmark = pytest.mark.docker

ENV = '''
from pathlib import Path

from hud import Environment

env = Environment(name="scratch")
ws = env.workspace()
HERE = Path(__file__).parent


@env.template()
async def fresh():
    """The project is copied in as the agent; the reward says whether the copy is whole."""
    await ws.reset(HERE / "project")
    answer = yield "Look around."
    yield 1.0
'''

SCRATCH = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock")


@pytest.fixture(scope="module")
def scratch_image(tmp_path_factory: pytest.TempPathFactory, base_layer: str):
    from hud.build.env_image import build_env

    folder = env_dir(tmp_path_factory.mktemp("scratch"), "scratch", ENV)
    (folder / "project" / "stats").mkdir(parents=True)
    (folder / "project" / "stats" / "core.py").write_text("def median(xs): ...\n")
    tag = unique_tag("hud-test-scratch")
    build_env(folder, tag=tag)
    yield tag
    docker_cli("rmi", "-f", tag, timeout=120)


@pytest.fixture
def running(scratch_image: str, containers):
    name = containers.run(scratch_image, options=("--network", "none"))
    containers.wait_healthy(name)
    return name


@pytest.fixture
def agent(running: str, tmp_path: Path):
    """Runs a command as the agent over OpenSSH through the exec tunnel."""
    run, _ = openssh_as_agent(running, tmp_path)
    return run


def _root(running: str, command: str) -> str:
    return docker_cli("exec", running, "sh", "-c", command, check=True).stdout


def test_agent_files_and_processes_do_not_reach_the_next_task(agent, running: str,
                                                              containers) -> None:
    """Files in every scratch dir and the home, and a respawning process, are gone at the
    next task start."""
    containers.hud(running, "task", "start", "fresh")
    plant = " && ".join(f"mkdir -p {d}/loot && echo hidden > {d}/loot/tests.py" for d in SCRATCH)
    done = agent(f"{plant} && echo hidden > ~/tests.py && "
                 "(setsid sh -c 'while :; do sleep 1000 & wait; done' >/dev/null 2>&1 &) && echo ok")
    assert done.stdout.strip() == "ok", done.stderr
    containers.hud(running, "task", "grade", "fresh", "--answer", "x")
    containers.hud(running, "task", "start", "fresh")
    left = _root(running, "find /tmp /var/tmp /dev/shm /run/lock -user agent; "
                          "pgrep -u agent -a || true")
    assert left.strip() == ""
    assert _root(running, "ls -A /home/agent") == _root(running, "ls -A /etc/skel")


def test_a_symlink_in_the_workspace_does_not_open_the_env(agent, running: str,
                                                       containers) -> None:
    """workspace/stats made a symlink to the env folder, by a process still swapping it when
    the task ends: at the next setup the env folder stays root-only and the copy is the
    agent's."""
    containers.hud(running, "task", "start", "fresh")
    agent("rm -rf /workspace/stats && ln -s /opt/hud/env /workspace/stats && "
          "(setsid sh -c 'cd /workspace; while :; do rm -rf stats; ln -sfn /opt/hud/env stats; "
          "done' >/dev/null 2>&1 < /dev/null &)")
    containers.hud(running, "task", "grade", "fresh", "--answer", "x")
    containers.hud(running, "task", "start", "fresh")
    assert _root(running, "stat -c '%a %U' /opt/hud/env").split() == ["700", "root"]
    owners = _root(running, "find /workspace -mindepth 1 -printf '%u %p\\n'").splitlines()
    assert owners == ["agent /workspace/stats", "agent /workspace/stats/core.py"]
    assert _root(running, "find /opt/hud/env -user agent").strip() == ""


def test_agent_sessions_are_first_for_the_oom_killer(agent, running: str,
                                                     containers) -> None:
    """The agent's shell runs with oom_score_adj 1000; the daemon's own score is lower."""
    containers.hud(running, "task", "start", "fresh")
    assert agent("cat /proc/self/oom_score_adj").stdout.strip() == "1000"
    daemon = _root(running, "cat /proc/$(pgrep -o -f 'hud serve')/oom_score_adj").strip()
    assert int(daemon) < 1000
