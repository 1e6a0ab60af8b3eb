"""`hud connect --mux`: one connection that carries the control channel and every tunnel.

A host runs one `docker exec -i CONTAINER hud connect --mux` per container and opens as
many streams over it as it likes: the control channel, ssh, mcp, cdp, rfb, robot. Opening
a stream is one round trip inside the running exec (milliseconds), not a new `docker
exec` (100-200 ms and a process each).

The multiplexing is SSH's connection protocol (RFC 4254), served by asyncssh over the
exec's stdin/stdout. Why SSH, not HTTP/2 or a framing of hud's own: asyncssh is already
a dependency and a maintained implementation of both ends; every stream is a channel
with its own window (a reader that stops reading stalls its stream only, and memory stays
bounded by the window), with open failures that carry a reason, half-close and close.
HTTP/2 (h2) would give the same multiplexing but as a sans-IO state machine: the flow
control, stream lifecycle and back-pressure would be hud's code to write and get right.

Each stream is a "direct-tcpip" channel whose destination host names what it reaches:
`CONTROL` is a fresh connection to the daemon's control socket; any other name is a
capability, reached with `tunnel.open` as `hud connect --tunnel NAME` does. A refusal
travels back as the channel-open failure's reason: the daemon's JSON-RPC error object as
JSON (the host raises it as `RemoteError`), or plain text when no daemon answered.

The connection starts as plain control lines and becomes SSH when the host first needs
a tunnel (hud.serve.upgrade); a host that starts with SSH gets it at once.

No SSH user authentication, and a host key made per process: the exec is the credential
(whoever can `docker exec` into the container is root there already) and the bytes never
leave the exec's pipes. The agent cannot reach this server: it has no socket.

`StreamSession` turns a channel into a plain asyncio (StreamReader, StreamWriter) pair;
the host end (`hud.clients.mux`) uses it too, so every client of a tunnel gets the same
types whatever carries it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import socket
import threading
from collections.abc import Awaitable, Callable
from typing import Any, cast

import asyncssh

from hud import wire
from hud.clients.control import daemon_address, open_socket
from hud.errors import DaemonUnavailable, InfraError, RemoteError
from hud.serve.tunnel import splice
from hud.stdio import socket_to_stdout, stdin_to_socket

#: the destination name of the control channel (a capability cannot be called this: it
#: has a dash, and capability names are identifiers)
CONTROL = "hud-control"
#: bytes a stream's reader buffers before its channel stops granting window
STREAM_LIMIT = 1 << 20
#: seconds a stream's opening may take in the container: connect, tunnel.open, reply
DIAL_TIMEOUT = 30.0
#: the one cipher suite both ends offer: no negotiation surprises, and AES-GCM is
#: hardware-accelerated on every x86-64 and arm64 CPU docker runs on
ALGORITHMS: dict[str, Any] = {
    "kex_algs": ["curve25519-sha256"],
    "encryption_algs": ["aes128-gcm@openssh.com"],
    "mac_algs": ["hmac-sha2-256"],
    "compression_algs": ["none"],
    "signature_algs": ["ssh-ed25519"],
}

Opened = Callable[[asyncio.StreamReader, asyncio.StreamWriter], None]


class _ReaderTransport:
    """The channel as its StreamReader sees it, with `resume_reading` deferred a turn.

    asyncssh's `resume_reading` delivers the buffered data inside the call. A
    StreamReader resumes in `_wait_for_data()` right before it makes the waiter that data
    would wake; data delivered (and the reader paused again) within the call would wake
    nothing, and the reader would wait forever on a paused channel.
    """

    def __init__(self, chan: asyncssh.SSHTCPChannel[bytes]) -> None:
        self._chan = chan

    def pause_reading(self) -> None:
        self._chan.pause_reading()

    def resume_reading(self) -> None:
        asyncio.get_running_loop().call_soon(self._resume)

    def _resume(self) -> None:
        with contextlib.suppress(Exception):  # closed meanwhile: nothing left to read
            self._chan.resume_reading()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._chan.get_extra_info(name, default)


class StreamSession(asyncssh.SSHTCPSession[bytes]):
    """An SSH channel as an asyncio (StreamReader, StreamWriter) pair, with flow control.

    A reader holding more than twice `limit` unread bytes pauses its channel, which then
    stops granting window: the sender's writes back up into its `drain()`, on that stream
    only. `on_open` is called with the pair once the channel is open.
    """

    def __init__(self, limit: int = STREAM_LIMIT, on_open: Opened | None = None) -> None:
        self.reader = asyncio.StreamReader(limit=limit)
        self._protocol = asyncio.StreamReaderProtocol(self.reader)
        self.writer: asyncio.StreamWriter | None = None
        self._on_open = on_open

    def connection_made(self, chan: asyncssh.SSHTCPChannel[bytes]) -> None:
        self._protocol.connection_made(cast(asyncio.Transport, _ReaderTransport(chan)))
        transport = cast(asyncio.Transport, chan)
        self.writer = asyncio.StreamWriter(transport, self._protocol, self.reader,
                                           asyncio.get_running_loop())
        if self._on_open is not None:
            self._on_open(self.reader, self.writer)

    def connection_lost(self, exc: Exception | None) -> None:
        # asyncssh's ConnectionLost & co. are no ConnectionError: a reader of a plain
        # stream must see the error it knows from a socket
        if exc is not None and not isinstance(exc, ConnectionError):
            exc = ConnectionResetError(f"the multiplexed connection ended: "
                                       f"{type(exc).__name__}: {exc}")
        self._protocol.connection_lost(exc)

    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        self._protocol.data_received(data)

    def eof_received(self) -> bool:
        return bool(self._protocol.eof_received())

    def pause_writing(self) -> None:
        self._protocol.pause_writing()

    def resume_writing(self) -> None:
        self._protocol.resume_writing()


def refusal(exc: BaseException) -> str:
    """The channel-open failure reason for `exc`: a RemoteError as its JSON-RPC error
    object (JSON), anything else as text."""
    if isinstance(exc, RemoteError):
        error: dict[str, Any] = {"code": exc.code, "message": str(exc)}
        if exc.data is not None:
            error["data"] = exc.data
        return json.dumps(error, default=repr)
    return str(exc) or type(exc).__name__


class _Server(asyncssh.SSHServer):
    """Opens each requested stream to the daemon; refuses with the daemon's reason."""

    def __init__(self, dial: Dial) -> None:
        self._dial = dial
        self._tasks: set[asyncio.Task[None]] = set()

    def begin_auth(self, username: str) -> bool:
        return False  # no authentication: the exec is the credential (see the docstring)

    def connection_requested(self, dest_host: str, dest_port: int, orig_host: str,
                             orig_port: int) -> Any:
        return self._open(dest_host)

    async def _open(self, name: str) -> StreamSession:
        try:
            reader, writer = await self._dial(name)
        except Exception as exc:  # whatever it was refuses this stream only
            # (uncaught here, asyncssh would close the whole connection: every stream and
            # the rollout's control channel with it)
            raise asyncssh.ChannelOpenError(asyncssh.OPEN_CONNECT_FAILED, refusal(exc)) from exc

        def opened(chan_reader: asyncio.StreamReader, chan_writer: asyncio.StreamWriter) -> None:
            task = asyncio.create_task(splice(chan_reader, chan_writer, reader, writer))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        return StreamSession(on_open=opened)


Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]
Dial = Callable[[str], Awaitable[Streams]]


class Dialer:
    """Connections to the daemon, each either the control channel or a tunnel.

    The first dial gives a daemon that is still starting `wait` seconds, as `hud connect
    --wait` does (in a thread: `open_socket` tells a starting daemon from a dead one);
    later dials are plain asyncio, no thread each (a container whose pids limit the
    agent filled cannot start one), bounded by `DIAL_TIMEOUT` from connect to the
    tunnel.open reply.
    """

    def __init__(self, socket_path: str | None, url: str | None, token: str | None,
                 wait: float, control: socket.socket | None = None) -> None:
        self.socket_path, self.url = socket_path, url
        self.token = token or os.environ.get("HUD_TOKEN")
        self._wait = wait
        #: the control connection of the plain phase (hud.serve.upgrade), for the first
        #: control stream: its session carries on
        self._control = control

    async def __call__(self, name: str) -> Streams:
        """A connection to the daemon: the control channel, or a tunnel to `name`.

        Raises:
            DaemonUnavailable: no daemon answers (within the wait).
            RemoteError: the daemon refused the tunnel (unknown capability, down).
            ProtocolError: the reply to tunnel.open was broken.
            InfraError: no reply within DIAL_TIMEOUT, or the connection closed first.
        """
        wait, self._wait = self._wait, 0.0  # a daemon that answered once is up
        try:
            return await asyncio.wait_for(self._dial(name, wait), wait + DIAL_TIMEOUT)
        except TimeoutError:
            raise InfraError(f"the hud daemon did not answer the opening of {name!r} within "
                             f"{DIAL_TIMEOUT:g}s; its event loop may be stuck (see its log)"
                             ) from None

    async def _dial(self, name: str, wait: float) -> Streams:
        if name == CONTROL and self._control is not None:
            sock, self._control = self._control, None
            sock.setblocking(False)
            return await asyncio.open_connection(sock=sock, limit=STREAM_LIMIT)
        if wait > 0:
            sock = await asyncio.to_thread(
                functools.partial(open_socket, self.socket_path, self.url, wait=wait))
            sock.setblocking(False)
            reader, writer = await asyncio.open_connection(sock=sock, limit=STREAM_LIMIT)
        else:
            where, _, address = daemon_address(self.socket_path, self.url)
            try:
                if isinstance(address, str):
                    reader, writer = await asyncio.open_unix_connection(address,
                                                                        limit=STREAM_LIMIT)
                else:
                    reader, writer = await asyncio.open_connection(*address, limit=STREAM_LIMIT)
            except OSError as exc:
                raise DaemonUnavailable(f"no hud daemon answers on {where} "
                                        f"({type(exc).__name__}: {exc})") from exc
        if name == CONTROL:
            return reader, writer
        try:
            request = wire.tunnel_request(name, self.token)
            writer.write(wire.encode(request))
            line = await reader.readline()  # the capability's bytes stay in the reader
            if not line.endswith(b"\n"):
                raise InfraError(f"the daemon closed the connection before answering "
                                 f"tunnel.open {name!r}; see its log")
            wire.read_reply(line, request["id"], method=f"tunnel.open {name!r}")
        except BaseException:
            writer.close()
            raise
        return reader, writer


async def serve_stdio(dial: Dial, first: bytes = b"", fds: tuple[int, int] = (0, 1)) -> None:
    """Serve one SSH connection over this process's stdin/stdout (or `fds`: in, out)
    until it closes; `first` is what was read from it already (the start of the client's
    identification).

    Raises:
        InfraError: the peer went away, or spoke something else, before the handshake
            completed (the streams of a connection that was up just end).
    """
    ours, theirs = socket.socketpair()
    threading.Thread(target=stdin_to_socket, args=(ours, first, fds[0]), daemon=True).start()
    threading.Thread(target=socket_to_stdout, args=(ours, fds[1]), daemon=True).start()
    key = asyncssh.generate_private_key("ssh-ed25519")
    try:
        conn = await asyncssh.run_server(
            theirs, server_factory=lambda: _Server(dial), server_host_keys=[key],
            keepalive_interval=0, login_timeout=60, config=None, **ALGORITHMS)
    except (asyncssh.Error, OSError) as exc:
        raise InfraError(f"no SSH client on stdin/stdout ({type(exc).__name__}: {exc}); "
                         f"`hud connect --mux` is spoken to by hud's docker and attach "
                         f"placements (hud.clients.mux), not typed to") from exc
    await conn.wait_closed()
