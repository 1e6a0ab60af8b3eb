"""Options and error handling shared by the commands that talk to a daemon.

Errors raised by the library become one `error: ...` line on stderr (plus a traceback
the daemon sent, when there is one) and exit code 1; click's usage errors exit 2.

A token never rides on argv: every process in the container, the agent's too, reads
`/proc/PID/cmdline`. `--token VALUE` is refused with a usage error; the token comes from
`--token-file PATH` or the HUD_TOKEN environment variable.
"""

from __future__ import annotations

import functools
import os
import stat
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from hud.errors import HudError, RemoteError

F = TypeVar("F", bound=Callable[..., Any])

TOKEN_ON_ARGV = (
    "--token VALUE puts the token on the command line, where every process in the "
    "container (the agent's too) reads it from /proc/PID/cmdline; pass --token-file PATH "
    "(a file only its owner can read) or set the HUD_TOKEN environment variable instead"
)


def refuse_token_on_argv(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    """Callback of a hidden --token option: a usage error (exit 2) that says why."""
    if value is not None:
        raise click.UsageError(TOKEN_ON_ARGV, ctx=ctx)


def read_token_file(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Callback of --token-file: the token in the file, without surrounding whitespace.

    Raises:
        click.BadParameter: the file cannot be read or is empty.
    """
    if value is None:
        return None
    try:
        with open(value, encoding="utf-8") as fh:
            mode = os.fstat(fh.fileno()).st_mode
            token = fh.read().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise click.BadParameter(f"cannot read {value}: {exc}", ctx=ctx, param=param) from None
    if not token:
        raise click.BadParameter(f"{value} is empty; write the token in it", ctx=ctx,
                                 param=param)
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        click.echo(f"warning: token file {value} is readable by other users (mode "
                   f"{stat.S_IMODE(mode):04o}); `chmod 600 {value}`", err=True)
    return token


def token_options(help_file: str) -> Callable[[F], F]:
    """--token-file PATH (passed as `token`) and a hidden --token that is refused."""

    def decorate(fn: F) -> F:
        fn = click.option("--token", "token_on_argv", hidden=True, default=None,
                          expose_value=False, is_eager=True, callback=refuse_token_on_argv)(fn)
        fn = click.option("--token-file", "token", default=None, metavar="PATH",
                          type=click.Path(dir_okay=False), callback=read_token_file,
                          help=help_file)(fn)
        return fn

    return decorate


def connection_options(fn: F) -> F:
    """--socket / --url / --token-file, passed to the command as keyword arguments
    (`token` is the file's content, or None: the client then uses HUD_TOKEN)."""
    fn = token_options("Read the token for a TCP daemon from this file (or set HUD_TOKEN; "
                       "never pass a token on the command line).")(fn)
    fn = click.option(
        "--url", default=None, help="Daemon address tcp://HOST:PORT instead of the socket."
    )(fn)
    fn = click.option(
        "--socket",
        "socket_path",
        envvar="HUD_SOCKET",
        default=None,
        type=click.Path(dir_okay=False),
        help="Control socket [default: /run/hud/control.sock as root, else per user].",
    )(fn)
    return fn


def fail(message: str, detail: str | None = None) -> None:
    click.echo(f"error: {message}", err=True)
    if detail:
        click.echo(detail.rstrip(), err=True)
    sys.exit(1)


def reports_errors(fn: F) -> F:
    """Turn HudError into `error: ...` on stderr and exit 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except RemoteError as exc:
            detail = None
            if isinstance(exc.data, dict) and exc.data.get("traceback"):
                detail = exc.data["traceback"]
            fail(str(exc), detail)
        except HudError as exc:
            fail(str(exc), getattr(exc, "traceback", None) or None)

    return wrapper  # type: ignore[return-value]
