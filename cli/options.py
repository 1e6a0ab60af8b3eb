"""Options and error handling shared by the commands that talk to a daemon.

Errors raised by the library become one `error: ...` line on stderr (plus a traceback
the daemon sent, when there is one) and exit code 1; click's usage errors exit 2.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from hud.errors import HudError, RemoteError

F = TypeVar("F", bound=Callable[..., Any])


def connection_options(fn: F) -> F:
    """--socket / --url / --token, passed to the command as keyword arguments."""
    fn = click.option(
        "--token", envvar="HUD_TOKEN", default=None, help="Token for a TCP daemon (or HUD_TOKEN)."
    )(fn)
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
