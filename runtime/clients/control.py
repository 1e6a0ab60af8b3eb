"""A small synchronous client of the control protocol, for `hud task ...` and friends.

Plain `json` and `socket` only — no pydantic, no asyncio — because `docker exec run1
hud task start X` pays for every import on every call. The envelope (frames, error
codes, reading a reply) is `hud.wire`, itself plain JSON.

When a connection to the daemon fails, the error quotes the tail of the daemon's log, but
only for the default socket: that log belongs to the daemon on that socket, and quoting it
for a daemon named with `--socket` or `--url` would blame the wrong process.

Waiting for a daemon that is still starting (`open_socket(wait=...)`, behind `hud connect
--wait`) retries the connect in this process every `WAIT_POLL` seconds, bounded. Ready
means "the socket accepts" (the daemon listens last, once its manifest is complete), and
no file event shows that: the socket file appears at bind(), before listen(), in a
directory that may not exist yet, so inotify would still need this probe. A unix
connect() costs microseconds; 200 a second are noise beside a daemon that is starting,
and the wait adds 2.5 ms on average. Between attempts the daemon's liveness lock
(`hud.liveness`) tells a daemon still starting from one that died, so a death ends the
wait at once instead of at its timeout.
"""

from __future__ import annotations

import os
import socket
import time
from typing import TYPE_CHECKING, Any

from hud import liveness, wire
from hud.errors import DaemonUnavailable, InfraError
from hud.paths import default_log_path, default_socket

if TYPE_CHECKING:
    from pathlib import Path  # made only on the error path: it costs ~4.6 ms to import

CONNECT_TIMEOUT = 10.0
LOG_TAIL_LINES = 15
#: seconds between connection attempts while waiting for a daemon that is starting
WAIT_POLL = 0.005


def daemon_log(socket_path: str | os.PathLike[str] | None = None,
               url: str | None = None) -> Path | None:
    """The log of the daemon at this address, when it is the default socket's daemon.

    `hud serve` mirrors its log to `default_log_path()`; that log says nothing about a
    daemon named by `--socket` elsewhere or by `--url`, so there is none for those.
    """
    if url is not None:
        from urllib.parse import urlsplit  # only for --url: `hud task start` never pays

        parts = urlsplit(url)
        if parts.scheme != "unix" or not parts.path:
            return None
        socket_path = parts.path
    if socket_path is not None and (
        os.path.abspath(socket_path) != os.path.abspath(default_socket())
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


def daemon_address(socket_path: str | os.PathLike[str] | None,
             url: str | None) -> tuple[str, socket.AddressFamily, str | tuple[str, int]]:
    """(where, for messages; address family; address) of the daemon to reach.

    Raises:
        DaemonUnavailable: `url` is neither tcp://HOST:PORT nor unix:///PATH.
    """
    if url is None:
        path = os.fspath(socket_path) if socket_path is not None else default_socket()
        return path, socket.AF_UNIX, path
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme == "tcp" and parts.hostname and parts.port:
        family = socket.AF_INET6 if ":" in parts.hostname else socket.AF_INET
        return url, family, (parts.hostname, parts.port)
    if parts.scheme == "unix" and parts.path:
        return url, socket.AF_UNIX, parts.path
    raise DaemonUnavailable(f"bad daemon url {url!r}; use tcp://HOST:PORT or unix:///PATH")


def open_socket(
    socket_path: str | os.PathLike[str] | None = None,
    url: str | None = None,
    timeout: float | None = CONNECT_TIMEOUT,
    wait: float = 0.0,
) -> socket.socket:
    """Connect to a daemon: `url` (tcp://host:port or unix:///path), else the socket path.

    With `wait` > 0, a daemon that does not accept yet is given that many seconds (see
    the module docstring); one seen alive that then dies ends the wait at once.

    Raises:
        DaemonUnavailable: nothing answers there (within `wait`), or the daemon died
            while it was awaited; the message says how to start one and, for the default
            socket, quotes the daemon's log when there is one.
    """
    where, family, address = daemon_address(socket_path, url)
    deadline = time.monotonic() + wait
    starting = _Starting(address if isinstance(address, str) else None, where)
    while True:
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(address)
        except OSError as exc:
            sock.close()
            if wait <= 0 or isinstance(exc, PermissionError):
                message: str | None = _refused(where, exc)
            elif (message := starting.died()) is None and time.monotonic() >= deadline:
                message = (f"no hud daemon answered on {where} within {wait:g}s "
                           f"({starting.state()}; last {type(exc).__name__}: {exc}); check "
                           f"the daemon's log (`docker logs` in a hud image) or wait longer")
            if message is not None:
                raise DaemonUnavailable(_with_log(message, daemon_log(socket_path, url))) from exc
            time.sleep(WAIT_POLL)
            continue
        sock.settimeout(None)
        return sock


def open_tunnel(sock: socket.socket, name: str, token: str | None = None) -> bytes:
    """Turn a fresh connection into a tunnel to capability `name`: send `tunnel.open`,
    read the reply line; return the bytes that arrived after it (the capability's).

    Raises:
        RemoteError: the daemon refused (unknown capability, capability down).
        ProtocolError: the reply is not a JSON-RPC 2.0 reply to tunnel.open.
        InfraError: the daemon closed the connection before answering.
    """
    request = wire.tunnel_request(name, token)
    sock.sendall(wire.encode(request))
    buf = b""
    while b"\n" not in buf:
        chunk = sock.recv(1 << 16)
        if not chunk:
            raise InfraError(f"the daemon closed the connection before answering "
                             f"tunnel.open {name!r}; see its log")
        buf += chunk
    line, _, rest = buf.partition(b"\n")
    wire.read_reply(line, request["id"], method=f"tunnel.open {name!r}")
    return rest


class _Starting:
    """What a waiter has seen of the daemon it awaits on a unix socket (hud.liveness)."""

    def __init__(self, socket_path: str | None, where: str) -> None:
        self.socket_path, self.where = socket_path, where
        self.began = time.time()  # lock files written since are this wait's daemons
        self.seen_alive = False

    def died(self) -> str | None:
        """Why the wait is over when the awaited daemon died (else None)."""
        if self.socket_path is None:
            return None  # TCP: no lock to look at
        holder = liveness.holder(self.socket_path)
        if holder is not None and holder.held:
            self.seen_alive = True
            return None
        if not self.seen_alive and (holder is None or holder.since < self.began):
            return None
        pid = f" (pid {holder.pid})" if holder is not None else ""
        return (f"the hud daemon{pid} for {self.where} exited while it was starting, before "
                f"it answered; see why in its log (`docker logs` in a hud image)")

    def state(self) -> str:
        return "it is still starting" if self.seen_alive else "none was seen starting"


def _refused(where: str, exc: OSError) -> str:
    hint = (
        "start one with `hud serve ENV` (in a hud image, the container's entrypoint runs "
        "it: check `docker logs`)"
    )
    if isinstance(exc, PermissionError):
        hint = "the control socket is root-only; run as root (e.g. `docker exec -u root`)"
    return f"no hud daemon answers on {where} ({type(exc).__name__}: {exc}); {hint}"


class ControlClient:
    """One control connection; `call` sends a request and waits for its reply.

    `log` is the daemon's log file, quoted when the connection breaks (see `daemon_log`);
    `connect` leaves it to be found then, from the address it connected to.
    """

    def __init__(self, sock: socket.socket, token: str | None = None,
                 log: Path | None = None) -> None:
        self.sock = sock
        self.token = token
        self.log = log
        self._address: tuple[str | os.PathLike[str] | None, str | None] | None = None
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
        client = cls(open_socket(socket_path, url), token or os.environ.get("HUD_TOKEN"))
        client._address = (socket_path, url)  # its log is looked up when it is quoted
        return client

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
            log = self.log if self._address is None else daemon_log(*self._address)
            raise DaemonUnavailable(_with_log(
                f"the hud daemon closed the connection during {method} (it may have crashed)",
                log))
        return wire.read_reply(line, self._next_id, method=method)
