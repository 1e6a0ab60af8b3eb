"""The sync control client: the daemon log is quoted for the default socket only; replies
go through hud.wire."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from hud import wire
from hud.clients.control import ControlClient, daemon_log, open_socket
from hud.errors import DaemonUnavailable, ProtocolError, RemoteError

LOG_LINE = "EnvLoadError: env.py line 3 exploded"


class Peer:
    """A real unix-socket listener that answers each request line with scripted bytes;
    `None` in the script closes the connection instead of answering."""

    def __init__(self, path: Path, answers: list[bytes | None]) -> None:
        self.path = path
        self.answers = answers
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(path))
        self.listener.listen(1)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        with conn, conn.makefile("rb") as lines:
            for answer in self.answers:
                if not lines.readline() or answer is None:
                    return
                conn.sendall(answer)

    def close(self) -> None:
        self.listener.close()
        self.thread.join(10)


@pytest.fixture
def daemon_env(short_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """HUD_SOCKET (the default socket) names a path in short_dir; HUD_LOG holds a log."""
    log = short_dir / "serve.log"
    log.write_text("hud serve starting\n" + LOG_LINE + "\n")
    monkeypatch.setenv("HUD_SOCKET", str(short_dir / "control.sock"))
    monkeypatch.setenv("HUD_LOG", str(log))
    return short_dir


@pytest.fixture
def peer() -> Iterator[list[Peer]]:
    """Peers started by a test, closed after it."""
    peers: list[Peer] = []
    yield peers
    for one in peers:
        one.close()


def test_no_daemon_on_the_default_socket_quotes_its_log(daemon_env: Path) -> None:
    """Nothing on the default socket: the error ends with the daemon log's last lines."""
    with pytest.raises(DaemonUnavailable, match=f"(?s)last lines of the daemon log:\n.*{LOG_LINE}"):
        open_socket()


def test_socket_naming_the_default_path_still_quotes_the_log(daemon_env: Path) -> None:
    """`--socket` spelling the default socket's path is the default daemon: log quoted."""
    with pytest.raises(DaemonUnavailable, match=LOG_LINE):
        open_socket(str(daemon_env / "." / "control.sock"))


def test_no_daemon_on_another_socket_quotes_no_log(daemon_env: Path) -> None:
    """`--socket` naming another daemon: the default daemon's log is not quoted."""
    with pytest.raises(DaemonUnavailable, match=r"no hud daemon answers on .*other\.sock") as caught:
        open_socket(daemon_env / "other.sock")
    assert "daemon log" not in str(caught.value) and LOG_LINE not in str(caught.value)


def test_no_daemon_at_a_url_quotes_no_log(daemon_env: Path) -> None:
    """`--url` names a daemon elsewhere: no log quoted, for tcp as for a unix url."""
    assert daemon_log(url="tcp://127.0.0.1:1") is None
    with pytest.raises(DaemonUnavailable) as caught:
        open_socket(url=f"unix://{daemon_env / 'other.sock'}")
    assert LOG_LINE not in str(caught.value)
    assert daemon_log(url=f"unix://{daemon_env / 'control.sock'}") == daemon_env / "serve.log"


def test_a_daemon_that_hangs_up_on_the_default_socket_quotes_its_log(
    daemon_env: Path, peer: list[Peer]
) -> None:
    """The default daemon closes mid-call (it crashed): its log is quoted."""
    peer.append(Peer(daemon_env / "control.sock", [None]))
    with ControlClient.connect() as client, pytest.raises(
        DaemonUnavailable, match=f"(?s)closed the connection during hello.*daemon log:\n.*{LOG_LINE}"
    ):
        client.call("hello")


def test_a_daemon_that_hangs_up_on_another_socket_quotes_no_log(
    daemon_env: Path, peer: list[Peer]
) -> None:
    """Another daemon closes mid-call: the default daemon's log is not quoted."""
    peer.append(Peer(daemon_env / "other.sock", [None]))
    with ControlClient.connect(daemon_env / "other.sock") as client, pytest.raises(
        DaemonUnavailable, match="closed the connection during hello"
    ) as caught:
        client.call("hello")
    assert LOG_LINE not in str(caught.value)


def test_the_cli_quotes_no_log_for_another_socket(daemon_env: Path) -> None:
    """`hud task list --socket OTHER` prints no log tail; without --socket it does."""
    env = {**os.environ, "PATH": "/usr/bin:/bin"}
    argv = [sys.executable, "-m", "hud.cli.main", "task", "list"]
    other = subprocess.run([*argv, "--socket", str(daemon_env / "other.sock")], env=env,
                           capture_output=True, text=True, timeout=60)
    default = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    assert other.returncode == 1 and "no hud daemon answers" in other.stderr
    assert LOG_LINE not in other.stderr
    assert default.returncode == 1 and LOG_LINE in default.stderr


def test_calls_number_their_requests_and_read_results(short_dir: Path, peer: list[Peer]) -> None:
    """Each call sends the next id; a reply with that id gives its result."""
    peer.append(Peer(short_dir / "d.sock", [
        wire.encode(wire.result_frame(1, {"n": 1})), wire.encode(wire.result_frame(2, {"n": 2}))]))
    with ControlClient.connect(short_dir / "d.sock") as client:
        assert client.call("tasks.list") == {"n": 1}
        assert client.call("tasks.list") == {"n": 2}


def test_an_error_reply_is_a_remote_error(short_dir: Path, peer: list[Peer]) -> None:
    """The daemon's error frame arrives as RemoteError with its code and data."""
    peer.append(Peer(short_dir / "d.sock", [wire.encode(wire.error_frame(
        1, wire.TASK_ERROR, "task 'add' raised ValueError", {"traceback": "tb"}))]))
    with ControlClient.connect(short_dir / "d.sock") as client, pytest.raises(
        RemoteError, match="task 'add' raised ValueError"
    ) as caught:
        client.call("tasks.start", {"id": "add"})
    assert caught.value.code == wire.TASK_ERROR and caught.value.data == {"traceback": "tb"}


def test_a_reply_off_the_protocol_is_a_protocol_error(short_dir: Path, peer: list[Peer]) -> None:
    """Something that is not a hud daemon on the socket: a ProtocolError naming what came."""
    peer.append(Peer(short_dir / "d.sock", [b"220 smtp.example ESMTP\r\n"]))
    with ControlClient.connect(short_dir / "d.sock") as client, pytest.raises(
        ProtocolError, match=r"answered hello with a line that is not JSON.*220 smtp"
    ) as caught:
        client.call("hello")
    assert caught.value.code == wire.PARSE_ERROR
