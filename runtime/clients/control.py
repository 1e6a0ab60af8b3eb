"""A small synchronous client of the control protocol, for `hud task ...` and friends.

Plain `json` and `socket` only — no pydantic, no asyncio — because `docker exec run1
hud task start X` pays for every import on every call. The envelope (frames, error
codes, reading a reply) is `hud.wire`, itself plain JSON.

When a connection to the daemon fails, the error quotes the tail of the daemon's log, but
only for the default socket: that log belongs to the daemon on that socket, and quoting it
for a daemon named with `--socket` or `--url` would blame the wrong process.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from hud import wire
from hud.errors import DaemonUnavailable
from hud.paths import default_log_path, default_socket_path

CONNECT_TIMEOUT = 10.0
LOG_TAIL_LINES = 15


def daemon_log(socket_path: str | os.PathLike[str] | None = None,
               url: str | None = None) -> Path | None:
    """The log of the daemon at this address, when it is the default socket's daemon.

    `hud serve` mirrors its log to `default_log_path()`; that log says nothing about a
    daemon named by `--socket` elsewhere or by `--url`, so there is none for those.
    """
    if url is not None:
        parts = urlsplit(url)
        if parts.scheme != "unix" or not parts.path:
            return None
        socket_path = parts.path
    if socket_path is not None and (
        os.path.abspath(socket_path) != os.path.abspath(default_socket_path())
    ):
        return None
    return default_log_path()


def log_tail(path: Path | None, lines: int = LOG_TAIL_LINES) -> str:
    """The last lines of the daemon log at `path`, or "" when there is none to read."""
    if path is None or not path.is_file():
        return ""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 16384))
            text = fh.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _with_log(message: str, log: Path | None) -> str:
    tail = log_tail(log)
    return f"{message}\nlast lines of the daemon log:\n{tail}" if tail else message


def open_socket(
    socket_path: str | os.PathLike[str] | None = None,
    url: str | None = None,
    timeout: float | None = CONNECT_TIMEOUT,
) -> socket.socket:
    """Connect to a daemon: `url` (tcp://host:port or unix:///path), else the socket path.

    Raises:
        DaemonUnavailable: nothing answers there (the message says how to start one and,
            for the default socket, quotes the daemon's log when there is one).
    """
    address: str | tuple[str, int]
    if url is not None:
        parts = urlsplit(url)
        if parts.scheme == "tcp" and parts.hostname and parts.port:
            where = url
            family, address = socket.AF_INET, (parts.hostname, parts.port)
            if ":" in parts.hostname:
                family = socket.AF_INET6
        elif parts.scheme == "unix" and parts.path:
            where, family, address = url, socket.AF_UNIX, parts.path
        else:
            raise DaemonUnavailable(f"bad daemon url {url!r}; use tcp://HOST:PORT or unix:///PATH")
    else:
        path = Path(socket_path) if socket_path is not None else default_socket_path()
        where, family, address = str(path), socket.AF_UNIX, str(path)
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(address)
    except OSError as exc:
        sock.close()
        hint = (
            "start one with `hud serve ENV` (in a hud image, the container's entrypoint runs "
            "it: check `docker logs`)"
        )
        if isinstance(exc, PermissionError):
            hint = "the control socket is root-only; run as root (e.g. `docker exec -u root`)"
        message = f"no hud daemon answers on {where} ({type(exc).__name__}: {exc}); {hint}"
        raise DaemonUnavailable(_with_log(message, daemon_log(socket_path, url))) from exc
    sock.settimeout(None)
    return sock


class ControlClient:
    """One control connection; `call` sends a request and waits for its reply.

    `log` is the daemon's log file, quoted when the connection breaks (see `daemon_log`).
    """

    def __init__(self, sock: socket.socket, token: str | None = None,
                 log: Path | None = None) -> None:
        self.sock = sock
        self.token = token
        self.log = log
        self._file = sock.makefile("rb")
        self._next_id = 0
        self._first = True

    @classmethod
    def connect(
        cls,
        socket_path: str | os.PathLike[str] | None = None,
        url: str | None = None,
        token: str | None = None,
    ) -> ControlClient:
        """Open a connection (see `open_socket`).

        Raises:
            DaemonUnavailable: nothing answers.
        """
        return cls(open_socket(socket_path, url), token or os.environ.get("HUD_TOKEN"),
                   daemon_log(socket_path, url))

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        try:
            self._file.close()
        finally:
            self.sock.close()

    def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        """Send one request and return its result.

        Raises:
            RemoteError: the daemon answered an error (`.code`, `.data` carry details).
            ProtocolError: the reply is not a JSON-RPC 2.0 reply to this request.
            DaemonUnavailable: the connection closed before the reply.
        """
        params = dict(params or {})
        if self._first and self.token:
            params.setdefault("token", self.token)
        self._first = False
        self._next_id += 1
        data = wire.encode(wire.request_frame(self._next_id, method, params))
        try:
            self.sock.sendall(data)
            line = self._file.readline()
        except OSError as exc:
            raise DaemonUnavailable(
                f"connection to the hud daemon broke during {method}: {exc}") from exc
        if not line:
            raise DaemonUnavailable(_with_log(
                f"the hud daemon closed the connection during {method} (it may have crashed)",
                self.log))
        return wire.read_reply(line, self._next_id, method=method)
