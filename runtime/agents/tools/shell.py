"""The shell tools a model gets for an ssh binding: `bash` and `edit` (see `tools_for`).

    ssh/2    bash   run a command in the rollout's persistent shell (cd and variables
                    carry over; `restart` starts a new one): exit code and output
             edit   view a file or directory, create a file, replace a unique string,
                    insert after a line

The argument names follow Anthropic's text-editor and bash tools (`command`, `path`,
`file_text`, `old_str`, `new_str`, `view_range`, `insert_line`; `restart`), so the Claude
harness can offer these two as Claude's own trained tools and route the calls here.

Only the bindings present get tools; an environment with none gives a model no tools
(it answers from the prompt alone). Both ssh tools share one asyncssh connection per
rollout, opened over `run.tunnel` (the host key pinned from the binding) and closed by
the `AsyncExitStack` the harness passes in. `bash` runs in one `ShellSession` (one bash
on a pseudo-terminal, a channel of that connection, so it ends with it): stdout and
stderr come back as one stream, as from a terminal. File edits are separate processes,
plain commands (`cat`, `mkdir`) over the same connection, so they behave exactly as the
agent's shell: same user, same permissions, no SFTP needed; their relative paths are
relative to the workspace, whatever the shell's cwd.

Several ssh bindings get tools suffixed with the binding name (`bash_shell`, ...).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import posixpath
import shlex
from typing import TYPE_CHECKING, Any

from hud.agents.context import RunContext
from hud.agents.tools import Tool, ToolResult, session, truncate
from hud.agents.tools.session import ShellSession
from hud.errors import InfraError

if TYPE_CHECKING:  # asyncssh loads when a connection is made
    from asyncssh import SSHClientConnection

#: seconds a bash command may run unless the model asks for less (or more, up to the cap)
COMMAND_TIMEOUT = 120.0
MAX_COMMAND_TIMEOUT = 600.0
#: seconds the ssh handshake may take
CONNECT_TIMEOUT = 30.0
#: seconds to wait for the channel of a killed command to close
CLOSE_TIMEOUT = 5.0
#: seconds a `bash` call may take in all: its command, Ctrl-C and the sync lines after it,
#: and starting a shell twice (one to replace a dead shell first, one to replace a shell the
#: command left unusable), each after killing the old shell's session
BASH_TOOL_TIMEOUT = (MAX_COMMAND_TIMEOUT + (1 + session.SYNC_TRIES) * session.INTERRUPT_GRACE
                     + 2 * (session.START_TIMEOUT + 2 * session.CLOSE_TIMEOUT) + 15)
#: seconds a file operation may take
EDIT_TIMEOUT = 60.0
#: lines of a directory listing shown by `edit view`
MAX_LISTING = 200

BASH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "command": {"type": "string",
                    "description": "The command to run (required unless restarting)."},
        "timeout": {"type": "number",
                    "description": f"Seconds before the command is interrupted with Ctrl-C "
                                   f"(default {COMMAND_TIMEOUT:g}, at most "
                                   f"{MAX_COMMAND_TIMEOUT:g})."},
        "restart": {"type": "boolean",
                    "description": "Start a new shell in the workspace first (cd, variables "
                                   "and background jobs of the old one are gone)."},
    },
}

EDIT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "command": {"type": "string", "enum": ["view", "create", "str_replace", "insert"],
                    "description": "view a file (numbered lines) or directory; create (or "
                                   "overwrite) a file; replace a string that occurs once; "
                                   "insert text after a line."},
        "path": {"type": "string", "description": "File or directory; relative to the workspace."},
        "file_text": {"type": "string", "description": "create: the whole content."},
        "old_str": {"type": "string", "description": "str_replace: the exact text to replace."},
        "new_str": {"type": "string", "description": "str_replace: the replacement; "
                                                     "insert: the text to insert."},
        "insert_line": {"type": "integer",
                        "description": "insert: the line after which to insert (0: at the top)."},
        "view_range": {"type": "array", "items": {"type": "integer"},
                       "description": "view: [first, last] line numbers, 1-based; last -1 for the end."},
    },
    "required": ["command", "path"],
}


async def connect(run: RunContext, binding: dict[str, Any]) -> SSHClientConnection:
    """An asyncssh connection to an ssh binding, through the run's tunnel (host key pinned).

    Raises:
        InfraError: the ssh handshake or authentication failed.
    """
    from hud.clients.bindings import ssh_connect

    return await ssh_connect(run.tunnel, binding)


async def close(conn: SSHClientConnection) -> None:
    conn.close()
    with contextlib.suppress(Exception):
        await conn.wait_closed()


def ssh_tools(conn: SSHClientConnection, cwd: str, suffix: str = "") -> list[Tool]:
    """`bash` and `edit` over an asyncssh connection, working in `cwd`."""
    shell = RemoteShell(conn, cwd)
    return [
        Tool(f"bash{suffix}", f"Run a command in a persistent bash session that starts in "
             f"the workspace ({cwd}): cd, variables and functions persist across calls; "
             "`restart` starts a fresh shell. stdin is /dev/null. Returns the exit code and "
             "the output (stdout and stderr as one stream). A command past its timeout is "
             "interrupted with Ctrl-C.", BASH_SCHEMA, shell.bash,
             timeout=BASH_TOOL_TIMEOUT),
        Tool(f"edit{suffix}", f"View, create or edit files in the workspace ({cwd}).",
             EDIT_SCHEMA, shell.edit, timeout=EDIT_TIMEOUT + 15),
    ]


def _text(output: str | bytes | None) -> str:
    """A process's output as text: str, as asyncssh gives it with an encoding set (its types
    also allow bytes)."""
    if isinstance(output, bytes):
        return output.decode(errors="replace")
    return output or ""


class RemoteShell:
    """Commands (in one persistent `ShellSession`) and file edits over one ssh connection."""

    def __init__(self, conn: SSHClientConnection, cwd: str) -> None:
        self.conn = conn
        self.cwd = cwd
        self.session = ShellSession(conn, cwd)

    async def exec(self, command: str, timeout: float,
                   stdin: str | None = None) -> tuple[int | None, str, str, bool]:
        """Run `command` in cwd as its own process: (exit code, stdout, stderr, timed out)."""
        import asyncssh

        script = f"cd {shlex.quote(self.cwd)} || exit 1\n{command}"
        process = await self.conn.create_process(script, encoding="utf-8", errors="replace")
        if stdin:
            process.stdin.write(stdin)
        process.stdin.write_eof()  # a command reading stdin gets EOF, not a hang
        try:
            done = await process.wait(timeout=timeout)
        except asyncssh.TimeoutError as exc:
            with contextlib.suppress(Exception):
                process.send_signal("KILL")
            process.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(process.wait_closed(), CLOSE_TIMEOUT)
            return None, _text(exc.stdout), _text(exc.stderr), True
        return done.exit_status, _text(done.stdout), _text(done.stderr), False

    async def bash(self, args: dict[str, Any]) -> ToolResult:
        """The `bash` tool: run `command` in the session (`restart` first replaces it)."""
        command, restart = args.get("command"), args.get("restart", False)
        if not isinstance(restart, bool):
            return ToolResult(f"'restart' must be true or false, got {restart!r}", is_error=True)
        if not (restart and command is None) and (
                not isinstance(command, str) or not command.strip()):
            return ToolResult("bash needs a non-empty 'command' string", is_error=True)
        timeout = args.get("timeout") or COMMAND_TIMEOUT
        # NaN passes `<= 0` and would disable the timeout (json.loads reads `NaN`)
        if (not isinstance(timeout, (int, float)) or isinstance(timeout, bool)
                or not math.isfinite(timeout) or timeout <= 0):
            return ToolResult(f"'timeout' must be a positive number of seconds, got {timeout!r}",
                              is_error=True)
        timeout = min(float(timeout), MAX_COMMAND_TIMEOUT)
        restarted = f"the shell was restarted: a new bash in {self.cwd}, cd and variables reset"
        try:
            if restart:
                await self.session.restart()
                if command is None:
                    return ToolResult(restarted)
            assert isinstance(command, str)
            outcome = await self.session.run(command, timeout)
        except InfraError as exc:
            return ToolResult(str(exc), is_error=True)
        head = f"timed out after {timeout:g}s" if outcome.timed_out else \
            f"exit code: {'unknown' if outcome.exit_code is None else outcome.exit_code}"
        notes = ([restarted] if restart else []) + outcome.notes
        text = "\n".join([head, *(f"[{note}]" for note in notes)])
        if outcome.output:
            text += "\n" + outcome.output
        return ToolResult(text, is_error=outcome.timed_out)

    async def edit(self, args: dict[str, Any]) -> ToolResult:
        command, path = args.get("command"), args.get("path")
        if not isinstance(path, str) or not path:
            return ToolResult("edit needs a 'path'", is_error=True)
        path = posixpath.normpath(posixpath.join(self.cwd, path))
        if command == "view":
            return await self._view(path, args.get("view_range"))
        if command == "create":
            text = args.get("file_text")
            if not isinstance(text, str):
                return ToolResult("create needs 'file_text'", is_error=True)
            return await self._write(path, text, f"created {path} ({len(text)} characters)")
        if command == "str_replace":
            return await self._replace(path, args.get("old_str"), args.get("new_str", ""))
        if command == "insert":
            return await self._insert(path, args.get("insert_line"), args.get("new_str"))
        return ToolResult(f"unknown edit command {command!r}; use view, create, str_replace "
                          f"or insert", is_error=True)

    async def _read(self, path: str) -> tuple[str | None, str]:
        code, out, err, _ = await self.exec(f"cat -- {shlex.quote(path)}", EDIT_TIMEOUT)
        return (out, "") if code == 0 else (None, err.strip() or f"cannot read {path}")

    async def _write(self, path: str, text: str, done: str) -> ToolResult:
        quoted = shlex.quote(path)
        parent = shlex.quote(posixpath.dirname(path) or ".")
        code, _, err, _ = await self.exec(f"mkdir -p -- {parent} && cat > {quoted}", EDIT_TIMEOUT,
                                          stdin=text)
        if code != 0:
            return ToolResult(err.strip() or f"cannot write {path}", is_error=True)
        return ToolResult(done)

    async def _view(self, path: str, view_range: object) -> ToolResult:
        quoted = shlex.quote(path)
        code, out, err, _ = await self.exec(
            f"if [ -d {quoted} ]; then echo DIR; find {quoted} -maxdepth 2 -not -path '*/.*' | "
            f"sort | head -n {MAX_LISTING}; else cat -- {quoted}; fi", EDIT_TIMEOUT)
        if code != 0:
            return ToolResult(err.strip() or f"cannot view {path}", is_error=True)
        if out.startswith("DIR\n"):
            return ToolResult(out.removeprefix("DIR\n").rstrip("\n") or "(empty directory)")
        lines = out.splitlines()
        first, last = 1, len(lines)
        if view_range is not None:
            if (not isinstance(view_range, list) or len(view_range) != 2
                    or not all(isinstance(n, int) for n in view_range)):
                return ToolResult(f"view_range must be [first, last], got {view_range!r}",
                                  is_error=True)
            first, last = view_range[0], (len(lines) if view_range[1] == -1 else view_range[1])
        numbered = [f"{n:6}\t{line}" for n, line in enumerate(lines, 1) if first <= n <= last]
        return ToolResult(truncate("\n".join(numbered)) or "(empty)")

    async def _replace(self, path: str, old: object, new: object) -> ToolResult:
        if not isinstance(old, str) or not old:
            return ToolResult("str_replace needs a non-empty 'old_str'", is_error=True)
        if not isinstance(new, str):
            return ToolResult("'new_str' must be a string", is_error=True)
        text, error = await self._read(path)
        if text is None:
            return ToolResult(error, is_error=True)
        count = text.count(old)
        if count != 1:
            where = "does not occur" if count == 0 else f"occurs {count} times"
            return ToolResult(f"old_str {where} in {path}; it must occur exactly once "
                              f"(copy it exactly, with more surrounding lines if needed)",
                              is_error=True)
        updated = text.replace(old, new, 1)
        line = text[:text.index(old)].count("\n") + 1
        return await self._write(path, updated, f"edited {path} at line {line}")

    async def _insert(self, path: str, after: object, new: object) -> ToolResult:
        if not isinstance(after, int) or isinstance(after, bool) or after < 0:
            return ToolResult(f"insert needs 'insert_line' >= 0, got {after!r}", is_error=True)
        if not isinstance(new, str):
            return ToolResult("insert needs 'new_str'", is_error=True)
        text, error = await self._read(path)
        if text is None:
            return ToolResult(error, is_error=True)
        lines = text.splitlines(keepends=True)
        if after > len(lines):
            return ToolResult(f"insert_line {after} is past the end of {path} ({len(lines)} lines)",
                              is_error=True)
        if lines and not lines[-1].endswith("\n") and after == len(lines):
            lines[-1] += "\n"
        block = new if new.endswith("\n") else new + "\n"
        updated = "".join(lines[:after]) + block + "".join(lines[after:])
        count = block.count("\n")
        return await self._write(path, updated, f"inserted {count} line(s) after line {after} of {path}")
