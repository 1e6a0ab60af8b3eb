"""ssh and mcp in a real container, reached only through exec tunnels; the agent (over ssh,
as uid 1000) cannot reach the grader. Real OpenSSH client, real MCP client."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

import hud
from tests.docker_fixtures import base_layer, containers, docker_cli, env_dir, openssh_as_agent, unique_tag  # noqa: F401

pytestmark = pytest.mark.docker

ENV = '''
from hud import Environment

env = Environment(name="caps")
ws = env.workspace()

SECRET = "the-answer-is-42"


@env.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@env.tool()
def explode() -> str:
    """Always fails."""
    raise RuntimeError("tool blew up")


@env.template()
async def secret():
    await ws.run("echo hello > /workspace/notes.txt", user="agent", timeout=30)
    answer = yield "Find the secret."
    yield 1.0 if answer == SECRET else 0.0


@env.template()
async def quiet_at_grading():
    answer = yield "Leave something running."
    left = await ws.run("pgrep -u agent -a || true", user="root", timeout=30)
    yield {"score": 0.0 if left.stdout.strip() else 1.0, "info": {"left": left.stdout}}


@env.template()
async def edit_file():
    await ws.run("printf 'x = 1\\n' > /workspace/value.py", user="agent", timeout=30)
    answer = yield "Change x to 2 in /workspace/value.py."
    # -B: no .pyc, whose second-resolution mtime check could serve the previous task's value
    done = await ws.run("python3 -B -c 'import value; print(value.x)'", user="agent", timeout=30)
    yield 1.0 if done.stdout.strip() == "2" else 0.0
'''


@pytest.fixture(scope="module")
def caps_image(tmp_path_factory: pytest.TempPathFactory, base_layer: str):
    from hud.build.env_image import build_env

    tag = unique_tag("hud-test-caps")
    build_env(env_dir(tmp_path_factory.mktemp("caps"), "caps", ENV), tag=tag)
    yield tag
    docker_cli("rmi", "-f", tag, timeout=120)


@pytest.fixture
def running(caps_image: str, containers):
    name = containers.run(caps_image, options=("--network", "none"))
    containers.wait_healthy(name)
    return name


@pytest.fixture
def ssh_cmd(running: str, tmp_path: Path):
    """An OpenSSH command line through `docker exec ... hud connect --tunnel shell`."""
    run, opts = openssh_as_agent(running, tmp_path)
    run.opts = opts  # type: ignore[attr-defined]
    return run


def test_openssh_through_the_exec_tunnel(ssh_cmd) -> None:
    """Real `ssh` via ProxyCommand: runs as agent in /workspace, with --network none."""
    if shutil.which("ssh") is None:
        pytest.fail("openssh-client is not installed (scripts/setup installs it)")
    done = ssh_cmd("id -un; pwd; env")
    assert done.returncode == 0, done.stderr
    user, cwd, *env = done.stdout.splitlines()
    assert (user, cwd) == ("agent", "/workspace")
    assert not [line for line in env if line.startswith("HUD_")]


def test_scp_through_the_tunnel(ssh_cmd, running: str, tmp_path: Path) -> None:
    """scp copies a file in (and the agent owns it)."""
    src = tmp_path / "hello.txt"
    src.write_text("over scp\n")
    done = subprocess.run(["scp", *ssh_cmd.opts, str(src), f"agent@{running}:/workspace/"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert ssh_cmd("stat -c %U /workspace/hello.txt; cat /workspace/hello.txt").stdout == "agent\nover scp\n"


@pytest.mark.parametrize(
    ("what", "command"),
    [
        ("read the env module", "cat /opt/hud/env/env.py"),
        ("list the env dir", "ls /opt/hud/env"),
        ("list the control socket dir", "ls /run/hud"),
        ("connect to the control socket",
         "python3 -c \"import socket; s=socket.socket(socket.AF_UNIX); "
         "s.connect('/run/hud/control.sock')\""),
        ("signal the daemon", "kill -TERM $(pgrep -f 'hud serve' | head -1)"),
        ("ptrace the daemon",
         "python3 -c \"import ctypes,sys,subprocess; "
         "pid=int(subprocess.check_output(['pgrep','-f','hud serve']).split()[0]); "
         "sys.exit(0 if ctypes.CDLL(None,use_errno=True).ptrace(16,pid,0,0)==0 else 1)\""),
        ("read the daemon's environment", "cat /proc/1/environ"),
        ("read the daemon's environment by pid", "cat /proc/$(pgrep -f 'hud serve' | head -1)/environ"),
        ("write to /opt", "touch /opt/owned"),
        ("write to /etc", "touch /etc/owned"),
        ("write to /usr/local/bin", "touch /usr/local/bin/hud-fake"),
        ("sudo", "sudo -n true"),
        ("su", "su -c true root </dev/null"),
    ],
)
def test_agent_cannot_reach_the_grader(ssh_cmd, running: str, containers, what: str, command: str) -> None:
    """Each attempt fails for the agent; afterwards grading still works normally."""
    done = ssh_cmd(command)
    assert done.returncode != 0, f"agent could {what}: {done.stdout}"
    containers.hud(running, "task", "start", "secret")
    assert containers.hud(running, "task", "grade", "secret", "--answer", "the-answer-is-42") == "1.0"


def test_agent_may_write_workspace_and_tmp(ssh_cmd) -> None:
    """The agent's own places are writable."""
    assert ssh_cmd("touch /workspace/a /tmp/b && echo ok").stdout.strip() == "ok"


def test_edit_over_ssh_then_grade(ssh_cmd, running: str, containers) -> None:
    """A task graded on what the agent changed over ssh: right edit 1.0, none 0.0."""
    containers.hud(running, "task", "start", "edit_file")
    assert containers.hud(running, "task", "grade", "edit_file", "--answer", "done") == "0.0"
    containers.hud(running, "task", "start", "edit_file")
    assert ssh_cmd("sed -i 's/x = 1/x = 2/' value.py").returncode == 0
    assert containers.hud(running, "task", "grade", "edit_file", "--answer", "done") == "1.0"


def test_background_processes_end_with_the_task(ssh_cmd, running: str, containers) -> None:
    """A process the agent leaves running is killed when the task is graded."""
    containers.hud(running, "task", "start", "secret")
    ssh_cmd("setsid nohup sleep 1000 >/dev/null 2>&1 & echo started")
    assert "sleep 1000" in docker_cli("exec", running, "ps", "-eo", "args").stdout
    containers.hud(running, "task", "grade", "secret", "--answer", "x")
    assert "sleep 1000" not in docker_cli("exec", running, "ps", "-eo", "args").stdout


async def test_host_library_ssh_and_mcp(running: str) -> None:
    """hud.attach gives an asyncssh connection and an MCP session, both over docker exec."""
    async with await hud.attach(running) as env:
        ssh = await env.ssh()
        result = await ssh.run("whoami", check=True)
        assert result.stdout.strip() == "agent"
        async with env.mcp() as session:
            names = {t.name for t in (await session.list_tools()).tools}
            assert {"add", "explode"} <= names
            assert (await session.call_tool("add", {"a": 2, "b": 40})).content[0].text == "42"
            failed = await session.call_tool("explode", {})
            assert failed.isError and "tool blew up" in failed.content[0].text
            bad = await session.call_tool("add", {"a": "not a number"})
            assert bad.isError
            assert (await session.call_tool("add", {"a": 1, "b": 1})).content[0].text == "2"


def test_tunnel_to_unknown_capability_lists_known(running: str) -> None:
    """`hud connect --tunnel nope` names the capabilities there are."""
    done = docker_cli("exec", "-i", running, "hud", "connect", "--tunnel", "nope", input="")
    assert done.returncode == 1
    assert "unknown capability 'nope'; this environment has: shell, tools" in done.stderr


def test_hud_ssh_runs_a_command(running: str, tmp_path: Path) -> None:
    """`hud ssh CONTAINER CMD` runs CMD as the agent through the tunnel."""
    import sys

    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "hud.cli.main", "ssh", running, "id", "-un"],
                          capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "agent"


def test_agent_processes_are_stopped_before_grading(ssh_cmd, running: str, containers) -> None:
    """Processes the agent left running are gone by the time the grader runs."""
    containers.hud(running, "task", "start", "quiet_at_grading")
    ssh_cmd("setsid nohup sleep 1000 >/dev/null 2>&1 & echo started")
    assert containers.hud(running, "task", "grade", "quiet_at_grading", "--answer", "x") == "1.0"
