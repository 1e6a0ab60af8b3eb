"""`open_socket(wait=...)`: a daemon still starting is awaited, bounded; one that dies
while awaited ends the wait with a clear error."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hud import liveness
from hud.clients.control import ControlClient, open_socket
from hud.errors import DaemonUnavailable
from tests.conftest import ENVS, READY_TIMEOUT


class Waiter(threading.Thread):
    """`open_socket(path, wait=...)` in a thread; keeps the socket or the error."""

    def __init__(self, path: Path, wait: float) -> None:
        super().__init__(daemon=True)
        self.path, self.wait = path, wait
        self.sock: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.sock = open_socket(self.path, wait=self.wait)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            self.error = exc


@pytest.fixture
def serve(short_dir: Path) -> Iterator[Any]:
    """Start `hud serve MODULE --socket PATH` subprocesses; all killed at teardown."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(module: Path, sock: Path, **env: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "hud.cli.main", "serve", str(module), "--socket", str(sock),
             "--log-file", str(short_dir / "serve.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, **env})
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        proc.kill()
        proc.wait(timeout=30)


def wait_until(check: Any, what: str, timeout: float = READY_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what} within {timeout}s"
        time.sleep(0.01)


def test_a_waiter_connects_once_a_late_daemon_listens(short_dir: Path, serve: Any,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The waiter fails its first tries (no daemon yet), then a daemon starts and the
    connection it returns is answered."""
    sock = short_dir / "c.sock"
    tried = threading.Event()
    look = liveness.holder

    def spy(path: str) -> liveness.Holder | None:  # called after each failed try
        tried.set()
        return look(path)

    monkeypatch.setattr(liveness, "holder", spy)
    waiter = Waiter(sock, wait=120)
    waiter.start()
    assert tried.wait(READY_TIMEOUT), "the waiter never tried to connect"
    assert waiter.is_alive()
    serve(ENVS / "letters.py", sock)
    waiter.join(READY_TIMEOUT * 3)
    assert waiter.error is None and waiter.sock is not None
    with ControlClient(waiter.sock) as client:
        assert client.call("hello")["env"]["name"] == "letter-count"


def test_a_daemon_that_never_listens_ends_the_wait_at_its_timeout(short_dir: Path) -> None:
    """No daemon at all: DaemonUnavailable after `wait` seconds, saying none was seen."""
    with pytest.raises(DaemonUnavailable, match=r"no hud daemon answered on \S+c\.sock within "
                                                r"0\.2s \(none was seen starting; last "
                                                r"FileNotFoundError"):
        open_socket(short_dir / "c.sock", wait=0.2)


def test_a_daemon_still_starting_at_the_timeout_is_said_to_be(short_dir: Path,
                                                             serve: Any) -> None:
    """A daemon alive but not listening when the time is up: the error says it is starting."""
    sock = short_dir / "c.sock"
    serve(ENVS / "hellos.py", sock, HELLOS_HANG="1")
    wait_until(lambda: (state := liveness.holder(sock)) is not None and state.held,
               "the daemon took its liveness lock")
    with pytest.raises(DaemonUnavailable, match=r"within 0\.3s \(it is still starting"):
        open_socket(sock, wait=0.3)


def test_a_daemon_that_dies_while_awaited_ends_the_wait(short_dir: Path, serve: Any) -> None:
    """SIGKILL the daemon during its initialize hook: the waiter stops waiting and says
    the daemon (by pid) exited while it was starting."""
    sock = short_dir / "c.sock"
    waiter = Waiter(sock, wait=3600)
    waiter.start()
    daemon = serve(ENVS / "hellos.py", sock, HELLOS_HANG="1")
    wait_until(lambda: (state := liveness.holder(sock)) is not None and state.held,
               "the daemon took its liveness lock")
    daemon.kill()
    daemon.wait(timeout=30)
    waiter.join(READY_TIMEOUT)
    assert not waiter.is_alive(), "the waiter kept waiting for a dead daemon"
    assert isinstance(waiter.error, DaemonUnavailable)
    assert f"the hud daemon (pid {daemon.pid}) for {sock} exited while it was starting" \
        in str(waiter.error)


def test_a_lock_left_before_the_wait_is_not_taken_for_a_death(short_dir: Path) -> None:
    """A lock file from a daemon that died earlier: the waiter keeps waiting (a new daemon
    may take it) until its timeout."""
    sock = short_dir / "c.sock"
    Path(liveness.lock_path(sock)).write_text("4242\n")
    os.utime(liveness.lock_path(sock), (time.time() - 60, time.time() - 60))
    with pytest.raises(DaemonUnavailable, match=r"within 0\.2s \(none was seen starting"):
        open_socket(sock, wait=0.2)
