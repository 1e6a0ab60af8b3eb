"""The ssh workspace capability: binding, auth, lifecycle, ending the agent's work, run()."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
from pathlib import Path

import asyncssh
import pytest

from hud.capabilities.ssh import Workspace
from hud.errors import ConfigError
from tests.bridge import bridge_argv
from tests.sshkit import TIMEOUT, Client, alive, started, until


async def test_binding_carries_url_keys_user_and_cwd(client: Client) -> None:
    """The ssh/2 binding has a loopback tcp url, an ed25519 host key, the client key and cwd."""
    binding = client.ws._binding
    assert binding is not None and binding.protocol == "ssh/2" and binding.name == "shell"
    assert re.fullmatch(r"tcp://127\.0\.0\.1:\d+", binding.url)
    assert binding.params["host_pubkey"].startswith("ssh-ed25519 ")
    assert "BEGIN OPENSSH PRIVATE KEY" in binding.params["client_key"]
    assert binding.params["cwd"] == client.ws.root and binding.params["user"] == client.user


async def test_wrong_login_name_is_refused(client: Client) -> None:
    """The right key with another login name is refused."""
    done = await client.run(client.ssh("true", user="someone-else"))
    assert done.returncode == 255 and "Permission denied" in done.stderr


async def test_another_key_is_refused(client: Client, tmp_path: Path) -> None:
    """A key other than the binding's client key is refused."""
    other = tmp_path / "other"
    other.write_bytes(asyncssh.generate_private_key("ssh-ed25519").export_private_key("openssh"))
    other.chmod(0o600)
    done = await client.run([*client.ssh("true")[:1], "-i", str(other), *client.ssh("true")[3:]])
    assert done.returncode == 255 and "Permission denied" in done.stderr


async def test_environment_does_not_leak_the_daemons(client: Client) -> None:
    """A HUD_TOKEN in the daemon's environment is not visible to the agent."""
    done = await client.run(client.ssh("env"))
    assert "HUD_TOKEN" not in done.stdout and "daemon-secret-token" not in done.stdout
    assert "HOME=" in done.stdout and "LANG=C.UTF-8" in done.stdout


async def test_openssh_works_through_a_proxy_command(client: Client) -> None:
    """`ssh -o ProxyCommand=...` (the shape of the docker exec tunnel) reaches the server."""
    proxy = " ".join(f"'{arg}'" for arg in bridge_argv(client.port))
    done = await client.run(client.ssh("-o", f"ProxyCommand={proxy}", "echo tunneled"))
    assert (done.returncode, done.stdout.strip()) == (0, "tunneled"), done.stderr


async def test_asyncssh_client_works_through_proxy_command(client: Client) -> None:
    """asyncssh's own proxy_command option is enough for the host library's ssh client."""
    binding = client.ws._binding
    assert binding is not None
    known = asyncssh.import_known_hosts(f"run1 {binding.params['host_pubkey']}\n")
    key = asyncssh.import_private_key(binding.params["client_key"])
    async with asyncssh.connect("run1", username=binding.params["user"], client_keys=[key],
                                known_hosts=known, proxy_command=bridge_argv(client.port)) as conn:
        result = await asyncio.wait_for(conn.run("echo via-asyncssh; exit 5"), TIMEOUT)
    assert (result.exit_status, result.stdout) == (5, "via-asyncssh\n")


async def test_task_ended_kills_background_processes(client: Client) -> None:
    """A process the agent left running in the background is killed by task_ended()."""
    done = await client.run(client.ssh("nohup sleep 1000 >/dev/null 2>&1 & echo $!"))
    pid = int(done.stdout)
    assert alive(pid)
    await client.ws.task_ended()
    assert await until(lambda: not alive(pid))


async def test_keepalive_drops_a_frozen_client_and_its_session(tmp_path: Path) -> None:
    """A client that stops answering keep-alives is dropped and its command hung up."""
    (tmp_path / "ws").mkdir()
    (tmp_path / "keys").mkdir()
    ws, cli = await started(tmp_path / "ws", tmp_path / "keys", keepalive_interval=0.3)
    proc = await asyncio.create_subprocess_exec(*cli.ssh("echo $$; exec sleep 1000"),
                                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert proc.stdout is not None
        pid = int(await asyncio.wait_for(proc.stdout.readline(), TIMEOUT))
        proc.send_signal(signal.SIGSTOP)
        assert await until(lambda: not alive(pid), timeout=TIMEOUT)
    finally:
        proc.send_signal(signal.SIGCONT)
        proc.kill()
        await asyncio.wait_for(proc.communicate(), TIMEOUT)
        await ws.stop()


async def test_restart_generates_new_keys_and_serves(client: Client, tmp_path: Path) -> None:
    """stop() then start() (what the daemon does when unhealthy) serves with fresh keys."""
    old = client.ws._binding
    await client.ws.stop()
    new = await client.ws.start()
    assert old is not None and new.params["host_pubkey"] != old.params["host_pubkey"]
    keys = tmp_path / "keys2"
    keys.mkdir()
    fresh = Client(client.ws, keys)
    assert (await fresh.run(fresh.ssh("echo again"))).stdout.strip() == "again"


async def test_stop_is_idempotent_and_ends_health(client: Client) -> None:
    """healthy() is true while serving; stop() twice is fine and makes it false."""
    assert await client.ws.healthy()
    await client.ws.stop()
    await client.ws.stop()
    assert not await client.ws.healthy()


async def test_missing_root_is_a_config_error(tmp_path: Path) -> None:
    """A workspace root that does not exist fails start() with the fix in the message."""
    with pytest.raises(ConfigError, match=r"workspace root .*nope.* is not a directory"):
        await Workspace(str(tmp_path / "nope"), user=None).start()


async def test_run_as_root_reports_exit_code_and_output(client: Client) -> None:
    """run(user="root") runs as uid 0 in the workspace and returns code and output."""
    done = await client.ws.run("id -u; pwd; exit 4", user="root")
    assert (done.code, done.stdout.split()) == (4, ["0", client.ws.root])


async def test_run_feeds_input_and_takes_argv(client: Client) -> None:
    """run() accepts an argv list and feeds `input` to stdin."""
    done = await client.ws.run(["cat"], input="from the grader")
    assert done.ok and done.stdout == "from the grader"


async def test_run_timeout_kills_the_command_and_says_so(client: Client) -> None:
    """A command past its timeout is killed with its children; the result says so."""
    done = await client.ws.run("sleep 300 & echo $!; sleep 300; wait", timeout=1)
    assert done.code == 124 and "ran past 1s and was killed" in done.stderr
    assert await until(lambda: not alive(int(done.stdout)))


async def test_task_ended_kills_every_process_of_the_user(user_client: Client) -> None:
    """task_ended() also ends a process that escaped the session with setsid."""
    done = await user_client.run(user_client.ssh("setsid sleep 1000 >/dev/null 2>&1 < /dev/null & echo $!"))
    pid = int(done.stdout)
    await until(lambda: alive(pid))
    await user_client.ws.task_ended()
    assert await until(lambda: not alive(pid))


async def test_run_as_agent_runs_as_the_user(user_client: Client) -> None:
    """run() without user= runs as the workspace user."""
    done = await user_client.ws.run("id -un")
    assert done.stdout.strip() == user_client.user


def _session_argv(client: Client, kind: str) -> tuple[list[str], bytes | None]:
    """A new exec, interactive shell (pty) or sftp session, and what to feed it."""
    if kind == "exec":
        return client.ssh("echo ran"), None
    if kind == "shell":
        host = f"{client.user}@127.0.0.1"
        return ["ssh", *client.options, "-tt", "-p", client.port, host], b"echo ran; exit\n"
    return client.sftp("-b", "-"), b"ls\n"


@pytest.mark.parametrize("kind", ["exec", "shell", "sftp"])
async def test_grading_refuses_new_sessions(client: Client, kind: str) -> None:
    """After before_grade, a new exec, shell or sftp session is refused with the reason."""
    await client.ws.before_grade()
    argv, feed = _session_argv(client, kind)
    done = await client.run(argv, input=feed)
    assert done.returncode != 0 and "grading in progress" in done.stderr, done.stderr
    assert "ran" not in done.stdout


@pytest.mark.parametrize("kind", ["exec", "shell", "sftp"])
async def test_sessions_work_again_after_the_task_ends(client: Client, kind: str) -> None:
    """After task_ended, the sessions refused during grading work again."""
    await client.ws.before_grade()
    await client.ws.task_ended()
    argv, feed = _session_argv(client, kind)
    done = await client.run(argv, input=feed)
    assert done.returncode == 0, done.stderr


async def test_grading_refuses_channels_on_an_open_connection(client: Client) -> None:
    """On a connection opened before grading, nothing starts until before_start."""
    binding = client.ws._binding
    assert binding is not None
    known = asyncssh.import_known_hosts(f"[127.0.0.1]:{client.port} {binding.params['host_pubkey']}\n")
    key = asyncssh.import_private_key(binding.params["client_key"])
    async with asyncssh.connect("127.0.0.1", int(client.port), username=client.user,
                                client_keys=[key], known_hosts=known) as conn:
        await client.ws.before_grade()
        late = await asyncio.wait_for(conn.run("echo late"), TIMEOUT)
        assert (late.exit_status, late.stdout) == (1, "")
        assert "grading in progress" in str(late.stderr)
        await client.ws.before_start()
        result = await asyncio.wait_for(conn.run("echo next task"), TIMEOUT)
    assert result.stdout == "next task\n"


async def test_run_marks_a_flood_truncated_and_kills_it(client: Client) -> None:
    """run() keeps `limit` bytes of a 1 GiB flood, kills the command and says so."""
    done = await client.ws.run("echo $$ >&2; exec head -c 1G /dev/zero", limit=1 << 20)
    assert done.truncated and len(done.stdout) == 1 << 20
    assert "wrote more than 1048576 bytes and was killed" in done.stderr
    assert await until(lambda: not alive(int(done.stderr.split()[0])))


async def test_agent_sessions_have_the_highest_oom_score(user_client: Client) -> None:
    """The agent's ssh sessions run with oom_score_adj 1000: the OOM killer takes them first."""
    done = await user_client.run(user_client.ssh("cat /proc/self/oom_score_adj"))
    assert done.stdout.strip() == "1000", done.stderr


async def test_a_restart_while_grading_keeps_refusing(client: Client, tmp_path: Path) -> None:
    """stop() and start() during grading (the watchdog's restart) do not lift the lock."""
    await client.ws.before_grade()
    await client.ws.stop()
    await client.ws.start()
    keys = tmp_path / "keys2"
    keys.mkdir()
    fresh = Client(client.ws, keys)
    done = await fresh.run(fresh.ssh("echo ran"))
    assert done.returncode == 1 and "grading in progress" in done.stderr
