"""The bash tool's persistent shell (`ShellSession`) over the real in-process ssh workspace."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import hud
from hud.agents.tools import truncate
from hud.agents.tools.session import _Output
from hud.agents.tools.shell import RemoteShell
from tests.agents.test_tools import ended, workspace_shell
from tests.docker_fixtures import base_layer, containers, template_image  # noqa: F401

pytestmark = pytest.mark.timeout(120)

RESET = "cd and variables were reset"


@pytest.fixture
async def shell(tmp_path: Path) -> AsyncIterator[RemoteShell]:
    """A RemoteShell on a started workspace."""
    async with workspace_shell(tmp_path) as remote:
        yield remote


async def run(shell: RemoteShell, command: str, **args: object) -> str:
    result = await shell.bash({"command": command, **args})
    return result.text


async def test_cd_and_exports_persist_across_calls(shell: RemoteShell) -> None:
    """The issue's scenario: `cd /tmp && export FOO=bar`, then `pwd; echo $FOO`."""
    assert await run(shell, "cd /tmp && export FOO=bar") == "exit code: 0"
    assert await run(shell, "pwd; echo $FOO") == "exit code: 0\n/tmp\nbar\n"


async def test_functions_and_plain_variables_persist(shell: RemoteShell) -> None:
    """A function and an unexported variable defined in one call work in the next."""
    await run(shell, "greet() { echo \"hello $1\"; }; name=world")
    assert await run(shell, "greet $name") == "exit code: 0\nhello world\n"


async def test_a_timeout_interrupts_the_command_and_keeps_the_shell(shell: RemoteShell) -> None:
    """Past its timeout a command gets Ctrl-C; a variable set before survives it."""
    await run(shell, "export FOO=kept; cd /")
    result = await shell.bash({"command": "echo started; sleep 30", "timeout": 1})
    assert result.is_error
    assert result.text.startswith("timed out after 1s\n[interrupted with Ctrl-C (exit code 130); "
                                  "the shell kept its state]\nstarted\n")
    assert await run(shell, "echo $FOO; pwd") == "exit code: 0\nkept\n/\n"


async def test_a_command_ignoring_ctrl_c_forces_a_restart(shell: RemoteShell) -> None:
    """A command that traps SIGINT gets the shell restarted, and the result says so."""
    await run(shell, "export FOO=gone; cd /")
    result = await shell.bash({"command": "echo started; trap '' INT; sleep 30", "timeout": 1})
    assert result.is_error
    assert result.text == (f"timed out after 1s\n[the command ignored Ctrl-C, so the shell was "
                           f"restarted: {RESET} (now in {shell.cwd})]\nstarted\n")
    assert await run(shell, 'pwd; echo "FOO=$FOO"') == f"exit code: 0\n{shell.cwd}\nFOO=\n"


async def test_a_restart_ends_the_old_shell_and_its_jobs(shell: RemoteShell) -> None:
    """`restart` ends the old bash and what it left running in the background."""
    text = await run(shell, "sleep 300 & echo pids $$ $!")
    pids = [int(p) for p in text.split("pids ")[1].split()]
    assert (await shell.bash({"restart": True})).text == (
        f"the shell was restarted: a new bash in {shell.cwd}, cd and variables reset")
    assert [await ended(pid) for pid in pids] == [True, True]


async def test_restart_resets_cwd_and_variables(shell: RemoteShell) -> None:
    """After `restart`, the shell is back in the workspace with no variables of the old one."""
    await run(shell, "cd / && export A=1")
    await shell.bash({"restart": True})
    assert await run(shell, 'pwd; echo "A=$A"') == f"exit code: 0\n{shell.cwd}\nA=\n"


async def test_restart_with_a_command_runs_it_in_the_new_shell(shell: RemoteShell) -> None:
    """`restart` with a command restarts first, says so, then runs the command."""
    await run(shell, "cd /")
    assert await run(shell, "pwd", restart=True) == (
        f"exit code: 0\n[the shell was restarted: a new bash in {shell.cwd}, cd and variables "
        f"reset]\n{shell.cwd}\n")


async def test_restart_must_be_a_boolean(shell: RemoteShell) -> None:
    """A `restart` that is not true or false is an error result."""
    result = await shell.bash({"command": "pwd", "restart": "yes"})
    assert (result.text, result.is_error) == ("'restart' must be true or false, got 'yes'", True)


async def test_exit_ends_the_shell_and_the_next_call_starts_a_new_one(shell: RemoteShell) -> None:
    """`exit 3` reports 3 and the shell's end; the next call runs in a new shell and says so."""
    assert await run(shell, "cd /; exit 3") == (
        "exit code: 3\n[the shell exited; the next command starts a new one (cd and variables "
        "reset)]\nexit\n")
    assert await run(shell, "pwd") == (
        f"exit code: 0\n[the shell had exited; this command ran in a new shell in {shell.cwd} "
        f"({RESET})]\n{shell.cwd}\n")


async def test_a_syntax_error_is_reported_and_the_shell_keeps_working(shell: RemoteShell) -> None:
    """An unclosed quote is bash's error (status 2), not a shell waiting for more input."""
    await run(shell, "export K=v")
    text = await run(shell, 'echo "unclosed')
    assert text.startswith("exit code: 2\n")
    assert "unexpected EOF while looking for matching" in text
    assert await run(shell, "echo $K") == "exit code: 0\nv\n"


async def test_huge_output_comes_back_cut_to_head_and_tail(shell: RemoteShell) -> None:
    """20 MB of output comes back exactly as `truncate` cuts it, counting what was cut."""
    text = await run(shell, "yes | head -c 20000000")
    assert text == "exit code: 0\n" + truncate("y\n" * 10_000_000)


def test_output_kept_in_memory_is_bounded() -> None:
    """However much is added, the reader keeps at most `limit` characters."""
    output = _Output(limit=1000)
    for n in range(10_000):
        output.add(f"{n:07}\n")
    assert len(output.head) + len(output.tail) <= 1000
    assert output.text() == truncate("".join(f"{n:07}\n" for n in range(10_000)), 1000)


async def test_a_command_reading_stdin_gets_end_of_file(shell: RemoteShell) -> None:
    """`cat` reads /dev/null and returns at once instead of waiting for input."""
    result = await shell.bash({"command": "cat; echo done", "timeout": 10})
    assert (result.text, result.is_error) == ("exit code: 0\ndone\n", False)


async def test_concurrent_calls_run_one_after_the_other(shell: RemoteShell) -> None:
    """Two calls at once each get exactly their own output."""
    first, second = await asyncio.gather(run(shell, "echo one; sleep 0.3; echo two"),
                                         run(shell, "echo three"))
    assert (first, second) == ("exit code: 0\none\ntwo\n", "exit code: 0\nthree\n")


async def test_output_cannot_fake_the_end_of_a_command(shell: RemoteShell) -> None:
    """A line shaped like the end marker, with another nonce, is plain output."""
    await run(shell, "true")
    seq = shell.session._seq + 1
    fake = f"__hud_{'0' * 16}_{seq} 0"
    assert await run(shell, f"printf '\\n{fake}\\n'; sleep 0.2; echo after") == (
        f"exit code: 0\n\n{fake}\nafter\n")


async def test_redirecting_the_shell_output_does_not_hang_it(shell: RemoteShell) -> None:
    """After `exec >/dev/null` the shell still ends each command (its own output is gone)."""
    assert await run(shell, "exec >/dev/null") == "exit code: 0"
    result = await shell.bash({"command": "echo hidden; false", "timeout": 10})
    assert (result.text, result.is_error) == ("exit code: 1", False)


@pytest.mark.docker
async def test_in_a_container_the_shell_persists_and_survives_ctrl_c(
        template_image, containers) -> None:
    """As `agent` in a real container (over the mux): state persists across a Ctrl-C, and a
    command that ignores Ctrl-C is ended with the shell it ran in."""
    _, tag = template_image("coding")
    name = containers.run(tag, options=("--network", "none"))
    containers.wait_healthy(name)
    async with await hud.attach(name) as env:
        shell = RemoteShell(await env.ssh(), "/workspace")
        await run(shell, "cd /tmp && export FOO=bar")
        assert await run(shell, "pwd; echo $FOO; id -un") == "exit code: 0\n/tmp\nbar\nagent\n"
        assert (await shell.bash({"command": "sleep 30", "timeout": 1})).is_error
        assert await run(shell, "pwd; echo $FOO") == "exit code: 0\n/tmp\nbar\n"
        trapped = await shell.bash({"command": "trap '' INT; sleep 31", "timeout": 1})
        assert "the shell was restarted" in trapped.text
        assert await run(shell, 'pwd; echo "FOO=$FOO"') == "exit code: 0\n/workspace\nFOO=\n"
        for _ in range(100):  # the daemon hangs the old session up, then kills it
            left = (await asyncio.to_thread(containers.exec, name, "pgrep", "-af", "sleep 31")).stdout
            if not left:
                break
            await asyncio.sleep(0.1)
    assert left == ""


async def test_a_shell_that_cannot_start_is_an_error_result(shell: RemoteShell) -> None:
    """A workspace directory that is missing is named in an error result, not raised."""
    broken = RemoteShell(shell.conn, "/nonexistent/ws")
    result = await broken.bash({"command": "pwd"})
    assert result.is_error
    assert "could not cd to '/nonexistent/ws'" in result.text
    assert await run(broken, "pwd") == result.text  # tried again, with the same answer
