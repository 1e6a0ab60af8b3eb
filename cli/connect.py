"""`hud connect`: bridge stdin/stdout to the control channel, or to one capability.

This is what makes the transport exec-only: the host runs
`docker exec -i run1 hud connect` (or `... --tunnel shell` as an ssh ProxyCommand) and
speaks the protocol over the exec's pipes. No published port, works with
`--network none`, and the same over `kubectl exec`.

`--mux` carries the control channel and any number of tunnels over one exec, as SSH
channels (hud.serve.mux); the docker placement and `hud.attach` use it. It starts as
plain control lines and switches to SSH when the host starts it (hud.serve.upgrade).

`--wait SECONDS` makes one exec enough for a container that is still starting: the
command waits (bounded) for the daemon's socket to accept, in the container, then
bridges as usual. A host therefore spawns one `hud connect --wait` right after `docker
run` and writes its first request at once; it is answered as soon as the daemon is
ready. A timeout, or the daemon dying while awaited, is one `error: ...` line on stderr
(with the daemon log's tail) and exit 1. Without `--wait` nothing changes: a daemon that
does not answer is an error at once (OpenSSH's ProxyCommand and Playwright rely on it).
"""

from __future__ import annotations

import click

from hud.cli.bridge import bridge
from hud.cli.options import connection_options


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
    if mux and tunnel_name:
        raise click.UsageError("--mux carries every tunnel already; drop --tunnel")
    bridge(tunnel_name, wait, mux, socket_path, url, token)
