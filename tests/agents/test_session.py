"""The bash tool's persistent shell (`ShellSession`) over the real in-process ssh workspace."""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import hud
from hud.agents.tools import truncate
from hud.agents.tools.bashlines import command_line
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
    """`restart` ends the old bash and what it left running in the background, even a job
    in its own process group that ignores SIGHUP."""
    text = await run(shell, "(trap '' HUP; exec sleep 300) & echo pids $$ $!")
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


async def test_a_broken_path_leaves_builtins_running_with_their_status(shell: RemoteShell) -> None:
    """After `export PATH=/nonexistent`, a builtin-only command runs and reports its status."""
    await run(shell, "export PATH=/nonexistent")
    assert await run(shell, "echo ran; false") == "exit code: 1\nran\n"
    assert await run(shell, "PATH=/usr/bin:/bin; ls -d /") == "exit code: 0\n/\n"


async def test_functions_and_aliases_named_like_builtins_do_not_break_the_session(
        shell: RemoteShell) -> None:
    """Functions `printf`, `eval`, `set`, `stty`, `exec` and aliases `eval`, `{`, `case`:
    the model's commands still run and end, and its functions still work."""
    await run(shell, "printf() { echo FN; }; eval() { echo EV; }; set() { echo SET; }; "
                     "stty() { echo STTY; }; exec() { echo EX; }; "
                     "alias eval='echo AL' '{'=echo case=echo")
    assert await run(shell, "echo ok; printf x; (exit 4)") == "exit code: 4\nok\nFN\n"


async def test_a_function_named_builtin_does_not_break_the_session(shell: RemoteShell) -> None:
    """A function named `builtin` is removed at the prompt; the next command runs normally."""
    await run(shell, "builtin() { echo FN; }")
    assert await run(shell, "type -t builtin; echo $((6 * 7))") == "exit code: 0\nbuiltin\n42\n"


async def test_reset_finishes_at_once_and_keeps_the_shell(shell: RemoteShell) -> None:
    """`reset` is an ordinary, finished command: exit 0, no timeout, variables kept."""
    await run(shell, "export KEPT=yes")
    result = await shell.bash({"command": "reset >/dev/null 2>&1; echo done", "timeout": 3})
    assert (result.is_error, result.text) == (False, "exit code: 0\ndone\n")
    assert await run(shell, "echo $KEPT") == "exit code: 0\nyes\n"


async def test_a_terminal_left_in_onlcr_mode_gives_plain_newlines(shell: RemoteShell) -> None:
    """After `stty sane </dev/tty` (onlcr on) the output has the command's own line ends:
    the terminal's added carriage returns are gone, a printed one stays."""
    result = await shell.bash({"command": "stty sane </dev/tty; printf 'a\\r\\nb\\n'",
                               "timeout": 3})
    assert (result.is_error, result.text) == (False, "exit code: 0\na\r\nb\n")
    assert await run(shell, "printf 'c\\r\\nd\\n'") == "exit code: 0\nc\r\nd\n"


async def test_echo_turned_on_does_not_show_the_next_command_lines(shell: RemoteShell) -> None:
    """`stty -F /dev/tty echo` (and a raw terminal) are undone at the prompt: later calls
    show only their own output, and Ctrl-C still interrupts."""
    await run(shell, "stty -F /dev/tty echo; stty raw </dev/tty")
    assert await run(shell, "echo next") == "exit code: 0\nnext\n"
    result = await shell.bash({"command": "sleep 30", "timeout": 0.5})
    assert "interrupted with Ctrl-C (exit code 130)" in result.text


async def test_set_x_traces_only_the_models_commands(shell: RemoteShell) -> None:
    """With `set -x` on, the output traces the command, not the harness's lines or hook."""
    await run(shell, "set -x")
    text = await run(shell, "echo traced")
    assert (text, "__hud" in text) == ("exit code: 0\n++ echo traced\ntraced\n", False)


async def test_a_background_terminal_reader_does_not_eat_the_next_command(
        shell: RemoteShell) -> None:
    """A background job reading /dev/tty is stopped (job control), and the next command runs."""
    text = await run(shell, '(read -r line </dev/tty; echo "stolen: $line") & sleep 1')
    assert "Stopped" in text
    result = await shell.bash({"command": "echo next", "timeout": 3})
    assert (result.is_error, result.text) == (False, "exit code: 0\nnext\n")


async def test_ctrl_c_reaches_only_the_foreground_command(shell: RemoteShell) -> None:
    """A timed-out command gets Ctrl-C; a background job started before it keeps running."""
    pid = (await run(shell, "sleep 300 & echo $!")).split()[-1]
    await shell.bash({"command": "sleep 30", "timeout": 0.5})
    assert await run(shell, f"kill -0 {pid} && echo alive") == "exit code: 0\nalive\n"


async def test_a_ctrl_c_crossing_the_end_of_a_command_leaves_the_next_call_intact(
        shell: RemoteShell) -> None:
    """Commands finishing right at their timeout: every following call is exactly its own."""
    for i in range(50):
        await shell.bash({"command": f"sleep {0.2 + (i % 10) * 0.002:.3f}", "timeout": 0.2085})
        after = await shell.bash({"command": f"echo check{i}", "timeout": 3})
        assert after.text == f"exit code: 0\ncheck{i}\n", i


@pytest.mark.parametrize("timeout", [float("nan"), float("inf"), True, "5", -1])
async def test_a_timeout_that_is_not_a_finite_positive_number_is_refused(
        shell: RemoteShell, timeout: object) -> None:
    """`timeout` NaN, inf, a boolean, a string or a negative number is an error result."""
    result = await shell.bash({"command": "echo never", "timeout": timeout})
    assert result.is_error and "'timeout' must be a positive number" in result.text


async def test_a_lowered_file_limit_gets_the_next_command_a_new_shell(shell: RemoteShell) -> None:
    """After `ulimit -n 3` the shell cannot run a command; the next one runs in a new shell,
    and the result says why."""
    assert await run(shell, "ulimit -n 3; echo limited") == "exit code: 0\nlimited\n"
    text = await run(shell, "echo ran")
    assert text.startswith("exit code: 0\n[the shell could no longer start a command")
    assert text.endswith(f"ran in the new shell in {shell.cwd} ({RESET})]\nran\n")


async def test_a_2_mb_command_arrives_intact(shell: RemoteShell) -> None:
    """A 2 MB heredoc with quotes, backslashes, `!`, tabs, control characters and non-ASCII
    text reaches the command byte for byte."""
    body = "".join(f"{n} 'q' \"d\" \\ $x !! \t\x01\x7f é 日本 \u2028\n" for n in range(50_000))
    text = await run(shell, f"cat <<'EOF' | md5sum\n{body}EOF", timeout=60)
    assert text == f"exit code: 0\n{hashlib.md5(body.encode()).hexdigest()}  -\n"


def test_every_typed_line_fits_a_terminal_line() -> None:
    """A long command of escapes and 1-4 byte characters is typed in lines of at most
    4095 bytes (the terminal's canonical line), none cut inside an escape."""
    command = "".join(f"{n}\\\x01é日😀'" for n in range(20_000))
    typed = command_line(7, command)
    assert max(len(line.encode()) for line in typed.split("\n")) < 4095
    assert not re.search(r"\\(x[0-9a-f]?)?'\\\n", typed)


async def test_exit_ends_the_shells_background_jobs(shell: RemoteShell) -> None:
    """After `exit`, a background job of the shell (even one ignoring SIGHUP) is gone."""
    pid = int((await run(shell, "(trap '' HUP; exec sleep 300) & echo $!")).split()[-1])
    await run(shell, "exit")
    assert await ended(pid)


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


@pytest.mark.docker
async def test_in_a_container_commands_run_past_a_broken_path_and_a_terminal_reader(
        template_image, containers) -> None:
    """As `agent` in a real container's bash: a stopped background /dev/tty reader and
    `PATH=/nonexistent` leave the next commands running with their own output and status."""
    _, tag = template_image("coding")
    name = containers.run(tag, options=("--network", "none"))
    containers.wait_healthy(name)
    async with await hud.attach(name) as env:
        shell = RemoteShell(await env.ssh(), "/workspace")
        assert "Stopped" in await run(shell, "(read -r l </dev/tty) & sleep 1")
        await run(shell, "export PATH=/nonexistent")
        assert await run(shell, "echo ran; false") == "exit code: 1\nran\n"
        await shell.session.close()


async def test_a_shell_that_cannot_start_is_an_error_result(shell: RemoteShell) -> None:
    """A workspace directory that is missing is named in an error result, not raised."""
    broken = RemoteShell(shell.conn, "/nonexistent/ws")
    result = await broken.bash({"command": "pwd"})
    assert result.is_error
    assert "could not cd to '/nonexistent/ws'" in result.text
    assert await run(broken, "pwd") == result.text  # tried again, with the same answer
