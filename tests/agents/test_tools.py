"""The ssh tools (bash, edit) over the real ssh workspace, alone and inside rollouts.

The workspace capability runs in-process as the test's own user (user=None); the tools
talk to it with asyncssh, through the rollout's tunnel when driven by a provider harness.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from hud import Environment
from hud.agents.tools.shell import BASH_SCHEMA, RemoteShell, ssh_tools
from hud.capabilities.ssh import Workspace
from hud.eval import Taskset
from tests.agents.providers import WIRES, FakeAPI, Wire, serve

pytestmark = pytest.mark.timeout(60)

BUGGY = "def add(a, b):\n    return a - b\n"


@contextlib.asynccontextmanager
async def workspace_shell(tmp_path: Path) -> AsyncIterator[RemoteShell]:
    """A RemoteShell on an asyncssh connection to a started workspace in tmp_path/ws."""
    root = tmp_path / "ws"
    root.mkdir()
    ws = Workspace(str(root), user=None)
    binding = await ws.start()
    params = binding.params
    conn = await asyncssh.connect(
        "127.0.0.1", int(binding.url.rsplit(":", 1)[1]), username=params["user"],
        client_keys=[asyncssh.import_private_key(params["client_key"])],
        known_hosts=([asyncssh.import_public_key(params["host_pubkey"])], [], []),
        agent_path=None, config=None)
    try:
        yield RemoteShell(conn, params["cwd"])
    finally:
        conn.close()
        await asyncio.wait_for(conn.wait_closed(), 10)
        await ws.stop()


@pytest.fixture
async def shell(tmp_path: Path) -> AsyncIterator[RemoteShell]:
    """A RemoteShell on a started workspace (see `workspace_shell`)."""
    async with workspace_shell(tmp_path) as remote:
        yield remote


async def test_bash_runs_in_the_workspace(shell: RemoteShell) -> None:
    """bash runs in the binding's cwd and reports the exit code and the output."""
    result = await shell.bash({"command": "pwd"})
    assert result.text == f"exit code: 0\n{shell.cwd}\n"
    assert not result.is_error


async def test_bash_reports_failures_with_stderr(shell: RemoteShell) -> None:
    """A failing command shows its exit code and stderr (one stream with stdout, as on a tty)."""
    result = await shell.bash({"command": "echo out; echo oops >&2; (exit 3)"})
    assert result.text == "exit code: 3\nout\noops\n"


async def test_bash_timeout_interrupts_and_says_so(shell: RemoteShell) -> None:
    """A command past its timeout gets Ctrl-C; the partial output comes back as an error."""
    result = await shell.bash({"command": "echo started; sleep 30", "timeout": 1})
    assert result.is_error
    assert result.text.startswith("timed out after 1s\n[interrupted with Ctrl-C (exit code "
                                  "130); the shell kept its state]\nstarted\n")


async def test_bash_without_a_command_is_an_error(shell: RemoteShell) -> None:
    """A call without a command is an error result, not an exception."""
    result = await shell.bash({})
    assert (result.text, result.is_error) == ("bash needs a non-empty 'command' string", True)


async def test_edit_creates_files_in_new_directories(shell: RemoteShell) -> None:
    """create writes the file, making parent directories."""
    result = await shell.edit({"command": "create", "path": "pkg/mod.py", "file_text": "x = 1\n"})
    assert not result.is_error, result.text
    assert (Path(shell.cwd) / "pkg" / "mod.py").read_text() == "x = 1\n"


async def test_edit_view_numbers_lines_in_range(shell: RemoteShell) -> None:
    """view shows numbered lines, limited by view_range."""
    (Path(shell.cwd) / "f.txt").write_text("a\nb\nc\n")
    result = await shell.edit({"command": "view", "path": "f.txt", "view_range": [2, -1]})
    assert result.text == "     2\tb\n     3\tc"


async def test_edit_view_lists_a_directory(shell: RemoteShell) -> None:
    """view of a directory lists its files."""
    (Path(shell.cwd) / "f.txt").write_text("")
    result = await shell.edit({"command": "view", "path": "."})
    assert "f.txt" in result.text


async def test_str_replace_edits_a_unique_string(shell: RemoteShell) -> None:
    """str_replace changes the one occurrence and says where."""
    (Path(shell.cwd) / "calc.py").write_text(BUGGY)
    result = await shell.edit({"command": "str_replace", "path": "calc.py",
                               "old_str": "a - b", "new_str": "a + b"})
    assert result.text == f"edited {shell.cwd}/calc.py at line 2"
    assert (Path(shell.cwd) / "calc.py").read_text() == BUGGY.replace("-", "+")


async def test_str_replace_refuses_an_ambiguous_string(shell: RemoteShell) -> None:
    """An old_str that occurs twice is an error and the file is left alone."""
    (Path(shell.cwd) / "f.txt").write_text("x x")
    result = await shell.edit({"command": "str_replace", "path": "f.txt", "old_str": "x", "new_str": "y"})
    assert result.is_error
    assert "occurs 2 times" in result.text
    assert (Path(shell.cwd) / "f.txt").read_text() == "x x"


async def test_insert_adds_lines_after_a_line(shell: RemoteShell) -> None:
    """insert puts new_str after insert_line (0: at the top)."""
    (Path(shell.cwd) / "f.txt").write_text("a\nc")
    await shell.edit({"command": "insert", "path": "f.txt", "insert_line": 1, "new_str": "b"})
    await shell.edit({"command": "insert", "path": "f.txt", "insert_line": 0, "new_str": "top"})
    assert (Path(shell.cwd) / "f.txt").read_text() == "top\na\nb\nc"


async def test_edit_of_a_missing_file_is_an_error(shell: RemoteShell) -> None:
    """Reading a file that does not exist gives cat's message as an error result."""
    result = await shell.edit({"command": "view", "path": "nope.txt"})
    assert result.is_error
    assert "No such file" in result.text


async def test_claude_gets_its_own_bash_and_text_editor(api: FakeAPI, fix_env: Environment) -> None:
    """Claude is offered Anthropic's bash and text-editor tool types for bash and edit."""
    claude = WIRES[0]
    api.script = [(200, claude.answer("5"))]
    await Taskset([fix_env.templates["fix_add"]()], env=fix_env).run(claude.agent(api), runtime="local")
    assert api.requests[0]["tools"] == [
        {"type": "bash_20250124", "name": "bash"},
        {"type": "text_editor_20250728", "name": "str_replace_based_edit_tool"}]


def test_ssh_tools_are_bash_and_edit() -> None:
    """An ssh binding gives exactly the bash and edit tools."""
    assert [t.name for t in ssh_tools(object(), "/w")] == ["bash", "edit"]


def test_bash_is_declared_as_a_persistent_shell() -> None:
    """The bash tool tells the model that the shell persists and offers `restart`."""
    bash = ssh_tools(object(), "/w")[0]
    assert "cd, variables and functions persist across calls" in bash.description
    assert BASH_SCHEMA["properties"]["restart"]["type"] == "boolean"


# -- through rollouts: a provider harness fixes a bug over the tunnel ---------------------------

@pytest.fixture
def api() -> Iterator[FakeAPI]:
    yield from serve()


@pytest.fixture
def fix_env(tmp_path: Path, request: pytest.FixtureRequest) -> Environment:
    """An environment with an ssh workspace holding a buggy calc.py; it grades the fix."""
    root = tmp_path / "ws"
    root.mkdir()
    env = Environment(name=f"agents-fix-{request.node.name}")
    env.add_capability(Workspace(str(root), user=None))

    @env.template()
    async def fix_add():
        (root / "calc.py").write_text(BUGGY)
        answer = yield "calc.add subtracts. Fix it, then reply with add(2, 3)."
        fixed = "a + b" in (root / "calc.py").read_text()
        yield 1.0 if fixed and answer == "5" else 0.0

    return env


def fix_script(wire: Wire) -> list[tuple[int, dict[str, Any]]]:
    return [
        (200, wire.tool_call("c1", wire.edit_tool, {"command": "view", "path": "calc.py"})),
        (200, wire.tool_call("c2", wire.edit_tool, {"command": "str_replace", "path": "calc.py",
                                            "old_str": "a - b", "new_str": "a + b"})),
        (200, wire.tool_call("c3", "bash", {"command": "python3 -c 'import calc; print(calc.add(2, 3))'"})),
        (200, wire.answer("5")),
    ]


@pytest.mark.parametrize("wire", WIRES, ids=lambda w: w.name)
async def test_harness_fixes_a_bug_over_ssh_and_grades_one(api: FakeAPI, wire: Wire,
                                                           fix_env: Environment) -> None:
    """Scripted tool calls run over the real ssh capability; the fix grades 1.0."""
    api.script = fix_script(wire)
    job = await Taskset([fix_env.templates["fix_add"]()], env=fix_env).run(
        wire.agent(api), runtime="local")
    run = job.runs[0]
    assert (run.status, run.reward) == ("completed", 1.0), run.error
    assert wire.tool_names(api.requests[0]) == ["bash", wire.edit_tool]
    view, = wire.tool_results(api.requests[1])
    assert "     2\t    return a - b" in view["text"]
    bash, = wire.tool_results(api.requests[3])
    assert bash["text"] == "exit code: 0\n5\n"


@pytest.mark.parametrize("wire", WIRES, ids=lambda w: w.name)
async def test_bash_calls_in_consecutive_turns_share_one_shell(api: FakeAPI, wire: Wire,
                                                               fix_env: Environment) -> None:
    """A cd and an export in one turn are still there in the next (the issue's scenario)."""
    api.script = [
        (200, wire.tool_call("c1", "bash", {"command": "cd /tmp && export FOO=bar"})),
        (200, wire.tool_call("c2", "bash", {"command": "pwd; echo $FOO"})),
        (200, wire.answer("5")),
    ]
    job = await Taskset([fix_env.templates["fix_add"]()], env=fix_env).run(
        wire.agent(api), runtime="local")
    assert job.runs[0].status == "completed", job.runs[0].error
    second, = wire.tool_results(api.requests[2])
    assert second["text"] == "exit code: 0\n/tmp\nbar\n"


async def test_the_shell_ends_with_the_rollout(api: FakeAPI, fix_env: Environment) -> None:
    """The session's bash (and what it started) is gone once the rollout is over."""
    chat = WIRES[2]
    api.script = [(200, chat.tool_call("c1", "bash", {"command": "sleep 300 & echo pids $$ $!"})),
                  (200, chat.answer("5"))]
    job = await Taskset([fix_env.templates["fix_add"]()], env=fix_env).run(
        chat.agent(api), runtime="local")
    assert job.runs[0].status == "completed", job.runs[0].error
    result, = chat.tool_results(api.requests[1])
    pids = [int(p) for p in result["text"].split("pids ")[1].split()]
    assert [await ended(pid) for pid in pids] == [True, True]


async def ended(pid: int, within: float = 10.0) -> bool:
    """Whether process `pid` is gone (or a zombie) within `within` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state == "Z":
            return True
        await asyncio.sleep(0.05)
    return False


async def test_no_bindings_means_no_tools(api: FakeAPI) -> None:
    """An environment without capabilities gives the model no tools."""
    from tests.agents.test_providers import add_numbers, env

    chat = WIRES[2]
    api.script = [(200, chat.answer("5"))]
    job = await Taskset([add_numbers()], env=env).run(chat.agent(api), runtime="local")
    assert job.runs[0].reward == 1.0
    assert "tools" not in api.requests[0]


async def test_mcp_tools_are_proxied_to_the_model(api: FakeAPI) -> None:
    """The env's MCP tools are offered to the model and called over the real MCP server."""
    env = Environment(name="agents-mcp-proxy")

    @env.tool()
    def multiply(a: int, b: int) -> int:
        """Multiply two integers."""
        return a * b

    @env.template()
    async def product():
        answer = yield "What is 6 times 7? Use the tool."
        yield 1.0 if answer == "42" else 0.0

    chat = WIRES[2]
    api.script = [(200, chat.tool_call("c1", "multiply", {"a": 6, "b": 7})), (200, chat.answer("42"))]
    job = await Taskset([product()], env=env).run(chat.agent(api), runtime="local")
    assert job.runs[0].reward == 1.0, job.runs[0].error
    assert chat.tool_names(api.requests[0]) == ["multiply"]
    result, = chat.tool_results(api.requests[1])
    assert result["text"] == "42" and not result["is_error"]
