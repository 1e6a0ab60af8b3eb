"""This process's stdin/stdout as one end of a socket: the pumps of `hud connect`.

`hud connect` (a plain bridge, or the `--mux` SSH server) runs as `docker exec -i ...`
and speaks over its stdin/stdout; these copy bytes between those and a socket, passing
end-of-stream on as a half-close each way. The daemon serving its connection on its own
stdio (hud.serve.attached) passes the private descriptors it moved them to instead.
"""

from __future__ import annotations

import contextlib
import os
import socket

_CHUNK = 1 << 16


def write_all(fd: int, data: bytes) -> None:
    """Write all of `data` to file descriptor `fd`."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def stdin_to_socket(sock: socket.socket, first: bytes = b"", fd: int = 0) -> None:
    """Copy `first` (stdin's bytes read already), then stdin (or `fd`), to `sock` until
    it ends (or the peer goes), then shut down writing."""
    try:
        if first:
            sock.sendall(first)
        while data := os.read(fd, _CHUNK):
            sock.sendall(data)
    except OSError:
        pass  # the peer went away: nothing more to send
    finally:
        with contextlib.suppress(OSError):  # already closed: the peer sees EOF either way
            sock.shutdown(socket.SHUT_WR)


def socket_to_stdout(sock: socket.socket, fd: int = 1) -> None:
    """Copy `sock` to stdout (or `fd`) until it ends (or that is closed: the host is
    gone)."""
    try:
        while data := sock.recv(_CHUNK):
            write_all(fd, data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RD)
