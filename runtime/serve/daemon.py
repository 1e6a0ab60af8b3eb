"""`hud serve`: the runtime daemon's lifecycle.

claim the socket path and take the liveness lock (hud.liveness) → load env → initialize
hooks → start capabilities → listen (unix socket, optional TCP) → serve until
SIGTERM/SIGINT → stop listening → cancel tasks in progress → stop capabilities →
shutdown hooks (reverse order) → remove the socket and the lock.

Listening comes last, and that is the readiness contract: a connection that is accepted
is answered at once, and its `hello` returns a manifest whose every binding is up. A
host waits for the socket to accept (`hud connect --wait`), not for a log line.
Capabilities start one after another, in registration order, on purpose: a later one may
rely on an earlier one (a browser on a desktop's display, an author's app on a service's
port). Measured, starting them at once would save little: ssh and mcp start in a few ms
(their servers load at first use), and the slow ones (Xvnc ~0.3 s, Chromium ~0.45 s) are
the pair that depends on each other.

A broken environment does not stop the daemon: it keeps serving and answers every
session method with the import error and its traceback, so `hud task list` (and the
container's healthcheck) explain what is wrong instead of a container that exits.

The daemon guards itself: as root it lowers its own OOM score (`OOM_SCORE_ADJ`), so the
kernel kills an agent's or a grader's runaway process before it; environment code that
raises anything (SystemExit included) in a hook is reported, never fatal; TCP is guarded
by `TcpPolicy` (hud.serve.connections). The TCP token never travels on argv (`hud serve` reads it
from a file or HUD_TOKEN) and `take_secret_env` removes it from the daemon's own
environment, so no child process inherits it.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import signal
import socket
import stat
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hud.environment import Environment
from hud.errors import ConfigError, EnvLoadError
from hud.liveness import LivenessLock
from hud.messages import MAX_FRAME_BYTES
from hud.paths import ROOT_SOCKET
from hud.serve.connections import ControlServer, TcpPolicy
from hud.serve.loader import load_environment
from hud.serve.runner import really_cancelled

log = logging.getLogger("hud.serve.daemon")

WATCH_INTERVAL = 5.0
#: the daemon's own /proc/self/oom_score_adj when it may lower it (root with
#: CAP_SYS_RESOURCE); agent and grader processes are raised to +1000 by their spawners
OOM_SCORE_ADJ = -900


@dataclass
class DaemonConfig:
    spec: str | None = None
    socket_path: Path | None = None
    tcp: tuple[str, int] | None = None
    #: TCP: the token the first frame must carry; connections at once; seconds without a
    #: frame before a connection is closed (None: never); seconds to send the token
    token: str | None = None
    max_connections: int = 64
    idle_timeout: float | None = None
    auth_timeout: float = 10.0
    session_ttl: float = 3600.0
    max_frame: int = MAX_FRAME_BYTES
    #: an environment already imported (in-process placement); `spec` is then ignored
    env: Environment | None = None


async def _call_hook(hook: Callable[[], Any]) -> None:
    result = hook()
    if inspect.isawaitable(result):
        await result


def take_secret_env(name: str) -> str | None:
    """Read environment variable `name` and remove it from this process: from os.environ
    (so no child inherits it) and, on glibc, its bytes in the original environment block
    (so /proc/PID/environ no longer shows it)."""
    value = os.environ.get(name)
    if value is None:
        return None
    import ctypes  # only with a secret to wipe: ~1 ms of every daemon start otherwise

    try:
        libc = ctypes.CDLL(None)
        libc.getenv.restype = ctypes.c_void_p
        address = libc.getenv(name.encode())
        if address:
            ctypes.memset(address, 0, libc.strlen(ctypes.c_void_p(address)))
    except (OSError, AttributeError):
        pass  # no libc to reach: os.environ below still keeps it from children
    os.environ.pop(name, None)
    return value


def _still_ignored(signum: int, frame: Any) -> None:
    """The daemon's handler for a signal it was started with ignored (it still is)."""


def children_get_default_signals() -> None:
    """Give the processes this daemon starts SIGINT and SIGQUIT at their default action.

    A program started in the background by a non-interactive shell (`hud serve &` or a
    `hud eval` with the local placement in a script) starts with both ignored, and a
    process passes an ignored signal on to every process it starts: the agent's shell
    would take Ctrl-C (a command's timeout) as nothing, and a task's processes could not
    be interrupted. A handled signal is reset to its default at exec, so the daemon
    handles them with a handler that does nothing: it still ignores them, its children
    do not. Only from the main thread (where signal handlers are set); a no-op elsewhere.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGINT, signal.SIGQUIT):
        if signal.getsignal(sig) is signal.SIG_IGN:
            signal.signal(sig, _still_ignored)


def protect_from_oom() -> None:
    """Lower this process's OOM score when allowed (root with CAP_SYS_RESOURCE).

    For `hud serve` only, never an in-process daemon: children inherit the score, so
    whoever spawns the agent's and graders' processes raises theirs (+1000)."""
    if os.geteuid() != 0:
        return
    try:
        with open("/proc/self/oom_score_adj", "w") as fh:
            fh.write(str(OOM_SCORE_ADJ))
    except OSError as exc:
        log.info("could not lower the daemon's OOM score to %d (%s); the kernel may pick it "
                 "under memory pressure (grant CAP_SYS_RESOURCE to the container to allow it)",
                 OOM_SCORE_ADJ, exc)
    else:
        log.info("lowered the daemon's OOM score to %d", OOM_SCORE_ADJ)


def _as_load_error(what: str, exc: BaseException) -> EnvLoadError:
    return EnvLoadError(
        f"{what} raised {type(exc).__name__}: {exc}",
        "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
    )


async def prepare_environment(
    spec: str | None, env: Environment | None = None
) -> tuple[Environment | None, EnvLoadError | None]:
    """Load the env (unless given) and run its initialize hooks; on failure return the
    error instead."""
    if env is None:
        try:
            env = load_environment(spec)
        except EnvLoadError as exc:
            return None, exc
    for hook in env.initialize_hooks:
        try:
            await _call_hook(hook)
        except BaseException as exc:  # environment code must not stop the daemon
            if really_cancelled(exc):
                raise
            return None, _as_load_error(f"initialize hook {hook.__name__!r}", exc)
    return env, None


def _claim_socket_path(path: Path) -> None:
    """Make the parent dir (root-only when root) and clear a stale socket file.

    Raises:
        ConfigError: another daemon already answers on `path`, or it is not a socket.
    """
    created = not path.parent.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    # Root-only when root: the runtime's own dir, or one we just made. Never chmod a shared
    # dir someone else owns (a socket put straight in /tmp must not make /tmp 0700); the
    # socket itself is 0600 either way.
    if os.geteuid() == 0 and (created or path.parent == ROOT_SOCKET.parent):
        os.chmod(path.parent, 0o700)
    if not path.exists():
        return
    if not stat.S_ISSOCK(path.stat().st_mode):
        raise ConfigError(f"{path} exists and is not a socket; remove it or pass --socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except OSError:
        path.unlink()  # stale: its daemon is gone
    else:
        raise ConfigError(f"another hud serve is already listening on {path}; stop it first")
    finally:
        probe.close()


class Daemon:
    """One `hud serve` process: owns the environment, the server and the listeners."""

    def __init__(self, config: DaemonConfig) -> None:
        self.config = config
        self.server: ControlServer | None = None
        self.env: Environment | None = None
        self._listeners: list[asyncio.base_events.Server] = []
        self._stop = asyncio.Event()
        self._background: list[asyncio.Task[None]] = []
        self._alive: LivenessLock | None = None

    def request_stop(self) -> None:
        self._stop.set()

    async def start(self) -> ControlServer:
        """Claim the socket, load, initialize, start capabilities and listen.

        Returns:
            The control server.

        Raises:
            ConfigError: another daemon starts or serves on the socket; the socket path
                is taken by something else.
            OSError: a listener cannot be opened (the TCP port is taken).
        """
        cfg = self.config
        children_get_default_signals()
        if cfg.socket_path is not None:
            # first, so that a client waiting for the socket (`hud connect --wait`) can tell
            # this daemon starting from one that died (hud.liveness)
            _claim_socket_path(cfg.socket_path)
            self._alive = LivenessLock.take(cfg.socket_path)
        try:
            return await self._start()
        except BaseException:
            self._release_lock()
            raise

    def _release_lock(self) -> None:
        if self._alive is not None:
            self._alive.release()
            self._alive = None

    async def _start(self) -> ControlServer:
        cfg = self.config
        env, error = await prepare_environment(cfg.spec, cfg.env)
        server = ControlServer(
            env, load_error=error, session_ttl=cfg.session_ttl, max_frame=cfg.max_frame
        )
        if env is not None:
            try:
                for capability in env.capabilities.values():
                    server.bindings[capability.name] = await capability.start()
            except BaseException as exc:  # reported like a load error
                if really_cancelled(exc):
                    raise
                server.env, server.load_error = None, _as_load_error("starting capabilities", exc)
        if server.load_error is not None:
            log.error("environment failed to load: %s\n%s", server.load_error,
                      server.load_error.traceback)
        self.env, self.server = env, server
        if cfg.tcp is not None:
            host, port = cfg.tcp
            policy = TcpPolicy(token=cfg.token, max_connections=cfg.max_connections,
                               idle_timeout=cfg.idle_timeout, auth_timeout=cfg.auth_timeout)

            async def handle_tcp(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
                await server.handle(r, w, policy)

            self._listeners.append(await asyncio.start_server(handle_tcp, host, port))
        if cfg.socket_path is not None:  # last: a listening socket means ready, TCP too
            listener = await asyncio.start_unix_server(server.handle, path=str(cfg.socket_path))
            os.chmod(cfg.socket_path, 0o600)
            self._listeners.append(listener)
        self._background.append(asyncio.create_task(self._watch()))
        where = [str(cfg.socket_path)] if cfg.socket_path else []
        where += [f"tcp://{h}:{pt}" for h, pt in self.tcp_addresses()]
        if server.env is not None:
            log.info("serving %s %s (%d tasks, capabilities: %s) on %s", server.env.name,
                     server.env.version, len(server.env.listed_tasks()),
                     ", ".join(server.bindings) or "none", ", ".join(where))
        else:
            log.info("serving (environment broken, answering with its error) on %s",
                     ", ".join(where))
        return server

    def tcp_addresses(self) -> list[tuple[str, int]]:
        out = []
        for listener in self._listeners:
            for sock in listener.sockets:
                if sock.family in (socket.AF_INET, socket.AF_INET6):
                    out.append(sock.getsockname()[:2])
        return out

    async def _watch(self) -> None:
        """Expire parked sessions and restart capabilities that stopped answering."""
        assert self.server is not None
        server = self.server
        interval = min(WATCH_INTERVAL, max(server.sessions.ttl / 4, 0.05))
        while True:
            await asyncio.sleep(interval)
            try:
                await server.expire_parked()
                if server.env is None:
                    continue
                for capability in server.env.capabilities.values():
                    if await capability.healthy():
                        continue
                    log.error("capability %s stopped answering; restarting it", capability.name)
                    await capability.stop()
                    server.bindings[capability.name] = await capability.start()
            except BaseException as exc:  # capability code: keep watching
                if really_cancelled(exc):
                    raise
                log.exception("daemon watchdog failed; retrying in %.1fs", interval)

    async def serve_forever(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.request_stop)
        await self._stop.wait()
        log.info("shutting down")
        await self.close()

    async def close(self) -> None:
        """Stop listening, cancel tasks, stop capabilities, run shutdown hooks."""
        for task in self._background:
            task.cancel()
        for listener in self._listeners:
            listener.close()
        if self.server is not None:
            await self.server.cancel_all()
        env = self.env
        if env is not None:
            for capability in reversed(list(env.capabilities.values())):
                try:
                    await capability.close()
                except BaseException as exc:  # the rest still shut down
                    if really_cancelled(exc):
                        raise
                    log.exception("capability %s failed to stop", capability.name)
            for hook in reversed(env.shutdown_hooks):
                try:
                    await _call_hook(hook)
                except BaseException as exc:  # the rest still shut down
                    if really_cancelled(exc):
                        raise
                    log.exception("shutdown hook %r raised", getattr(hook, "__name__", hook))
        if self.config.socket_path is not None:
            with contextlib.suppress(FileNotFoundError):
                self.config.socket_path.unlink()
        self._release_lock()
