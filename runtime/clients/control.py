"""A small synchronous client of the control protocol, for `hud task ...` and friends.

Plain `json` and `socket` only — no pydantic, no asyncio — because `docker exec run1
hud task start X` pays for every import on every call. The wire constants used here are
mirrored from hud.messages; a test keeps them equal.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from hud.errors import DaemonUnavailable, ProtocolError, RemoteError
from hud.paths import default_log_path, default_socket_path

JSONRPC = "2.0"
ENV_LOAD_ERROR = -32001
CONNECT_TIMEOUT = 10.0
LOG_TAIL_LINES = 15


def log_tail(lines: int = LOG_TAIL_LINES) -> str:
    """The last lines of the daemon's log, when this host has one (in a hud image)."""
    path = default_log_path()
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


def open_socket(
    socket_path: str | os.PathLike[str] | None = None,
    url: str | None = None,
    timeout: float | None = CONNECT_TIMEOUT,
) -> socket.socket:
    """Connect to a daemon: `url` (tcp://host:port or unix:///path), else the socket path.

    Raises:
        DaemonUnavailable: nothing answers there (the message says how to start one and
            quotes the daemon's log when there is one).
    """
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
        tail = log_tail()
        message = f"no hud daemon answers on {where} ({type(exc).__name__}: {exc}); {hint}"
        if tail:
            message += f"\nlast lines of the daemon log:\n{tail}"
        raise DaemonUnavailable(message) from exc
    sock.settimeout(None)
    return sock


class ControlClient:
    """One control connection; `call` sends a request and waits for its reply."""

    def __init__(self, sock: socket.socket, token: str | None = None) -> None:
        self.sock = sock
        self.token = token
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
        return cls(open_socket(socket_path, url), token or os.environ.get("HUD_TOKEN"))

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
            DaemonUnavailable: the connection closed before the reply.
        """
        params = dict(params or {})
        if self._first and self.token:
            params.setdefault("token", self.token)
        self._first = False
        self._next_id += 1
        frame = {"jsonrpc": JSONRPC, "id": self._next_id, "method": method, "params": params}
        try:
            data = json.dumps(frame, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
        except UnicodeEncodeError:  # a lone surrogate (e.g. undecodable argv bytes): \u-escape
            data = json.dumps(frame, separators=(",", ":")).encode() + b"\n"
        try:
            self.sock.sendall(data)
            line = self._file.readline()
        except OSError as exc:
            raise DaemonUnavailable(f"connection to the hud daemon broke during {method}: {exc}")
        if not line:
            raise DaemonUnavailable(
                f"the hud daemon closed the connection during {method} (it may have crashed)"
                + (f"\nlast lines of the daemon log:\n{log_tail()}" if log_tail() else "")
            )
        try:
            reply = json.loads(line)
        except ValueError as exc:
            raise ProtocolError(-32700, f"the daemon sent a non-JSON line: {line[:200]!r}") from exc
        if "error" in reply:
            err = reply["error"]
            raise RemoteError(err.get("code", 0), err.get("message", "?"), err.get("data"))
        return reply.get("result")
