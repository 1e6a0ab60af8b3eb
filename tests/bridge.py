"""A stand-in for `docker exec -i run1 hud connect --tunnel NAME`: stdin/stdout <-> a TCP port."""

from __future__ import annotations

import sys

SCRIPT = r"""
import socket, sys, threading
sock = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
def up():
    while data := sys.stdin.buffer.read1(65536):
        sock.sendall(data)
    sock.shutdown(socket.SHUT_WR)
threading.Thread(target=up, daemon=True).start()
while data := sock.recv(65536):
    sys.stdout.buffer.write(data); sys.stdout.buffer.flush()
"""


def bridge_argv(port: int | str) -> list[str]:
    """argv of a process that pipes its stdin/stdout to 127.0.0.1:`port`."""
    return [sys.executable, "-c", SCRIPT, str(port)]
