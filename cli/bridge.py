"""What `hud connect` does, without click: the byte bridge, and the `--mux` server.

Both hud.cli.connect (the click command) and hud.cli.fast (the per-exec fast path) run
this, so `docker exec -i C hud connect --mux --wait S`, once per rollout, does not pay
for importing click.
"""

from __future__ import annotations

import os
import socket
import sys
import threading

from hud.clients.control import open_socket, open_tunnel
from hud.stdio import socket_to_stdout, stdin_to_socket, write_all


def _serve_mux(socket_path: str | None, url: str | None, token: str | None,
               wait: float) -> None:
    """Serve the multiplexed connection over stdin/stdout until it ends: control lines
    first, SSH from when the host starts it (hud.serve.upgrade), or SSH at once for a
    host that starts with it."""
    from hud.serve.upgrade import bridge_until_ssh, first_bytes, ssh_at_once

    first = first_bytes()
    if not first:
        return
    control = None
    if not ssh_at_once(first):
        control = open_socket(socket_path, url, wait=wait)
        bridged = bridge_until_ssh(control, first)
        if bridged is not None:
            first, asked = bridged
            if asked and not first:
                first = first_bytes()  # the host's identification string
        if bridged is None or not first:
            control.close()
            return
        wait = 0.0  # the daemon is up
    _serve_ssh(first, dialer_args=(socket_path, url, token, wait), control=control)


def _serve_ssh(first: bytes, dialer_args: tuple[str | None, str | None, str | None, float],
               control: socket.socket | None) -> None:
    """The SSH server of hud.serve.mux, its client's first bytes read already."""
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
    asyncio.run(serve_stdio(Dialer(*dialer_args, control=control), first))


def bridge(tunnel_name: str | None, wait: float, mux: bool, socket_path: str | None,
           url: str | None, token: str | None) -> None:
    """Bridge stdin/stdout to the daemon's control channel, to capability `tunnel_name`,
    or (`mux`) serve every stream over them; the caller has checked that `mux` and
    `tunnel_name` are not both given.

    Raises:
        DaemonUnavailable: no daemon answers (within `wait`).
        RemoteError: the daemon refused the tunnel.
    """
    if mux:
        _serve_mux(socket_path, url, token, wait)
        return
    sock = open_socket(socket_path, url, wait=wait)
    try:
        pending = open_tunnel(sock, tunnel_name, token or os.environ.get("HUD_TOKEN")) \
            if tunnel_name else b""
        if pending:
            write_all(1, pending)
        threading.Thread(target=stdin_to_socket, args=(sock,), daemon=True).start()
        socket_to_stdout(sock)
    except (BrokenPipeError, ConnectionError):
        pass
    finally:
        sock.close()
    sys.stdout.flush()
