"""The host's async side of the control protocol, over any byte stream.

A `Channel` speaks to a daemon through whatever carries bytes: a unix socket (local
placement), TCP, or the pipes of `docker exec -i CONTAINER hud connect`. Calls are
sequential on one channel (the protocol is request/reply per session); every call has
a timeout. A stream that ends is an `InfraError` — a dead container or a broken tunnel
— never a task outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from hud import wire
from hud.errors import InfraError, ProtocolError
from hud.framing import OVERSIZE, FrameReader
from hud.messages import MAX_FRAME_BYTES

DEFAULT_CALL_TIMEOUT = 600.0


class Channel:
    """JSON-RPC 2.0 calls over a (reader, writer) pair."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        describe: str = "hud daemon",
        on_close: Callable[[], Awaitable[None]] | None = None,
        diagnose: Callable[[], Awaitable[str]] | None = None,
    ) -> None:
        self._frames = FrameReader(reader, MAX_FRAME_BYTES)
        self._writer = writer
        self._describe = describe
        self._on_close = on_close
        self._diagnose = diagnose
        self._lock = asyncio.Lock()
        self._next_id = 0
        self.closed = False

    async def _broken(self, method: str, why: str) -> InfraError:
        detail = ""
        if self._diagnose is not None:
            with contextlib.suppress(Exception):
                detail = await asyncio.wait_for(self._diagnose(), 10)
        return InfraError(f"{self._describe}: connection lost during {method} ({why})"
                          + (f"\n{detail}" if detail else ""))

    async def call(
        self, method: str, params: dict[str, Any] | None = None, *,
        timeout: float = DEFAULT_CALL_TIMEOUT,
    ) -> Any:
        """Send one request and return its result.

        Raises:
            RemoteError: the daemon answered an error.
            ProtocolError: the reply is not a JSON-RPC 2.0 reply to this request, or is
                larger than the frame limit.
            InfraError: the stream ended or the reply did not come within `timeout`.
        """
        async with self._lock:
            if self.closed:
                raise InfraError(f"{self._describe}: channel already closed (call {method})")
            self._next_id += 1
            request_id = self._next_id
            frame = wire.request_frame(request_id, method, params)
            # one deadline for the whole call: a peer that keeps sending blank lines or
            # stale replies must not hold it open past `timeout`
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            try:
                # lenient like Python's json: an agent's answer may hold NaN (the daemon reads it)
                self._writer.write(wire.encode(frame, allow_nan=True))
                await asyncio.wait_for(self._writer.drain(), timeout)
                while True:
                    raw = await asyncio.wait_for(self._frames.next(),
                                                 max(0.0, deadline - loop.time()))
                    if raw is None:
                        raise await self._broken(method, "end of stream")
                    if raw is OVERSIZE:
                        raise ProtocolError(wire.INVALID_REQUEST, f"{self._describe} answered "
                                            f"{method} with a frame over the limit of "
                                            f"{MAX_FRAME_BYTES} bytes")
                    assert isinstance(raw, bytes)
                    if not raw.strip():
                        continue
                    reply = wire.decode_reply(raw, method=method, peer=self._describe)
                    if not _stale(reply.get("id"), request_id):
                        break
            except TimeoutError:
                raise InfraError(f"{self._describe}: no reply to {method} within {timeout:g}s") from None
            except (ConnectionError, BrokenPipeError) as exc:
                raise await self._broken(method, f"{type(exc).__name__}: {exc}") from exc
        return wire.reply_result(reply, request_id, method=method, peer=self._describe)

    async def switch(
        self, request: bytes, answer: bytes,
        carrier: Callable[[], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]],
        *, timeout: float,
    ) -> None:
        """Move the channel onto another stream, with no call in flight (calls wait
        meanwhile): write `request`, drop every frame up to the one that is `answer`
        (late replies to calls given up on, a partial frame), then continue on the
        (reader, writer) `carrier()` makes of the old stream (hud.serve.upgrade).

        Raises:
            InfraError: the stream ended, or `answer` did not come within `timeout`.
            ProtocolError: bytes followed `answer` before the new stream started.
            Whatever `carrier` raises. The channel is closed on any failure.
        """
        async with self._lock:
            if self.closed:
                raise InfraError(f"{self._describe}: channel already closed")
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            try:
                self._writer.write(request)
                await asyncio.wait_for(self._writer.drain(), timeout)
                while (raw := await asyncio.wait_for(
                        self._frames.next(), max(0.0, deadline - loop.time()))) != answer:
                    if raw is None:
                        raise await self._broken("the switch", "end of stream")
                if self._frames.buffered:
                    raise ProtocolError(wire.INVALID_REQUEST, f"{self._describe} sent "
                                        f"{self._frames.buffered} bytes after {answer!r}")
                reader, writer = await carrier()
            except TimeoutError:
                await self.close()
                raise InfraError(f"{self._describe}: no answer to the switch within "
                                 f"{timeout:g}s") from None
            except (ConnectionError, BrokenPipeError) as exc:
                await self.close()
                raise await self._broken("the switch", f"{type(exc).__name__}: {exc}") from exc
            except BaseException:
                await self.close()
                raise
            self._frames = FrameReader(reader, MAX_FRAME_BYTES)
            self._writer = writer

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(Exception):
            self._writer.close()
        if self._on_close is not None:
            await self._on_close()


def _stale(reply_id: object, request_id: int) -> bool:
    """A reply to an earlier call of this channel (one that timed out): skip it."""
    return isinstance(reply_id, int) and not isinstance(reply_id, bool) and reply_id < request_id


async def open_tunnel_stream(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, capability: str,
    token: str | None = None, timeout: float = 30.0,
) -> None:
    """Send `tunnel.open` on a fresh connection and consume the reply line.

    Raises:
        RemoteError: the daemon refused (unknown capability, capability down).
        ProtocolError: the reply is not a JSON-RPC 2.0 reply to tunnel.open.
        InfraError: the connection ended before the reply.
    """
    request = wire.tunnel_request(capability, token)
    writer.write(wire.encode(request))
    await writer.drain()
    try:
        line = await asyncio.wait_for(reader.readline(), timeout)
    except TimeoutError:
        raise InfraError(f"no reply to tunnel.open {capability!r} within {timeout:g}s") from None
    if not line:
        raise InfraError(f"the connection closed before tunnel.open {capability!r} was answered")
    wire.read_reply(line, request["id"], method=f"tunnel.open {capability!r}")
