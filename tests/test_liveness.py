"""The daemon's liveness lock: held while the daemon lives, free once it dies, never
mistaken for a death while a daemon takes it."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from hud import liveness
from hud.errors import ConfigError
from hud.liveness import LivenessLock, holder, lock_path


def test_a_daemon_holds_its_lock_with_its_pid_until_it_releases_it(short_dir: Path) -> None:
    """While held the lock names this process; release removes the file."""
    sock = short_dir / "c.sock"
    lock = LivenessLock.take(sock)
    state = holder(sock)
    assert state is not None and state.held and state.pid == os.getpid()
    lock.release()
    lock.release()  # idempotent
    assert not os.path.exists(lock_path(sock)) and holder(sock) is None


def test_a_second_daemon_on_the_same_socket_is_refused(short_dir: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Taking a lock another daemon holds is a ConfigError naming its pid."""
    monkeypatch.setattr(liveness, "TAKE_RETRY", 0.05)
    sock = short_dir / "c.sock"
    first = LivenessLock.take(sock)
    try:
        with pytest.raises(ConfigError, match=rf"another hud serve \(pid {os.getpid()}\) is "
                                              rf"starting or serving on {sock}"):
            LivenessLock.take(sock)
    finally:
        first.release()


def test_a_waiters_look_does_not_refuse_the_daemon(short_dir: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A daemon whose first try meets a waiter's instant shared lock retries and gets it."""
    sock = short_dir / "c.sock"
    Path(lock_path(sock)).write_text("")
    looking = os.open(lock_path(sock), os.O_RDONLY)
    fcntl.flock(looking, fcntl.LOCK_SH)  # a waiter, caught mid-look
    pauses: list[float] = []

    def pause(seconds: float) -> None:  # the daemon's first try failed: the waiter moves on
        pauses.append(seconds)
        fcntl.flock(looking, fcntl.LOCK_UN)

    monkeypatch.setattr(liveness.time, "sleep", pause)
    try:
        lock = LivenessLock.take(sock)
    finally:
        os.close(looking)
    state = holder(sock)
    assert pauses and state is not None and state.held and state.pid == os.getpid()
    lock.release()


def test_a_killed_daemon_leaves_a_lock_nobody_holds(short_dir: Path) -> None:
    """SIGKILL frees the lock at once; the file still names the dead daemon's pid."""
    sock = short_dir / "c.sock"
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys\nfrom hud.liveness import LivenessLock\n"
         f"LivenessLock.take({str(sock)!r})\nprint('held', flush=True)\nsys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "held\n"
        alive = holder(sock)
        assert alive is not None and alive.held and alive.pid == proc.pid
        proc.kill()
        proc.wait(timeout=30)
        dead = holder(sock)
        assert dead is not None and not dead.held and dead.pid == proc.pid
    finally:
        proc.kill()
        proc.wait(timeout=30)


def test_a_lock_file_without_a_pid_says_nothing(short_dir: Path) -> None:
    """A file just created (no pid written yet) is not read as a dead daemon."""
    sock = short_dir / "c.sock"
    Path(lock_path(sock)).write_text("")
    assert holder(sock) is None


def test_looking_at_a_held_lock_from_a_thread_does_not_steal_it(short_dir: Path) -> None:
    """Many looks at a held lock leave it held by its daemon."""
    sock = short_dir / "c.sock"
    lock = LivenessLock.take(sock)
    seen: list[bool] = []

    def look() -> None:
        for _ in range(200):
            state = holder(sock)
            seen.append(state is not None and state.held)

    threads = [threading.Thread(target=look) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert seen == [True] * 800
    lock.release()
