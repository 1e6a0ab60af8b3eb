"""`hud connect --tunnel` reads the tunnel.open reply through hud.wire: errors are errors."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest


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
