"""`hud serve`: run the runtime daemon (thin over hud.daemon)."""

from __future__ import annotations

import asyncio
import logging
import sys

import click

from hud.cli.options import reports_errors


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
        try:
            handlers.append(logging.FileHandler(log_file))
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
@click.option("--token", envvar="HUD_TOKEN", default=None,
              help="Require this token on TCP connections (or HUD_TOKEN).")
@click.option("--session-ttl", default=3600.0, show_default=True, type=float,
              help="Seconds a parked session (dropped connection, task in progress) is kept.")
@click.option("--max-frame", default=64 * 1024 * 1024, show_default=True, type=int,
              help="Largest accepted frame in bytes.")
@click.option("--log-file", default=None, type=click.Path(dir_okay=False),
              help="Also write the log here [default: /run/hud/serve.log as root].")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
@reports_errors
def serve(module: str | None, socket_path: str | None, tcp: str | None, token: str | None,
          session_ttl: float, max_frame: int, log_file: str | None, verbose: bool) -> None:
    """Load MODULE (a .py file, a directory with env.py, or pkg.mod:attr; default
    $HUD_ENV or the current directory) and serve its tasks until SIGTERM."""
    from pathlib import Path

    from hud.daemon import Daemon, DaemonConfig
    from hud.paths import default_log_path, default_socket_path

    address = _parse_tcp(tcp)
    if address is not None and address[0] not in ("127.0.0.1", "localhost", "::1") and not token:
        click.echo("warning: TCP on a non-loopback address without --token: anyone who can "
                   "reach it can grade tasks", err=True)
    log_path = log_file or default_log_path()
    if log_path is not None:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    _setup_logging(str(log_path) if log_path else None, verbose)
    config = DaemonConfig(
        spec=module,
        socket_path=Path(socket_path) if socket_path else default_socket_path(),
        tcp=address,
        token=token,
        session_ttl=session_ttl,
        max_frame=max_frame,
    )

    async def main() -> None:
        daemon = Daemon(config)
        await daemon.start()
        await daemon.serve_forever()

    asyncio.run(main())
