"""`ShellSession`: the one bash a rollout's `bash` tool keeps alive across calls.

Anthropic's `bash_20250124` promises a persistent shell: `cd`, variables and functions
carry over from one call to the next, and `restart` gives a fresh one. Every harness
shares that tool (`hud.agents.tools.shell.ssh_tools`), so every model gets the session.

Design decisions:
- **One interactive bash on a pseudo-terminal**, opened as a channel of the rollout's
  asyncssh connection (`bash --noprofile --norc --noediting -i`, TERM=dumb). A terminal
  is what lets a timed-out command be interrupted with Ctrl-C without losing the shell:
  the tty sends SIGINT to the foreground command, bash abandons the line and reads the
  next one. Interactive bash also survives that SIGINT, which a `bash -s` would not.
  The price: stdout and stderr arrive as one stream (as in a terminal, and as Anthropic's
  tool returns them), programs see a tty (one that opens /dev/tty to ask for a password
  waits until its timeout, as it would in a terminal), and bash reports background jobs
  (`[1] 4242`).
- **Set up quietly**: `stty -echo -onlcr` (input is not echoed, output has plain `\n`),
  empty prompts, no history, no job control (`set +m`: one process group, so restarting
  the session kills everything it started, and `cmd &` ignores Ctrl-C), pagers off.
- **Each command is typed as one command line**: `__hud_seq=N; eval "$(printf %s '<the
  command in base64>' | base64 -d)" </dev/null 2>&1`, the base64 quoted over lines of at
  most `CHUNK` characters (a terminal's canonical line holds 4095; base64 -d skips the
  newlines). A syntax error is therefore eval's error, never a half-read command that
  waits for more input; stdin is /dev/null, so no command waits for input.
- **The prompt marks the end of a command**: a read-only PROMPT_COMMAND prints
  `<prefix>_<nonce>_<seq> <status>` on a terminal fd saved at setup (so `exec >/dev/null`
  cannot hide it) each time bash is back at its prompt, i.e. once per command line.
  Nothing is typed ahead of a running command, so a program that reads the terminal
  itself (a password prompt) finds nothing to eat. The nonce is random per session and
  never appears whole in what is typed, so output cannot fake a marker. `seq` tells a
  stray prompt (a Ctrl-C that crossed the end of the previous command) from this
  command's; a command that unsets `__hud_seq` still ends (an empty seq counts as its).
- **Timeouts keep the shell**: past its timeout a command gets Ctrl-C (`\\x03`); bash
  abandons the line and prompts again, which prints the marker (status 130). Only when
  no marker comes within `INTERRUPT_GRACE` (the command ignores SIGINT) is the session
  closed (the daemon hangs up its process group) and a new one started.
- **Bounded output**: the reader keeps the first and last `MAX_OUTPUT_CHARS // 2`
  characters and counts the rest, so `yes | head -c 100M` costs no memory; the text the
  model sees is exactly `truncate()` of the whole output.
- **Lifetime**: started on the first call; a session whose bash exited (`exit`, a dropped
  channel) is replaced at the next call, which says so. The session is a channel of the
  rollout's connection, which the harness's exit stack closes: closing it hangs up bash.
  Calls are serialized with a lock.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import re
import secrets
import shlex
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hud.agents.tools import MAX_OUTPUT_CHARS
from hud.errors import InfraError

if TYPE_CHECKING:  # asyncssh loads when a connection is made
    from asyncssh import SSHClientConnection, SSHClientProcess

#: the terminal's size: wide, so `ps` and friends do not cut lines at 80 columns
COLUMNS, ROWS = 240, 50
#: seconds to open the channel and set the shell up
START_TIMEOUT = 30.0
#: seconds a command has to finish after Ctrl-C before the session is restarted
INTERRUPT_GRACE = 3.0
#: seconds to wait for a closed session's channel to finish closing
CLOSE_TIMEOUT = 5.0
#: base64 characters per typed line (a tty's canonical line holds at most 4095)
CHUNK = 2048
#: characters read from the channel at a time
READ_SIZE = 65536
#: trailing characters held back from the output while scanning: a marker split across
#: two reads is still whole when found
MARKER_ROOM = 128

PREFIX = "__hud"
SHELL = "exec bash --noprofile --norc --noediting -i"


@dataclass
class Outcome:
    """What one command did."""

    #: stdout and stderr as one stream, already cut to `MAX_OUTPUT_CHARS` (see `truncate`)
    output: str
    #: the command's exit status (after Ctrl-C, usually 130); None if the shell had to go
    exit_code: int | None
    timed_out: bool = False
    #: what happened to the shell, for the model: restarted, exited, ...
    notes: list[str] = field(default_factory=list)


class _Output:
    """Head and tail of a stream, with a count of what was dropped between them."""

    def __init__(self, limit: int = MAX_OUTPUT_CHARS) -> None:
        self.limit, self.half = limit, limit // 2
        self.head, self.tail, self.total = "", "", 0

    def add(self, text: str) -> None:
        self.total += len(text)
        if len(self.head) < self.half:
            room = self.half - len(self.head)
            self.head, text = self.head + text[:room], text[room:]
        if text:  # the tail holds the rest up to `limit`, so nothing is lost below it
            self.tail = (self.tail + text)[-(self.limit - self.half):]

    def text(self) -> str:
        """All of it, or (past `limit`) its head and tail as `truncate()` would cut them."""
        if self.total <= self.limit:
            return self.head + self.tail
        return (f"{self.head}\n[... {self.total - self.limit} characters cut ...]\n"
                f"{self.tail[-self.half:]}")


class ShellSession:
    """One persistent bash over an ssh connection, started lazily in `cwd`.

    Args:
        conn: the rollout's asyncssh connection.
        cwd: where a new shell starts.
    """

    def __init__(self, conn: SSHClientConnection, cwd: str) -> None:
        self.conn, self.cwd = conn, cwd
        self.lock = asyncio.Lock()
        self._process: SSHClientProcess[str] | None = None
        self._nonce = ""
        self._marker = re.compile("$^")
        self._seq = 0
        #: read but not consumed yet (text between commands, part of a marker)
        self._pending = ""
        #: why the last shell is gone, told to the model when the next one starts
        self._lost: str | None = None

    @property
    def alive(self) -> bool:
        """Whether a shell is running (it may have exited unseen since the last call)."""
        return self._process is not None and not self._process.is_closing()

    async def run(self, command: str, timeout: float) -> Outcome:
        """Run `command` in the session; Ctrl-C it after `timeout` seconds.

        Raises:
            InfraError: a shell could not be started over the connection.
        """
        async with self.lock:
            notes = []
            try:
                if not self.alive:
                    if self._process is not None and self._lost is None:
                        self._lost = "the shell had exited"
                    await self._start()
                    if self._lost:
                        notes.append(f"{self._lost}; this command ran in a new shell in "
                                     f"{self.cwd} (cd and variables were reset)")
                        self._lost = None
                outcome = await self._run(command, timeout)
            except InfraError:
                raise
            except BaseException:  # cancelled or cut off mid-command: the state is unknown
                self._drop("the last command was cut off, so the shell was closed")
                raise
            outcome.notes[:0] = notes
            return outcome

    async def restart(self) -> None:
        """Replace the shell with a new one in `cwd`.

        Raises:
            InfraError: the new shell could not be started.
        """
        async with self.lock:
            await self.close()
            self._lost = None
            await self._start()

    async def close(self) -> None:
        """End the shell (the daemon hangs up everything it started); idempotent."""
        process, self._process = self._process, None
        if process is None:
            return
        process.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(process.wait_closed(), CLOSE_TIMEOUT)

    async def _start(self) -> None:
        await self.close()
        self._nonce, self._pending = secrets.token_hex(8), ""
        self._marker = re.compile(rf"\n?{PREFIX}_{self._nonce}_(\d*) (\d+)\n")
        try:
            self._process = await asyncio.wait_for(self.conn.create_process(
                SHELL, term_type="dumb", term_size=(COLUMNS, ROWS), encoding="utf-8",
                errors="replace"), START_TIMEOUT)
        except Exception as exc:
            raise InfraError(f"could not open a shell over the workspace's ssh connection: "
                             f"{exc!r}; the connection may be gone (the rollout's container "
                             f"stopped?)") from exc
        # The prefix and the nonce are separate words here, so this line, echoed before
        # `stty -echo` takes effect, shows no marker.
        mark = (f"__hud_rc=$?; printf '\\n%s_%s_%s %s\\n' {PREFIX} {self._nonce} "
                f'"${{__hud_seq-}}" "$__hud_rc" >&"$__hud_tty"')
        seq = self._next()
        self._type(f"stty -echo -onlcr; set +m +H +o history; PS1= PS2= PS0=; unset HISTFILE; "
                   f"export TERM=dumb PAGER=cat GIT_PAGER=cat; exec {{__hud_tty}}>&1; "
                   f"PROMPT_COMMAND={shlex.quote(mark)}; readonly __hud_tty PROMPT_COMMAND; "
                   f"__hud_seq={seq}; cd -- {shlex.quote(self.cwd)}\n")
        output = _Output()
        state, code = await self._expect(output, seq, START_TIMEOUT)
        if state == "done" and code == 0:
            return
        await self.close()
        # what the shell said last, without the terminal's echo of the setup line
        said = ([line for line in output.text().strip().splitlines()
                 if "__hud_seq=" not in line] or [""])[-1][-500:]
        if state == "done":
            raise InfraError(f"the shell could not cd to {self.cwd!r}: {said}; the workspace "
                             f"directory must exist in the environment's image")
        if state == "eof":
            raise InfraError(f"the shell exited as it started ({SHELL!r} over ssh): {said!r}; "
                             f"the environment's image needs bash")
        raise InfraError(f"the shell did not answer within {START_TIMEOUT:g}s of starting "
                         f"({SHELL!r} over ssh); the container may be overloaded")

    async def _run(self, command: str, timeout: float) -> Outcome:
        encoded = base64.b64encode(command.encode(errors="replace")).decode()
        quoted = "\n".join(encoded[i:i + CHUNK] for i in range(0, len(encoded), CHUNK))
        seq = self._next()
        self._type(f"__hud_seq={seq}; eval \"$(printf %s '{quoted}' | base64 -d)\" "
                   f"</dev/null 2>&1\n")
        output = _Output()
        state, code = await self._expect(output, seq, timeout)
        if state == "done":
            return Outcome(output.text(), code)
        if state == "eof":
            return Outcome(output.text(), code, notes=[
                "the shell exited; the next command starts a new one (cd and variables reset)"])
        # Ctrl-C: the tty sends SIGINT to the foreground; bash prompts again, with the marker
        self._type("\x03")
        state, code = await self._expect(output, seq, INTERRUPT_GRACE)
        if state == "done":
            return Outcome(output.text(), code, timed_out=True, notes=[
                f"interrupted with Ctrl-C (exit code {code}); the shell kept its state"])
        if state == "eof":
            return Outcome(output.text(), None, timed_out=True, notes=[
                "the shell exited on Ctrl-C; the next command starts a new one (cd and "
                "variables reset)"])
        output.add(self._pending)  # no marker is coming: what was held back is output
        why = "the command ignored Ctrl-C, so the shell was restarted"
        try:
            await self._start()
        except InfraError as exc:
            self._lost = f"{why}, but no new shell could start then ({exc})"
            return Outcome(output.text(), None, timed_out=True, notes=[self._lost])
        return Outcome(output.text(), None, timed_out=True, notes=[
            f"{why}: cd and variables were reset (now in {self.cwd})"])

    def _next(self) -> int:
        self._seq += 1
        return self._seq

    def _type(self, text: str) -> None:
        assert self._process is not None
        self._process.stdin.write(text)

    def _drop(self, why: str) -> None:
        """Forget the shell without waiting (its channel closes in the background)."""
        if self._process is not None:
            self._process.close()
        self._process, self._lost = None, why

    async def _expect(self, output: _Output, seq: int,
                      timeout: float) -> tuple[str, int | None]:
        """Read into `output` until the marker of `seq`: ("done", its status), ("timeout",
        None), or ("eof", the shell's exit status) when bash exited."""
        assert self._process is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            code = self._scan(output, seq)
            if code is not None:
                return "done", code
            remaining = deadline - loop.time()
            if remaining <= 0:
                return "timeout", None
            try:
                data = await asyncio.wait_for(self._process.stdout.read(READ_SIZE), remaining)
            except TimeoutError:
                return "timeout", None
            if not data:
                output.add(self._pending)
                self._pending = ""
                return "eof", await self._exit_status()
            self._pending += data

    def _scan(self, output: _Output, seq: int) -> int | None:
        """Move what was read into `output` up to the marker of `seq` and return its status;
        older markers (the prompt after a Ctrl-C that crossed the end of a command) are
        dropped on the way."""
        while match := self._marker.search(self._pending):
            if match[1] in (str(seq), ""):
                output.add(self._pending[:match.start()])
                self._pending = self._pending[match.end():]
                return int(match[2])
            self._pending = self._pending[:match.start()] + self._pending[match.end():]
        cut = len(self._pending) - MARKER_ROOM
        if cut > 0:
            output.add(self._pending[:cut])
            self._pending = self._pending[cut:]
        return None

    async def _exit_status(self) -> int | None:
        process, self._process = self._process, None
        self._lost = "the shell had exited"
        if process is None:
            return None
        with contextlib.suppress(Exception):
            await asyncio.wait_for(process.wait_closed(), CLOSE_TIMEOUT)
        return process.exit_status
