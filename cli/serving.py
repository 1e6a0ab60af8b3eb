"""What `hud serve` does once its arguments are parsed: logging, the daemon, its loop.

Click-free, so that the click command (hud.cli.serve) and the fast path (hud.cli.fast)
run the same code; the defaults of `run` are the command's defaults (a test checks).

Start-up is mostly imports (asyncio, hud's modules, the environment's code; pydantic
only when a template's arguments need it), which allocate thousands of objects that live
as long as the daemon; the cyclic garbage collector would walk them over and over while
they are made (~20 ms of a ~150 ms start in a hud image when pydantic was always
loaded). So `run` pauses automatic collection until the daemon listens, then moves
everything made so far out of the collector's way
(`gc.freeze`) and restores collection; at the first watchdog interval those objects
rejoin the oldest generation (`gc.unfreeze`), so start-up garbage is still collected
and, after that, the collector holds what it would have anyway. An environment that
sets thresholds or disables the collector itself keeps its setting.
"""

from __future__ import annotations

import contextlib
import gc
import sys
from typing import TYPE_CHECKING

from hud.cli.plain import echo

if TYPE_CHECKING:
    import logging

#: defaults of `hud serve` (the click options show the same values)
MAX_CONNECTIONS = 64
IDLE_TIMEOUT = 0.0
AUTH_TIMEOUT = 10.0
SESSION_TTL = 3600.0
MAX_FRAME = 64 * 1024 * 1024
#: seconds after listening before start-up objects rejoin the collector's generations
UNFREEZE_AFTER = 5.0


def _setup_logging(log_file: str | None, verbose: bool) -> None:
    import logging

    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file:
        try:  # backslashreplace: a lone surrogate from a client never breaks a log line
            handlers.append(logging.FileHandler(log_file, encoding="utf-8",
                                                errors="backslashreplace"))
        except OSError as exc:
            echo(f"warning: cannot write log file {log_file}: {exc}", err=True)
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s hud serve %(levelname)s %(name)s: %(message)s",
        handlers=handlers,
        force=True,
    )


class _StartupGcPause:
    """Automatic collection off while the daemon starts (see the module docstring)."""

    def __init__(self) -> None:
        self.thresholds = gc.get_threshold()
        gc.set_threshold(0)  # 0: no automatic collection; gc.isenabled() stays as it was

    def end(self) -> None:
        """The daemon listens: freeze what start-up made, restore collection (unless
        the environment set thresholds of its own meanwhile)."""
        gc.freeze()
        if gc.get_threshold()[0] == 0:
            gc.set_threshold(*self.thresholds)


def run(module: str | None, socket_path: str | None, tcp: tuple[str, int] | None = None,
        token: str | None = None, max_connections: int = MAX_CONNECTIONS,
        idle_timeout: float = IDLE_TIMEOUT, auth_timeout: float = AUTH_TIMEOUT,
        session_ttl: float = SESSION_TTL, max_frame: int = MAX_FRAME,
        log_file: str | None = None, verbose: bool = False) -> None:
    """Load MODULE and serve it until SIGTERM/SIGINT (`hud serve`'s body), or, with
    `HUD_CONNECT=stdio`, until the connection on stdin/stdout ends (hud.serve.attached).

    The token is `token`, else HUD_TOKEN (removed from this process's environment either
    way); `idle_timeout` 0 means never.

    Raises:
        ConfigError: another daemon serves on the socket, or its path is taken;
            `HUD_CONNECT` has a value other than `stdio`.
        OSError: a listener cannot be opened (the TCP port is taken).
    """
    from hud.serve.attached import serve_in_thread, take_stdio

    connection = take_stdio()  # first: nothing the daemon starts may inherit it
    pause = _StartupGcPause()
    import asyncio
    from pathlib import Path

    from hud.paths import default_log_path, default_socket_path
    from hud.serve.daemon import Daemon, DaemonConfig, protect_from_oom, take_secret_env

    from_env = take_secret_env("HUD_TOKEN")  # always: no child of the daemon inherits it
    token = token or from_env
    if tcp is not None and tcp[0] not in ("127.0.0.1", "localhost", "::1") and not token:
        echo("warning: TCP on a non-loopback address without a token (--token-file or "
             "HUD_TOKEN): anyone who can reach it can grade tasks", err=True)
    log_path = log_file or default_log_path()
    if log_path is not None:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    _setup_logging(str(log_path) if log_path else None, verbose)
    config = DaemonConfig(
        spec=module,
        socket_path=Path(socket_path) if socket_path else default_socket_path(),
        tcp=tcp,
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
        try:
            await daemon.start()
        finally:
            pause.end()
        loop = asyncio.get_running_loop()
        loop.call_later(UNFREEZE_AFTER, gc.unfreeze)
        if connection is not None:
            def ended() -> None:
                with contextlib.suppress(RuntimeError):  # the loop has ended already
                    loop.call_soon_threadsafe(daemon.request_stop)

            serve_in_thread(connection, config.socket_path, ended)
        await daemon.serve_forever()

    asyncio.run(main())
    if connection is not None:
        _end_with_the_container()


def _end_with_the_container() -> None:
    """Exit now that the daemon has shut down cleanly (its capabilities closed, its
    shutdown hooks run) and the container ends with it: atexit handlers run, output is
    flushed, but the interpreter's own teardown, which frees every module and object the
    process is about to give back whole (~25 ms of CPU per container), is skipped."""
    import atexit
    import os

    atexit._run_exitfuncs()  # logging's shutdown among them
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(0)
