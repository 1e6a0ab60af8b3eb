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
import json
from collections.abc import Awaitable, Callable
from typing import Any

from hud.errors import InfraError, ProtocolError, RemoteError
from hud.framing import OVERSIZE, FrameReader, encode
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
            InfraError: the stream ended or the reply did not come within `timeout`.
        """
        async with self._lock:
            if self.closed:
                raise InfraError(f"{self._describe}: channel already closed (call {method})")
            self._next_id += 1
            request_id = self._next_id
            frame = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params or {}}
            try:
                # lenient like Python's json: an agent's answer may hold NaN (the daemon reads it)
                self._writer.write(encode(frame, allow_nan=True))
                await self._writer.drain()
                while True:
                    raw = await asyncio.wait_for(self._frames.next(), timeout)
                    if raw is None:
                        raise await self._broken(method, "end of stream")
                    if raw is OVERSIZE:
                        raise ProtocolError(-32600, f"reply to {method} exceeds the frame limit")
                    assert isinstance(raw, bytes)
                    if not raw.strip():
                        continue
                    reply = json.loads(raw)
                    if reply.get("id") == request_id or reply.get("id") is None:
                        break
            except asyncio.TimeoutError:
                raise InfraError(f"{self._describe}: no reply to {method} within {timeout:g}s") from None
            except (ConnectionError, BrokenPipeError) as exc:
                raise await self._broken(method, f"{type(exc).__name__}: {exc}") from exc
            except ValueError as exc:
                raise ProtocolError(-32700, f"{self._describe} sent a non-JSON frame: {exc}") from exc
        if "error" in reply:
            err = reply["error"]
            raise RemoteError(err.get("code", 0), err.get("message", "?"), err.get("data"))
        return reply.get("result")

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(Exception):
            self._writer.close()
        if self._on_close is not None:
            await self._on_close()


async def open_tunnel_stream(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, capability: str,
    token: str | None = None, timeout: float = 30.0,
) -> None:
    """Send `tunnel.open` on a fresh connection and consume the reply line.

    Raises:
        RemoteError: the daemon refused (unknown capability, capability down).
        InfraError: the connection ended before the reply.
    """
    params: dict[str, Any] = {"capability": capability}
    if token:
        params["token"] = token
    writer.write(encode({"jsonrpc": "2.0", "id": 1, "method": "tunnel.open", "params": params}))
    await writer.drain()
    try:
        line = await asyncio.wait_for(reader.readline(), timeout)
    except asyncio.TimeoutError:
        raise InfraError(f"no reply to tunnel.open {capability!r} within {timeout:g}s") from None
    if not line:
        raise InfraError(f"the connection closed before tunnel.open {capability!r} was answered")
    reply = json.loads(line)
    if "error" in reply:
        err = reply["error"]
        raise RemoteError(err.get("code", 0), err.get("message", "?"), err.get("data"))
