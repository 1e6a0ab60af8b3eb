"""The click options shared by the commands that talk to a daemon.

Errors raised by the library become one `error: ...` line on stderr (plus a traceback
the daemon sent, when there is one) and exit code 1 (`report`, applied once by the `hud`
group for every command; it and `fail` live in hud.cli.plain, click-free, and are
re-exported here); click's usage errors exit 2.

A token never rides on argv: every process in the container, the agent's too, reads
`/proc/PID/cmdline`. `--token VALUE` is refused with a usage error; the token comes from
`--token-file PATH` or the HUD_TOKEN environment variable.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from hud.cli.plain import TokenFileError, fail, report, token_from_file

__all__ = ["TOKEN_ON_ARGV", "connection_options", "fail", "read_token_file",
           "refuse_token_on_argv", "report", "token_options"]

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
        token, warning = token_from_file(value)
    except TokenFileError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None
    if warning:
        click.echo(warning, err=True)
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
