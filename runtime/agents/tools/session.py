"""`ShellSession`: the one bash a rollout's `bash` tool keeps alive across calls.

Anthropic's `bash_20250124` promises a persistent shell: `cd`, variables and functions
carry over from one call to the next, and `restart` gives a fresh one. Every harness
shares that tool (`hud.agents.tools.shell.ssh_tools`), so every model gets the session.

Design decisions:
- **One interactive bash on a pseudo-terminal**, opened as a channel of the rollout's
  asyncssh connection (`bash --noprofile --norc --noediting -i`, TERM=dumb). A terminal
  is what lets a timed-out command be interrupted with Ctrl-C without losing the shell.
  The price: stdout and stderr arrive as one stream (as in a terminal, and as Anthropic's
  tool returns them), programs see a tty (one that opens /dev/tty to ask for a password
  waits until its timeout, as it would in a terminal), and bash reports background jobs
  (`[1] 4242`).
- **Job control on**, as in any terminal: each command runs in its own process group,
  the terminal's foreground one, so Ctrl-C reaches the command and not the shell or the
  background jobs; a background job that reads the terminal is stopped (SIGTTIN, "[1]+
  Stopped") instead of eating the next command line typed for the shell. As in a
  terminal, `exit` then answers "There are stopped jobs." (`kill %1` first, or `exit;
  exit` in one call: the prompt hook between two calls counts as a command).
- **What is typed** (the command as one quoted word, builtins only, an end marker printed
  by a prompt hook) is `hud.agents.tools.bashlines`'s: it does not depend on $PATH nor
  on functions or aliases the model defines, survives `reset` and `stty echo`, and
  keeps `set -x` to the model's own commands. Nothing is typed ahead of a running
  command, so a program that reads the terminal itself finds nothing to eat. `seq` tells
  a stray marker (a prompt after a Ctrl-C that crossed the end of a command) from this
  command's; a command that unsets `__hud_seq` still ends (an empty seq counts as its).
- **Timeouts keep the shell**: past its timeout a command gets Ctrl-C (`\\x03`); bash
  abandons the line and prompts again, which prints the marker (status 130). Then a
  sync line is typed and everything up to its marker dropped, so a Ctrl-C that crossed
  the end of the command (reaching bash at its prompt, maybe as it reads the next line)
  cannot disturb the next call. Only when no marker comes within `INTERRUPT_GRACE` (the
  command ignores SIGINT) is the shell closed and a new one started.
- **Closing a shell kills its session**: every process whose session is the shell's
  (jobs in their own process groups included) is killed over a separate channel before
  the shell's channel closes, on `restart`, on a forced restart, and when bash exited.
  What a command detached with `setsid` lives on until the task ends, as before.
- **Bounded output**: the reader keeps the first and last `MAX_OUTPUT_CHARS // 2`
  characters and counts the rest, so `yes | head -c 100M` costs no memory; the text the
  model sees is exactly `truncate()` of the whole output.
- **Lifetime**: started on the first call; a session whose bash exited (`exit`, a dropped
  channel) is replaced at the next call, which says so, as is one that can no longer run
  a command (a lowered `ulimit -n`). The session is a channel of the rollout's
  connection, which the harness's exit stack closes: closing it hangs up bash, which
  hangs up its jobs. Calls are serialized with a lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hud.agents.tools import MAX_OUTPUT_CHARS
from hud.agents.tools.bashlines import command_line, kill_session, marker, setup_line, sync_line
from hud.errors import InfraError

if TYPE_CHECKING:  # asyncssh loads when a connection is made
    from asyncssh import SSHClientConnection, SSHClientProcess

#: the terminal's size: wide, so `ps` and friends do not cut lines at 80 columns
COLUMNS, ROWS = 240, 50
#: seconds to open the channel and set the shell up
START_TIMEOUT = 30.0
#: seconds a command has to finish after Ctrl-C (and a sync line to come back) before
#: the session is restarted
INTERRUPT_GRACE = 3.0
#: rounds of sync lines typed after a Ctrl-C before giving up on the shell
SYNC_TRIES = 2
#: seconds to wait for a closed session's channel to finish closing, and for the
#: processes of its session to be killed
CLOSE_TIMEOUT = 5.0
#: characters read from the channel at a time
READ_SIZE = 65536
#: trailing characters held back from the output while scanning: a marker split across
#: two reads is still whole when found
MARKER_ROOM = 128

SHELL = "exec bash --noprofile --norc --noediting -i"
RESET = "cd and variables were reset"


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


@dataclass
class _End:
    """How waiting for a marker ended."""

    #: "done" (the marker came), "timeout", or "eof" (bash exited)
    state: str
    #: the marker's status, or bash's exit status at "eof"
    code: int | None = None
    #: the terminal translated "\n" to "\r\n" (onlcr) when the command ended
    crlf: bool = False
    #: False: the command line ran but its eval could not (no file descriptor left)
    ran: bool = True


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

    def text(self, crlf: bool = False) -> str:
        """All of it, or (past `limit`) its head and tail as `truncate()` would cut them;
        with `crlf`, each "\\r\\n" (the terminal's, with onlcr on) as "\\n"."""
        if self.total <= self.limit:
            parts = [self.head + self.tail]
        else:
            parts = [self.head, f"\n[... {self.total - self.limit} characters cut ...]\n",
                     self.tail[-self.half:]]
        return "".join(part.replace("\r\n", "\n") if crlf else part for part in parts)


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
        self._marker = re.compile("$^")
        self._seq = 0
        #: bash's pid, which is also its session's id; 0 before a shell said it
        self._sid = 0
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
                                     f"{self.cwd} ({RESET})")
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
        """End the shell and every process of its session; idempotent."""
        process, self._process = self._process, None
        if process is None:
            return
        await self._kill_session()
        process.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(process.wait_closed(), CLOSE_TIMEOUT)

    async def _kill_session(self) -> None:
        """Kill what is left of the last shell's session (a no-op once done)."""
        sid, self._sid = self._sid, 0
        if sid:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.conn.run(kill_session(sid)), CLOSE_TIMEOUT)

    async def _start(self) -> None:
        await self.close()
        await self._kill_session()  # a dropped shell's
        nonce, self._pending = secrets.token_hex(8), ""
        self._marker = marker(nonce)
        try:
            self._process = await asyncio.wait_for(self.conn.create_process(
                SHELL, term_type="dumb", term_size=(COLUMNS, ROWS), encoding="utf-8",
                errors="replace"), START_TIMEOUT)
        except Exception as exc:
            raise InfraError(f"could not open a shell over the workspace's ssh connection: "
                             f"{exc!r}; the connection may be gone (the rollout's container "
                             f"stopped?)") from exc
        seq = self._next()
        self._type(setup_line(seq, nonce, self.cwd))
        output = _Output()
        end = await self._expect(output, seq, START_TIMEOUT)
        said = output.text()
        if pid := re.search(r"__hud_pid (\d+)", said):
            self._sid = int(pid[1])
        if end.state == "done" and end.code == 0:
            return
        await self.close()
        # what the shell said last, without the terminal's echo of the setup line
        said = ([line for line in said.strip().splitlines()
                 if "__hud_seq=" not in line and "__hud_pid" not in line] or [""])[-1][-500:]
        if end.state == "done":
            raise InfraError(f"the shell could not cd to {self.cwd!r}: {said}; the workspace "
                             f"directory must exist in the environment's image")
        if end.state == "eof":
            raise InfraError(f"the shell exited as it started ({SHELL!r} over ssh): {said!r}; "
                             f"the environment's image needs bash")
        raise InfraError(f"the shell did not answer within {START_TIMEOUT:g}s of starting "
                         f"({SHELL!r} over ssh); the container may be overloaded")

    async def _run(self, command: str, timeout: float, again: bool = True) -> Outcome:
        seq = self._next()
        self._type(command_line(seq, command))
        output = _Output()
        end = await self._expect(output, seq, timeout)
        if end.state == "done" and not end.ran and again:
            return await self._run_anew(command, timeout)
        if end.state == "done":
            return Outcome(output.text(end.crlf), end.code)
        if end.state == "eof":
            return Outcome(output.text(), end.code, notes=[
                "the shell exited; the next command starts a new one (cd and variables reset)"])
        # Ctrl-C: the tty sends SIGINT to the foreground job; bash prompts again, with
        # the marker (this command's first marker is its real status)
        self._type("\x03")
        end = await self._expect(output, seq, INTERRUPT_GRACE)
        if end.state == "done":
            text = output.text(end.crlf)
            synced = await self._sync()
            if synced == "done":
                return Outcome(text, end.code, timed_out=True, notes=[
                    f"interrupted with Ctrl-C (exit code {end.code}); the shell kept its state"])
            if synced == "eof":
                return Outcome(text, end.code, timed_out=True, notes=[
                    f"interrupted with Ctrl-C (exit code {end.code}); then the shell exited: "
                    f"the next command starts a new one (cd and variables reset)"])
            return await self._replace(Outcome(text, end.code, timed_out=True),
                                       "after Ctrl-C the shell stopped answering")
        if end.state == "eof":
            return Outcome(output.text(), None, timed_out=True, notes=[
                "the shell exited on Ctrl-C; the next command starts a new one (cd and variables "
                "reset)"])
        output.add(self._pending)  # no marker is coming: what was held back is output
        return await self._replace(Outcome(output.text(), None, timed_out=True),
                                   "the command ignored Ctrl-C")

    async def _run_anew(self, command: str, timeout: float) -> Outcome:
        """The shell read the command line but could not run it: run it in a new shell."""
        why = ("the shell could no longer start a command (it could not redirect its input "
               "and output: a closed stdout, a lowered `ulimit -n`?), so it was restarted")
        await self._start()
        outcome = await self._run(command, timeout, again=False)
        outcome.notes.insert(0, f"{why}; this command ran in the new shell in {self.cwd} "
                                f"({RESET})")
        return outcome

    async def _replace(self, outcome: Outcome, why: str) -> Outcome:
        """Restart the shell after `outcome`'s command left it unusable; say so."""
        why += ", so the shell was restarted"
        try:
            await self._start()
        except InfraError as exc:
            self._lost = f"{why}, but no new shell could start then ({exc})"
            outcome.notes.append(self._lost)
            return outcome
        outcome.notes.append(f"{why}: {RESET} (now in {self.cwd})")
        return outcome

    async def _sync(self) -> str:
        """Type sync lines until one's marker comes back, dropping everything before it:
        "done", "eof" (bash exited) or "timeout" (it never came).

        Two lines at a time, waiting for the second: a SIGINT that reached bash as it
        was going back to its prompt can make it drop the next line it reads (bash reads
        a terminal one line at a time, so only that one).
        """
        for _ in range(SYNC_TRIES):
            self._type(sync_line(self._next()))
            seq = self._next()
            self._type(sync_line(seq))
            end = await self._expect(_Output(), seq, INTERRUPT_GRACE)
            if end.state != "timeout":
                return end.state
        return "timeout"

    def _next(self) -> int:
        self._seq += 1
        return self._seq

    def _type(self, text: str) -> None:
        assert self._process is not None
        self._process.stdin.write(text)

    def _drop(self, why: str) -> None:
        """Forget the shell without waiting: its channel closes in the background, which
        hangs bash up; the next shell's start kills what is left of its session."""
        if self._process is not None:
            self._process.close()
        self._process, self._lost = None, why

    async def _expect(self, output: _Output, seq: int, timeout: float) -> _End:
        """Read into `output` until the marker of `seq`, a timeout, or bash's exit."""
        assert self._process is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            end = self._scan(output, seq)
            if end is not None:
                return end
            remaining = deadline - loop.time()
            if remaining <= 0:
                return _End("timeout")
            try:
                data = await asyncio.wait_for(self._process.stdout.read(READ_SIZE), remaining)
            except TimeoutError:
                return _End("timeout")
            if not data:
                output.add(self._pending)
                self._pending = ""
                return _End("eof", await self._exit_status())
            self._pending += data

    def _scan(self, output: _Output, seq: int) -> _End | None:
        """Move what was read into `output` up to the marker of `seq` and say how it
        ended; other markers (the prompt after a Ctrl-C that crossed the end of a
        command) are dropped on the way."""
        while match := self._marker.search(self._pending):
            if match[2] in (str(seq), ""):
                output.add(self._pending[:match.start()])
                self._pending = self._pending[match.end():]
                return _End("done", int(match[3]), crlf=match[1] == "\r\n\r", ran=match[4] != "0")
            self._pending = self._pending[:match.start()] + self._pending[match.end():]
        cut = len(self._pending) - MARKER_ROOM
        if cut > 0:
            output.add(self._pending[:cut])
            self._pending = self._pending[cut:]
        return None

    async def _exit_status(self) -> int | None:
        process, self._process = self._process, None
        self._lost = "the shell had exited"
        await self._kill_session()  # its jobs go with it
        if process is None:
            return None
        with contextlib.suppress(Exception):
            await asyncio.wait_for(process.wait_closed(), CLOSE_TIMEOUT)
        return process.exit_status
