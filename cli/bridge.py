"""What `hud connect` does, without click: the byte bridge, and the `--mux` server
(hud.serve.upgrade.serve_connection).

Both hud.cli.connect (the click command) and hud.cli.fast (the per-exec fast path) run
this, so `docker exec -i C hud connect --mux --wait S`, once per rollout, does not pay
for importing click.
"""

from __future__ import annotations

import os
import sys
import threading

from hud.clients.control import open_socket, open_tunnel
from hud.stdio import socket_to_stdout, stdin_to_socket, write_all


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
        from hud.serve.upgrade import serve_connection

        serve_connection(socket_path, url, token, wait)
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
