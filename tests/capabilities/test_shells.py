"""ssh sessions (hud.capabilities.shells) through the real OpenSSH clients: exec, pty, shell, scp, sftp."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import time
from pathlib import Path

from hud.capabilities.users import resolve_user
from tests.sshkit import TIMEOUT, Client, Terminal, alive, until


async def test_exec_runs_in_the_workspace_and_returns_the_exit_code(client: Client) -> None:
    """`ssh host CMD` runs in the workspace root and passes the exit status back."""
    done = await client.run(client.ssh("pwd; echo err >&2; exit 3"))
    assert (done.returncode, done.stdout.strip(), done.stderr.strip()) == (3, client.ws.root, "err")


async def test_stdin_reaches_the_command(client: Client) -> None:
    """Data piped into ssh is the remote command's stdin."""
    done = await client.run(client.ssh("wc -c"), input=b"x" * 100_000)
    assert done.stdout.strip() == "100000"


async def test_pty_session_gets_a_terminal_and_window_changes(client: Client) -> None:
    """`ssh -tt` gets a real pty of the client's size, and a resize reaches the program."""
    term = Terminal(40, 100)
    script = "trap 'stty size' WINCH; tty; stty size; while :; do sleep 0.05; done"
    proc = await asyncio.create_subprocess_exec(*client.ssh("-tt", script), stdin=term.slave,
                                                stdout=term.slave, stderr=term.slave)
    try:
        await term.expect(rb"/dev/pts/\d+")
        await term.expect(rb"40 100")
        term.resize(50, 132)
        proc.send_signal(signal.SIGWINCH)
        await term.expect(rb"50 132")
    finally:
        proc.kill()
        await proc.wait()
        os.close(term.master)
        os.close(term.slave)


async def test_interactive_shell_runs_commands_and_exits(client: Client) -> None:
    """An interactive login shell over a pty evaluates input and exits cleanly."""
    term = Terminal(24, 80)
    proc = await asyncio.create_subprocess_exec(*client.ssh("-tt"), stdin=term.slave,
                                                stdout=term.slave, stderr=term.slave)
    try:
        term.write(b"echo $((6*7))HUD\n")
        await term.expect(rb"42HUD")
        term.write(b"exit 0\n")
        assert await asyncio.wait_for(proc.wait(), TIMEOUT) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        os.close(term.master)
        os.close(term.slave)


async def test_scp_copies_files_both_ways(client: Client, tmp_path: Path) -> None:
    """scp (SFTP mode) uploads into the workspace and downloads from it."""
    local = tmp_path / "up.txt"
    local.write_text("hello workspace\n")
    up = await client.run(client.scp(str(local), f"{client.user}@127.0.0.1:up.txt"))
    assert up.returncode == 0, up.stderr
    assert Path(client.ws.root, "up.txt").read_text() == "hello workspace\n"
    down = await client.run(client.scp(f"{client.user}@127.0.0.1:up.txt", str(tmp_path / "down.txt")))
    assert down.returncode == 0 and (tmp_path / "down.txt").read_text() == "hello workspace\n"


async def test_legacy_scp_protocol_works(client: Client, tmp_path: Path) -> None:
    """`scp -O` (the old rcp-style protocol, an exec of `scp -t`) works too."""
    local = tmp_path / "legacy.txt"
    local.write_text("legacy\n")
    done = await client.run(client.scp("-O", str(local), f"{client.user}@127.0.0.1:legacy.txt"))
    assert done.returncode == 0, done.stderr
    assert Path(client.ws.root, "legacy.txt").read_text() == "legacy\n"


async def test_sftp_batch_lists_and_fetches(client: Client, tmp_path: Path) -> None:
    """An sftp batch session starts in the workspace, lists it and fetches a file."""
    Path(client.ws.root, "data.csv").write_text("a,b\n")
    batch = tmp_path / "batch"
    batch.write_text(f"pwd\nls\nget data.csv {tmp_path / 'got.csv'}\n")
    done = await client.run(client.sftp("-b", str(batch)))
    assert done.returncode == 0, done.stderr
    assert client.ws.root in done.stdout and "data.csv" in done.stdout
    assert (tmp_path / "got.csv").read_text() == "a,b\n"


async def test_vanished_client_leaves_no_session_process(client: Client) -> None:
    """When the ssh client dies mid-command, the command it was running is hung up."""
    proc = await asyncio.create_subprocess_exec(*client.ssh("echo $$; exec sleep 1000"),
                                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    pid = int(await asyncio.wait_for(proc.stdout.readline(), TIMEOUT))
    assert alive(pid)
    proc.kill()
    await asyncio.wait_for(proc.communicate(), TIMEOUT)
    assert await until(lambda: not alive(pid))


async def test_flooding_stdout_blocks_the_writer_not_the_daemons_memory(client: Client) -> None:
    """An agent writing endlessly to a client that does not read is blocked, not buffered."""
    def rss() -> int:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    before = rss()
    proc = await asyncio.create_subprocess_exec(*client.ssh("echo $$; exec cat /dev/zero"),
                                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert proc.stdout is not None
        pid = int(await asyncio.wait_for(proc.stdout.readline(), TIMEOUT))

        def io() -> int:
            found = re.search(r"wchar: (\d+)", Path(f"/proc/{pid}/io").read_text())
            assert found is not None
            return int(found[1])

        last = -1
        deadline = time.monotonic() + TIMEOUT
        while (written := io()) != last:  # until cat stays blocked in write(2) for 0.5 s
            assert time.monotonic() < deadline, "cat never blocked"
            last = written
            await asyncio.sleep(0.5)
        assert written < 64 * 2**20
        assert rss() - before < 64 * 2**20
    finally:
        proc.kill()
        await asyncio.wait_for(proc.communicate(), TIMEOUT)  # 3.11 waits for the pipes' EOF


async def test_unknown_subsystem_is_refused(client: Client) -> None:
    """A subsystem other than sftp is refused; the server keeps serving."""
    done = await client.run(client.ssh("-s", "netconf"))
    assert done.returncode != 0
    assert (await client.run(client.ssh("echo still"))).stdout.strip() == "still"


async def test_sessions_run_as_the_workspace_user(user_client: Client) -> None:
    """Sessions run with the user's uid, HOME and login name, not root's."""
    done = await user_client.run(user_client.ssh("id -un; id -u; echo $HOME"))
    user = resolve_user(user_client.user)
    assert done.stdout.split() == [user.name, str(user.uid), user.home]


async def test_sftp_permission_checks_are_the_kernels(user_client: Client, tmp_path: Path) -> None:
    """Uploading into a root-owned directory fails for the user."""
    local = tmp_path / "x.txt"
    local.write_text("x")
    done = await user_client.run(user_client.scp(str(local), f"{user_client.user}@127.0.0.1:/root/x.txt"))
    assert done.returncode != 0 and not Path("/root/x.txt").exists()


async def test_pty_belongs_to_the_user(user_client: Client) -> None:
    """The session's terminal device is owned by the user (like sshd does)."""
    done = await user_client.run(user_client.ssh("-tt", "stat -c %U $(tty)"))
    assert done.stdout.strip() == user_client.user
