"""`hud serve`: run the runtime daemon (thin over hud.serve.daemon).

The TCP token comes from `--token-file PATH` or HUD_TOKEN, never from argv (see
hud.cli.options); the daemon then removes HUD_TOKEN from its own environment.
"""

from __future__ import annotations

import asyncio
import logging
import sys

import click

from hud.cli.options import token_options


def _parse_tcp(value: str | None) -> tuple[str, int] | None:
    if value is None:
        return None
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise click.BadParameter(f"expected HOST:PORT, got {value!r}", param_hint="--tcp")
    return host.strip("[]") or "127.0.0.1", int(port)


def _setup_logging(log_file: str | None, verbose: bool) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file:
        try:  # backslashreplace: a lone surrogate from a client never breaks a log line
            handlers.append(logging.FileHandler(log_file, encoding="utf-8",
                                                errors="backslashreplace"))
        except OSError as exc:
            click.echo(f"warning: cannot write log file {log_file}: {exc}", err=True)
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s hud serve %(levelname)s %(name)s: %(message)s",
        handlers=handlers,
        force=True,
    )


@click.command()
@click.argument("module", required=False)
@click.option("--socket", "socket_path", envvar="HUD_SOCKET", default=None,
              type=click.Path(dir_okay=False),
              help="Unix socket [default: /run/hud/control.sock as root, else per user].")
@click.option("--tcp", default=None, metavar="HOST:PORT", help="Also listen on TCP.")
@token_options("Require the token in this file on TCP connections (or set HUD_TOKEN; "
               "never pass a token on the command line).")
@click.option("--max-connections", default=64, show_default=True, type=click.IntRange(min=1),
              help="TCP connections served at once; one more gets an error and is closed.")
@click.option("--idle-timeout", default=0.0, show_default=True, type=click.FloatRange(min=0),
              help="Close a TCP connection that sends no complete frame for this many "
                   "seconds (0: never).")
@click.option("--auth-timeout", default=10.0, show_default=True,
              type=click.FloatRange(min=0, min_open=True),
              help="With a token: seconds a TCP connection has to send its first frame.")
@click.option("--session-ttl", default=3600.0, show_default=True, type=float,
              help="Seconds a parked session (dropped connection, task in progress) is kept.")
@click.option("--max-frame", default=64 * 1024 * 1024, show_default=True, type=int,
              help="Largest accepted frame in bytes.")
@click.option("--log-file", default=None, type=click.Path(dir_okay=False),
              help="Also write the log here [default: /run/hud/serve.log as root].")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def serve(module: str | None, socket_path: str | None, tcp: str | None, token: str | None,
          max_connections: int, idle_timeout: float, auth_timeout: float, session_ttl: float,
          max_frame: int, log_file: str | None, verbose: bool) -> None:
    """Load MODULE (a .py file, a directory with env.py, or pkg.mod:attr; default
    $HUD_ENV or the current directory) and serve its tasks until SIGTERM."""
    from pathlib import Path

    from hud.paths import default_log_path, default_socket_path
    from hud.serve.daemon import Daemon, DaemonConfig, protect_from_oom, take_secret_env

    from_env = take_secret_env("HUD_TOKEN")  # always: no child of the daemon inherits it
    token = token or from_env
    address = _parse_tcp(tcp)
    if address is not None and address[0] not in ("127.0.0.1", "localhost", "::1") and not token:
        click.echo("warning: TCP on a non-loopback address without a token (--token-file or "
                   "HUD_TOKEN): anyone who can reach it can grade tasks", err=True)
    log_path = log_file or default_log_path()
    if log_path is not None:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    _setup_logging(str(log_path) if log_path else None, verbose)
    config = DaemonConfig(
        spec=module,
        socket_path=Path(socket_path) if socket_path else default_socket_path(),
        tcp=address,
        token=token,
        max_connections=max_connections,
        idle_timeout=idle_timeout or None,
        auth_timeout=auth_timeout,
        session_ttl=session_ttl,
        max_frame=max_frame,
    )

    protect_from_oom()

    async def main() -> None:
        daemon = Daemon(config)
        await daemon.start()
        await daemon.serve_forever()

    asyncio.run(main())
