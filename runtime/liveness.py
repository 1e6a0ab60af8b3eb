"""The daemon's liveness lock: tells a daemon still starting from one that died.

`hud serve` takes an exclusive `flock` on `<control socket>.lock` before it loads the
environment, writes its pid in it, and holds it for its whole life; the kernel drops the
lock the moment the process ends, however it ends (SIGKILL and the OOM killer too). A
client waiting for the socket to accept (`hud connect --wait`) looks between attempts:

    held                        a daemon is alive (still starting): keep waiting
    not held, and either seen   its daemon died: stop waiting, say so
    held during this wait or
    written since it began
    no file, no pid, or a file  nothing known: keep waiting, bounded by the timeout
    older than the wait

A lock file left by a daemon that crashed before this wait began is never read as a
death (a new daemon may be about to take it); a pid is written only once the lock is
held, so a file being created or retaken is never read as one either.

A waiter tests the lock by taking a shared lock for an instant (`flock` has no way to
only ask), so the daemon retries its exclusive lock for `TAKE_RETRY` seconds before it
concludes that another daemon holds it. A child the daemon forks without exec would
keep it held (the fd is close-on-exec): a waiter then waits for its timeout, as before.

Plain `os` and `fcntl` (no pathlib, no dataclasses): both sides import it, the daemon and
the `hud connect` of every rollout.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time

from hud.errors import ConfigError

#: seconds the daemon retries its exclusive lock (a waiter's shared test lasts microseconds)
TAKE_RETRY = 2.0


def lock_path(socket_path: str | os.PathLike[str]) -> str:
    """The liveness lock of the daemon serving `socket_path` (a `str`: no pathlib here)."""
    return f"{os.fspath(socket_path)}.lock"


class LivenessLock:
    """The daemon's hold on its liveness lock (see the module docstring)."""

    def __init__(self, path: str, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @classmethod
    def take(cls, socket_path: str | os.PathLike[str]) -> LivenessLock:
        """Create the lock next to `socket_path` (mode 0600) and hold it.

        The socket's directory must exist.

        Raises:
            ConfigError: another daemon holds it (it is starting or serving on this socket).
        """
        path = lock_path(socket_path)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        deadline = time.monotonic() + TAKE_RETRY
        while not _try_exclusive(fd):
            if time.monotonic() < deadline:
                time.sleep(0.001)
                continue
            os.close(fd)
            raise ConfigError(
                f"another hud serve (pid {read_pid(path) or 'unknown'}) is starting or serving "
                f"on {os.fspath(socket_path)}; stop it first or pass another --socket")
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        return cls(path, fd)

    def release(self) -> None:
        """Remove the file and drop the lock (idempotent)."""
        if self._fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        os.close(self._fd)
        self._fd = None


def _try_exclusive(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


class Holder:
    """What a lock file says about its daemon (a plain class: `hud connect` imports this,
    and a dataclass costs a millisecond at import).

    Attributes:
        held: a live daemon holds the lock now.
        since: when its daemon wrote it (the file's mtime, seconds since the epoch).
        pid: the pid its daemon wrote.
    """

    __slots__ = ("held", "pid", "since")

    def __init__(self, held: bool, since: float, pid: int) -> None:
        self.held, self.since, self.pid = held, since, pid

    def __repr__(self) -> str:
        return f"Holder(held={self.held}, since={self.since}, pid={self.pid})"


def holder(socket_path: str | os.PathLike[str]) -> Holder | None:
    """The state of the liveness lock of `socket_path`.

    Returns:
        None when nothing is known: no lock file, one that cannot be read (another
        user's daemon), or one whose daemon has not written its pid yet.
    """
    try:
        fd = os.open(lock_path(socket_path), os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        since = os.fstat(fd).st_mtime
        text = os.read(fd, 32).decode("ascii", errors="replace").strip()
        if not text.isdigit():
            return None  # just created, or just truncated by a daemon taking it
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return Holder(True, since, int(text))
        return Holder(False, since, int(text))
    except OSError:
        return None
    finally:
        os.close(fd)  # closing drops the shared lock, if it was taken


def read_pid(path: str) -> int | None:
    """The pid written in a lock file, or None when it holds none."""
    try:
        with open(path, encoding="ascii", errors="replace") as fh:
            text = fh.read(32).strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
