"""`hud connect`: bridge stdin/stdout to the control channel, or to one capability.

This is what makes the transport exec-only: the host runs
`docker exec -i run1 hud connect` (or `... --tunnel shell` as an ssh ProxyCommand) and
speaks the protocol over the exec's pipes. No published port, works with
`--network none`, and the same over `kubectl exec`.

`--wait SECONDS` makes one exec enough for a container that is still starting: the
command waits (bounded) for the daemon's socket to accept, in the container, then
bridges as usual. A host therefore spawns one `hud connect --wait` right after `docker
run` and writes its first request at once; it is answered as soon as the daemon is
ready. A timeout, or the daemon dying while awaited, is one `error: ...` line on stderr
(with the daemon log's tail) and exit 1. Without `--wait` nothing changes: a daemon that
does not answer is an error at once (OpenSSH's ProxyCommand and Playwright rely on it).
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import threading

import click

from hud import wire
from hud.cli.options import connection_options, fail
from hud.clients.control import open_socket

_CHUNK = 1 << 16


def _stdin_to_socket(sock: socket.socket) -> None:
    try:
        while True:
            data = os.read(0, _CHUNK)
            if not data:
                break
            sock.sendall(data)
    except OSError:
        pass  # the peer went away: nothing more to send
    finally:
        with contextlib.suppress(OSError):  # already closed: the peer sees EOF either way
            sock.shutdown(socket.SHUT_WR)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _open_tunnel(sock: socket.socket, name: str, token: str | None) -> bytes:
    """Send tunnel.open; return the bytes that arrived after the reply line.

    Raises:
        RemoteError: the daemon refused (unknown capability, capability down).
        ProtocolError: the reply is not a JSON-RPC 2.0 reply to tunnel.open.
    """
    request = wire.tunnel_request(name, token or os.environ.get("HUD_TOKEN"))
    sock.sendall(wire.encode(request))
    buf = b""
    while b"\n" not in buf:
        chunk = sock.recv(_CHUNK)
        if not chunk:
            fail(f"the daemon closed the connection before answering tunnel.open {name!r}")
        buf += chunk
    line, _, rest = buf.partition(b"\n")
    wire.read_reply(line, request["id"], method=f"tunnel.open {name!r}")
    return rest


@click.command()
@click.option("--tunnel", "tunnel_name", default=None, metavar="NAME",
              help="Pipe raw bytes to capability NAME (e.g. shell) instead of the control channel.")
@click.option("--wait", "wait", default=0.0, type=click.FloatRange(min=0), metavar="SECONDS",
              help="Wait up to SECONDS for a daemon that is still starting, then bridge "
                   "[default: 0, fail at once].")
@connection_options
def connect(tunnel_name: str | None, wait: float, socket_path: str | None, url: str | None,
            token: str | None) -> None:
    """Bridge stdin/stdout to the daemon (use with `docker exec -i CONTAINER hud connect`)."""
    sock = open_socket(socket_path, url, wait=wait)
    try:
        pending = _open_tunnel(sock, tunnel_name, token) if tunnel_name else b""
        if pending:
            _write_all(1, pending)
        threading.Thread(target=_stdin_to_socket, args=(sock,), daemon=True).start()
        while True:
            data = sock.recv(_CHUNK)
            if not data:
                break
            _write_all(1, data)
    except (BrokenPipeError, ConnectionError):
        pass
    finally:
        sock.close()
    sys.stdout.flush()
