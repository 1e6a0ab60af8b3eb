"""Long-running programs a capability owns (chromium, Xvnc, a window manager, GUI apps).

`proc.run`/`arun` are for commands that finish; a `Service` is a program that must keep
running: it is started as the agent's user (`hud.capabilities.users`), in a session of its own so that
everything it forks can be ended by session id, with its output in a log file that error
messages quote. Every wait on it is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

from hud.capabilities.users import User, kill_processes, release_session, spare_session
from hud.errors import InfraError

EXIT_WAIT = 5.0
T = TypeVar("T")


class Service:
    """One long-running child process, started in its own session."""

    def __init__(self, what: str, proc: asyncio.subprocess.Process, log_path: Path) -> None:
        self.what = what
        self.proc = proc
        self.log_path = log_path

    @classmethod
    async def spawn(cls, what: str, argv: Sequence[str], *, user: User, log_path: Path,
                    env: Mapping[str, str] | None = None, cwd: str | None = None) -> Service:
        """Start `argv` as `user` with a clean login environment plus `env`.

        Raises:
            InfraError: the program is not installed.
        """
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log:
            try:
                proc = await asyncio.create_subprocess_exec(
                    *user.argv(argv), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                    env=user.environment(extra=env),
                    cwd=cwd or (user.home if os.path.isdir(user.home) else "/"),
                    start_new_session=True,
                )
            except FileNotFoundError as exc:
                raise InfraError(f"cannot start {what}: {argv[0]!r} is not installed "
                                 f"({exc}); use the hud browser/desktop image, or install it "
                                 f"(Debian: see images/)") from exc
        # the capability owns this program's lifetime: the shell's end-of-task sweep of the
        # agent's processes must not kill it (its session id is its pid)
        spare_session(proc.pid)
        return cls(what, proc, log_path)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def alive(self) -> bool:
        """Running: not reaped, and not a zombie the event loop has yet to reap."""
        if self.proc.returncode is not None:
            return False
        try:
            with open(f"/proc/{self.proc.pid}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            return False
        return stat[stat.rindex(b")") + 2:][:1] not in (b"Z", b"X")

    def log_tail(self, lines: int = 15) -> str:
        """The last lines of the program's output, for error messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.strip().splitlines()[-lines:]) or "(empty log)"

    def died(self, doing: str) -> InfraError:
        """The error for "it exited while we were `doing` something", with its log."""
        return InfraError(f"{self.what} exited with code {self.proc.returncode} while {doing}; "
                          f"its log ({self.log_path}) ends with:\n{self.log_tail()}")

    async def stop(self, timeout: float = EXIT_WAIT) -> None:
        """SIGKILL the program and everything in its session, and reap it (idempotent)."""
        # the session id is the child's pid (start_new_session); setpriv execs in place
        await asyncio.to_thread(kill_processes, sessions=[self.proc.pid])
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.proc.wait(), timeout)
        release_session(self.proc.pid)


async def poll(check: Callable[[], Awaitable[T | None]], *, timeout: float, interval: float = 0.05,
               service: Service | None = None, what: str) -> T:
    """Call async `check()` until it returns a truthy value, the deadline passes, or
    `service` dies.

    Returns:
        The first truthy value.

    Raises:
        InfraError: the deadline passed (`what` says what was awaited), or the service died.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        if service is not None and not service.alive:
            raise service.died(f"waiting until {what}")
        value = await check()
        if value:
            return value
        if loop.time() >= deadline:
            tail = f"; its log ends with:\n{service.log_tail()}" if service else ""
            raise InfraError(f"timed out after {timeout:g}s waiting until {what}{tail}")
        await asyncio.sleep(interval)


def owned_dir(path: Path, user: User) -> Path:
    """Create `path` (mode 0700) owned by `user`, so the program it runs can write it."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if user.switch:
        os.chown(path, user.uid, user.gid)
    return path
