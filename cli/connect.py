"""`hud connect`: bridge stdin/stdout to the control channel, or to one capability.

This is what makes the transport exec-only: the host runs
`docker exec -i run1 hud connect` (or `... --tunnel shell` as an ssh ProxyCommand) and
speaks the protocol over the exec's pipes. No published port, works with
`--network none`, and the same over `kubectl exec`.

`--mux` carries the control channel and any number of tunnels over one exec, as SSH
channels (hud.serve.mux); the docker placement and `hud.attach` use it.

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

from hud.cli.options import connection_options
from hud.clients.control import open_socket, open_tunnel

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


def _serve_mux(socket_path: str | None, url: str | None, token: str | None,
               wait: float) -> None:
    """Serve the multiplexed connection (hud.serve.mux) over stdin/stdout until it ends."""
    import asyncio
    import ctypes.util

    # asyncssh probes for liboqs (post-quantum kex) with find_library, two `ldconfig -p`
    # runs (~13 ms on every exec); the mux offers curve25519 only, so skip the probe in
    # this process
    find_library = ctypes.util.find_library
    ctypes.util.find_library = lambda name: None if name in ("oqs", "liboqs") \
        else find_library(name)
    try:
        from hud.serve.mux import Dialer, serve_stdio
    finally:
        ctypes.util.find_library = find_library
    asyncio.run(serve_stdio(Dialer(socket_path, url, token, wait)))


@click.command()
@click.option("--tunnel", "tunnel_name", default=None, metavar="NAME",
              help="Pipe raw bytes to capability NAME (e.g. shell) instead of the control channel.")
@click.option("--wait", "wait", default=0.0, type=click.FloatRange(min=0), metavar="SECONDS",
              help="Wait up to SECONDS for a daemon that is still starting, then bridge "
                   "[default: 0, fail at once].")
@click.option("--mux", is_flag=True,
              help="Carry the control channel and any number of tunnels at once, as SSH "
                   "channels over stdin/stdout (what hud's docker placement uses).")
@connection_options
def connect(tunnel_name: str | None, wait: float, mux: bool, socket_path: str | None,
            url: str | None, token: str | None) -> None:
    """Bridge stdin/stdout to the daemon (use with `docker exec -i CONTAINER hud connect`)."""
    if mux:
        if tunnel_name:
            raise click.UsageError("--mux carries every tunnel already; drop --tunnel")
        _serve_mux(socket_path, url, token, wait)
        return
    sock = open_socket(socket_path, url, wait=wait)
    try:
        pending = open_tunnel(sock, tunnel_name, token or os.environ.get("HUD_TOKEN")) \
            if tunnel_name else b""
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
