"""The click options that configure a model agent: endpoint, key, wire API, timeouts, streaming.

    --base-url URL           the provider's (or your own server's) API root
    --api-key-env NAME       read the key from $NAME
    --api responses|chat     which OpenAI wire API (default: chat with --base-url, else by model id)
    --request-timeout SECS   seconds per API request (streaming: per wait for content) [300]
    --max-retries N          retries of a failed request (429, 5xx, connection, timeout) [2]
    --stream                 streaming requests

Only the options given reach `create_agent`, so an offline agent (oracle, nop, replay)
given one is told it takes none, and a harness keeps its own defaults otherwise.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

#: an environment variable's name (so a key pasted where its name belongs is refused unechoed)
VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
#: the most retries worth asking for: each may wait a whole request timeout
MAX_RETRIES = 20


def _url(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not re.fullmatch(r"https?://[^\s/]+(/\S*)?", value):
        raise click.BadParameter(f"{value!r} is not an http:// or https:// URL, e.g. "
                                 f"http://127.0.0.1:8000/v1", ctx=ctx, param=param)
    return value


def _variable(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not VARIABLE.fullmatch(value):
        # never echoed: a careless user may have pasted the key itself here
        raise click.BadParameter("expects the NAME of an environment variable (letters, "
                                 "digits, _), not its value: export NAME=KEY and pass NAME",
                                 ctx=ctx, param=param)
    return value


def _seconds(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    if value is not None and not (math.isfinite(value) and value > 0):
        raise click.BadParameter(f"{value!r} is not a positive, finite number of seconds",
                                 ctx=ctx, param=param)
    return value

#: option name -> create_agent keyword
KEYWORDS = {"base_url": "base_url", "api_key_env": "api_key_env", "api": "api",
            "request_timeout": "timeout", "max_retries": "max_retries", "stream": "stream"}


def model_options(fn: F) -> F:
    """Add the model agent options to a command (they arrive as keyword arguments)."""
    options = [
        click.option("--base-url", default=None, metavar="URL", callback=_url,
                     help="Model agents: the API root, e.g. http://127.0.0.1:8000/v1 for "
                          "a local server (which then needs no key)."),
        click.option("--api-key-env", default=None, metavar="NAME", callback=_variable,
                     help="Model agents: read the key from this environment variable "
                          "[default: the provider's, e.g. ANTHROPIC_API_KEY]."),
        click.option("--api", default=None, type=click.Choice(["responses", "chat"]),
                     help="OpenAI wire API [default: chat with --base-url or "
                          "openai-compatible:MODEL, else responses for gpt-*/o*]."),
        click.option("--request-timeout", default=None, metavar="SECONDS", type=float,
                     callback=_seconds,
                     help="Model agents: hud's limit per API request: the whole response; "
                          "with --stream, each wait for content (pings do not count), 6x "
                          "in all [default: 300]."),
        click.option("--max-retries", default=None, type=click.IntRange(0, MAX_RETRIES),
                     help="Model agents: retries of a failed API request (429, 5xx, "
                          "connection errors, timeouts) [default: 2]."),
        click.option("--stream", is_flag=True, default=None,
                     help="Model agents: streaming requests, so a long generation is not "
                          "cut by a proxy's idle timeout."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def model_config(given: dict[str, Any]) -> dict[str, Any]:
    """The `create_agent` keywords for the model options that were given (not None)."""
    return {KEYWORDS[name]: value for name, value in given.items()
            if name in KEYWORDS and value is not None}
