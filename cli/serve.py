"""`hud serve`: run the runtime daemon (thin over hud.cli.serving and hud.serve.daemon).

The TCP token comes from `--token-file PATH` or HUD_TOKEN, never from argv (see
hud.cli.options); the daemon then removes HUD_TOKEN from its own environment.
"""

from __future__ import annotations

import click

from hud.cli import serving
from hud.cli.options import token_options


def _parse_tcp(value: str | None) -> tuple[str, int] | None:
    if value is None:
        return None
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise click.BadParameter(f"expected HOST:PORT, got {value!r}", param_hint="--tcp")
    return host.strip("[]") or "127.0.0.1", int(port)


@click.command()
@click.argument("module", required=False)
@click.option("--socket", "socket_path", envvar="HUD_SOCKET", default=None,
              type=click.Path(dir_okay=False),
              help="Unix socket [default: /run/hud/control.sock as root, else per user].")
@click.option("--tcp", default=None, metavar="HOST:PORT", help="Also listen on TCP.")
@token_options("Require the token in this file on TCP connections (or set HUD_TOKEN; "
               "never pass a token on the command line).")
@click.option("--max-connections", default=serving.MAX_CONNECTIONS, show_default=True,
              type=click.IntRange(min=1),
              help="TCP connections served at once; one more gets an error and is closed.")
@click.option("--idle-timeout", default=serving.IDLE_TIMEOUT, show_default=True,
              type=click.FloatRange(min=0),
              help="Close a TCP connection that sends no complete frame for this many "
                   "seconds (0: never).")
@click.option("--auth-timeout", default=serving.AUTH_TIMEOUT, show_default=True,
              type=click.FloatRange(min=0, min_open=True),
              help="With a token: seconds a TCP connection has to send its first frame.")
@click.option("--session-ttl", default=serving.SESSION_TTL, show_default=True, type=float,
              help="Seconds a parked session (dropped connection, task in progress) is kept.")
@click.option("--max-frame", default=serving.MAX_FRAME, show_default=True, type=int,
              help="Largest accepted frame in bytes.")
@click.option("--log-file", default=None, type=click.Path(dir_okay=False),
              help="Also write the log here [default: /run/hud/serve.log as root].")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def serve(module: str | None, socket_path: str | None, tcp: str | None, token: str | None,
          max_connections: int, idle_timeout: float, auth_timeout: float, session_ttl: float,
          max_frame: int, log_file: str | None, verbose: bool) -> None:
    """Load MODULE (a .py file, a directory with env.py, or pkg.mod:attr; default
    $HUD_ENV or the current directory) and serve its tasks until SIGTERM."""
    serving.run(module, socket_path, tcp=_parse_tcp(tcp), token=token,
                max_connections=max_connections, idle_timeout=idle_timeout,
                auth_timeout=auth_timeout, session_ttl=session_ttl, max_frame=max_frame,
                log_file=log_file, verbose=verbose)
