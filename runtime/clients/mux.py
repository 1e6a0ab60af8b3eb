"""The host end of `hud connect --mux`: one SSH connection, any number of streams.

`MuxConnection.start(sock)` speaks SSH (asyncssh's client) over a connected socket whose
other end is the exec's stdin/stdout; `open(name)` opens one stream, the control channel
(`CONTROL`) or a capability, as a plain asyncio (StreamReader, StreamWriter) pair. The
server side and the reasons for SSH are in hud.serve.mux.

Failures keep their meaning: a refusal by the daemon (unknown capability, capability
down) is the daemon's own `RemoteError`; a connection that is gone, or was never made,
is an `InfraError`, never a hang, and every stream on it ends with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import Callable
from typing import Any

from hud.errors import InfraError, RemoteError

#: seconds given to a closing connection to say goodbye before it is dropped
CLOSE_GRACE = 2.0
#: seconds a stream's opening may take (the container bounds its side at 30)
OPEN_TIMEOUT = 60.0


def _refused(name: str, reason: str, describe: str) -> Exception:
    """The error a channel-open failure's reason stands for (hud.serve.mux.refusal)."""
    try:
        error = json.loads(reason)
    except ValueError:
        error = None
    if isinstance(error, dict) and isinstance(error.get("code"), int) \
            and isinstance(error.get("message"), str):
        return RemoteError(error["code"], error["message"], error.get("data"))
    return InfraError(f"{describe}: cannot open {name!r}: {reason}")


class _Taken:
    """An asyncssh tunnel that is an open transport: its one connection is made on it."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport

    async def create_connection(self, factory: Any, host: str, port: int) -> tuple[Any, Any]:
        conn = factory()
        self._transport.set_protocol(conn)
        conn.connection_made(self._transport)
        self._transport.resume_reading()
        return self._transport, conn


class MuxConnection:
    """One SSH connection to a `hud connect --mux` server; `open()` streams over it."""

    def __init__(self, conn: Any, describe: str) -> None:
        self._conn = conn
        self.describe = describe

    @classmethod
    async def start(cls, sock: socket.socket, *, describe: str,
                    timeout: float) -> MuxConnection:
        """Handshake over `sock` (taken over: closed on failure).

        Raises:
            InfraError: the server did not answer, or not as SSH, within `timeout`.
        """
        return await cls._connect(describe, timeout, sock.close, "did not open", sock=sock)

    @classmethod
    async def switch(cls, transport: asyncio.Transport, *, describe: str,
                     timeout: float) -> MuxConnection:
        """Start SSH on a connection that carried control lines until now (hud.serve.upgrade):
        `transport` is taken from its protocol (a StreamReader's, left with nothing) and
        given to the SSH client, which writes the identification string the server waits
        for. The transport is closed on failure.

        Raises:
            InfraError: the server did not answer, or not as SSH, within `timeout`.
        """
        return await cls._connect(describe, timeout, transport.close,
                                  "did not start on the control connection",
                                  tunnel=_Taken(transport))

    @classmethod
    async def _connect(cls, describe: str, timeout: float, discard: Callable[[], None],
                       failed: str, **carrier: Any) -> MuxConnection:
        import asyncssh

        from hud.serve.mux import ALGORITHMS

        try:
            conn = await asyncio.wait_for(asyncssh.connect(
                describe, username="hud", known_hosts=None, client_keys=None,
                agent_path=None, password=None, config=None, keepalive_interval=0,
                preferred_auth="none", **carrier, **ALGORITHMS,
            ), timeout)
        except (TimeoutError, OSError, asyncssh.Error) as exc:
            discard()
            why = "no answer" if isinstance(exc, TimeoutError) else \
                f"{type(exc).__name__}: {exc}"
            raise InfraError(f"{describe}: the multiplexed connection {failed} "
                             f"({why})") from exc
        return cls(conn, describe)

    @property
    def closed(self) -> bool:
        return bool(self._conn.is_closed())

    async def open(self, name: str, timeout: float = OPEN_TIMEOUT,
                   ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A new stream to `name` (`hud.serve.mux.CONTROL` or a capability). It stays
        open, in the container and the daemon too, until its writer is closed: close it.

        Raises:
            RemoteError: the daemon refused it (an unknown capability, one that is down).
            InfraError: the connection is gone, no daemon answered, or the opening took
                longer than `timeout` seconds.
        """
        import asyncssh

        from hud.serve.mux import StreamSession

        try:
            _, session = await asyncio.wait_for(
                self._conn.create_connection(StreamSession, name, 0), timeout)
        except TimeoutError:
            raise InfraError(f"{self.describe}: opening {name!r} took more than {timeout:g}s; "
                             f"the container's daemon may be stuck (see its log)") from None
        except asyncssh.ChannelOpenError as exc:
            raise _refused(name, exc.reason, self.describe) from None
        except (asyncssh.Error, OSError) as exc:
            raise InfraError(f"{self.describe}: the connection is gone, cannot open "
                             f"{name!r} ({type(exc).__name__}: {exc})") from exc
        assert isinstance(session, StreamSession) and session.writer is not None
        return session.reader, session.writer

    async def close(self) -> None:
        """Close the connection and every stream on it."""
        self._conn.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._conn.wait_closed(), CLOSE_GRACE)
