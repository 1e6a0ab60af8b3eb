"""`hud connect`: --tunnel reads the tunnel.open reply through hud.wire (errors are
errors); --wait waits, bounded, for a daemon still starting; plain mode fails at once."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hud.liveness import holder
from tests.conftest import ENVS, READY_TIMEOUT


@pytest.fixture
def answers_garbage(short_dir: Path) -> Iterator[Path]:
    """A unix socket whose listener answers the first line with an ssh banner."""
    path = short_dir / "not-hud.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(1)

    def serve() -> None:
        conn, _ = listener.accept()
        with conn, conn.makefile("rb") as lines:
            lines.readline()
            conn.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield path
    listener.close()
    thread.join(10)


def test_a_tunnel_reply_that_is_not_json_fails_cleanly(answers_garbage: Path) -> None:
    """Something other than a hud daemon on the socket: exit 1 and one error line, no
    Python traceback and no bytes passed through."""
    done = subprocess.run(
        [sys.executable, "-m", "hud.cli.main", "connect", "--socket", str(answers_garbage),
         "--tunnel", "shell"],
        env={**os.environ, "PATH": "/usr/bin:/bin"}, input=b"", capture_output=True, timeout=60)
    assert done.returncode == 1 and done.stdout == b""
    assert done.stderr.decode().startswith("error: the hud daemon answered tunnel.open 'shell' "
                                           "with a line that is not JSON")
    assert b"Traceback" not in done.stderr


def _connect(*args: str, **env: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "hud.cli.main", "connect", *args],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, **env})


HELLO = b'{"jsonrpc": "2.0", "id": 1, "method": "hello", "params": {}}\n'


def test_connect_without_wait_fails_at_once(short_dir: Path) -> None:
    """Plain `hud connect` and no daemon: one error line, exit 1, as before --wait."""
    done = subprocess.run([sys.executable, "-m", "hud.cli.main", "connect", "--socket",
                           str(short_dir / "none.sock")], input=b"", capture_output=True,
                          timeout=60)
    assert done.returncode == 1 and done.stdout == b""
    assert done.stderr.decode().startswith(f"error: no hud daemon answers on "
                                           f"{short_dir / 'none.sock'} (FileNotFoundError")


def test_connect_wait_bridges_to_a_daemon_started_after_it(short_dir: Path,
                                                           start_daemon: Any) -> None:
    """`hud connect --wait` spawned before `hud serve`, its hello written at once: the
    reply comes through once the daemon is up."""
    proc = _connect("--socket", str(short_dir / "d0.sock"), "--wait", "120")  # start_daemon's
    try:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(HELLO)
        proc.stdin.flush()
        start_daemon(str(ENVS / "letters.py"))
        reply = json.loads(proc.stdout.readline())
        assert reply["id"] == 1 and reply["result"]["env"]["name"] == "letter-count"
    finally:
        proc.kill()
        proc.communicate(timeout=30)


def test_connect_wait_gives_up_with_one_error_line(short_dir: Path) -> None:
    """No daemon within --wait: exit 1, one `error:` line with the daemon log's tail, no
    traceback, nothing on stdout."""
    log = short_dir / "serve.log"
    log.write_text("hud serve: the last thing the daemon said\n")
    sock = short_dir / "none.sock"
    proc = _connect("--wait", "0.3", HUD_SOCKET=str(sock), HUD_LOG=str(log))
    out, err = proc.communicate(b"", timeout=60)
    assert proc.returncode == 1 and out == b""
    text = err.decode()
    assert text.startswith(f"error: no hud daemon answered on {sock} within 0.3s")
    assert "hud serve: the last thing the daemon said" in text and "Traceback" not in text


def test_connect_wait_reports_a_daemon_that_died_while_awaited(short_dir: Path) -> None:
    """The daemon is killed in its initialize hook: connect stops waiting, exit 1."""
    sock = short_dir / "c.sock"
    proc = _connect("--socket", str(sock), "--wait", "3600")
    daemon = subprocess.Popen(
        [sys.executable, "-m", "hud.cli.main", "serve", str(ENVS / "hellos.py"), "--socket",
         str(sock), "--log-file", str(short_dir / "serve.log")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "HELLOS_HANG": "1"})
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while not ((state := holder(sock)) is not None and state.held):
            assert time.monotonic() < deadline, "the daemon never took its liveness lock"
            time.sleep(0.01)
        daemon.kill()
        daemon.wait(timeout=30)
        out, err = proc.communicate(b"", timeout=60)
    finally:
        daemon.kill()
        proc.kill()
        daemon.wait(timeout=30)
        proc.wait(timeout=30)
    assert proc.returncode == 1 and out == b""
    assert err.decode().startswith(f"error: the hud daemon (pid {daemon.pid}) for {sock} "
                                   f"exited while it was starting")
