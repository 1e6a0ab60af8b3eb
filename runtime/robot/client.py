"""`RobotClient`: the policy side of the robot wire, over any pair of asyncio streams.

The host reaches a capability only through a tunnel, which is a byte stream (a unix
socket in-process, `docker exec -i` pipes for a container), never a socket the
websockets client could own. So the client drives websockets' sans-I/O protocol
(`websockets.client.ClientProtocol`) over the streams directly: no socketpair, no pump
task, no extra copy. `RobotClient.connect_tcp` does the same over a plain TCP
connection (benchmarks, or a capability reached on loopback).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from websockets.client import ClientProtocol
from websockets.exceptions import InvalidState
from websockets.frames import Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

from hud.errors import InfraError, ProtocolError
from hud.robot.codec import decode, encode
from hud.robot.contract import Contract
from hud.wire import INVALID_PARAMS, INVALID_REQUEST

#: largest server message accepted (a few camera frames fit many times over)
MAX_MESSAGE = 64 * 1024 * 1024
#: longer than the server's default slot wait, so a "busy" answer arrives before this
TIMEOUT = 60.0
_READ = 1 << 16


class RobotServerError(ProtocolError):
    """The robot server answered with an error frame (`.data` holds the frame)."""


class RobotClient:
    """One WebSocket connection to a robot capability: one episode at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 timeout: float = TIMEOUT) -> None:
        self.reader, self.writer = reader, writer
        self.timeout = timeout
        self.contract: Contract | None = None
        self.hello: dict[str, Any] = {}
        self.last: dict[str, Any] = {}
        self._ws: ClientProtocol | None = None
        self._inbox: list[bytes] = []
        self._parts: list[bytes] = []
        self._closed = False

    @classmethod
    async def connect(cls, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *,
                      episode: str | None = None, timeout: float = TIMEOUT) -> RobotClient:
        """Open the WebSocket over existing streams and read the contract and first obs.

        Raises:
            InfraError: the handshake failed or the server went away.
            RobotServerError: the server refused the episode or had no free slot.
        """
        client = cls(reader, writer, timeout)
        await client._handshake("/" if episode is None else f"/?episode={episode}")
        hello = await client.recv()
        if hello.get("type") != "contract":
            raise ProtocolError(INVALID_REQUEST, f"expected the contract first, got {hello.get('type')!r}")
        client.hello = hello
        client.contract = Contract.model_validate(hello["contract"])
        client.last = await client.recv()
        return client

    @classmethod
    async def connect_tcp(cls, host: str, port: int, **kwargs: Any) -> RobotClient:
        """`connect` over a new TCP connection to host:port.

        Raises:
            InfraError: nothing answers there; see `connect`.
        """
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), TIMEOUT)
        except (TimeoutError, OSError) as exc:
            raise InfraError(f"no robot server answers at {host}:{port}: {exc}") from exc
        return await cls.connect(reader, writer, **kwargs)

    async def _flush(self, closing: bool = False) -> None:
        assert self._ws is not None
        try:
            for data in self._ws.data_to_send():
                if data:
                    self.writer.write(data)
                elif self.writer.can_write_eof():
                    self.writer.write_eof()
            await self.writer.drain()
        except (ConnectionError, RuntimeError) as exc:
            if not closing:  # the peer is gone: the read side reports it with its reason
                raise InfraError(f"the robot connection broke while sending: {exc}") from exc

    async def _handshake(self, path: str) -> None:
        self._ws = ClientProtocol(parse_uri(f"ws://robot{path}"), max_size=MAX_MESSAGE)
        self._ws.send_request(self._ws.connect())
        await self._flush()
        while True:
            events = await self._feed()
            for event in events:
                if isinstance(event, Response):
                    if self._ws.handshake_exc is not None:
                        raise InfraError(f"robot WebSocket handshake failed: "
                                         f"{self._ws.handshake_exc}")
                    self._collect(events[events.index(event) + 1:])
                    return

    async def _feed(self) -> list[Any]:
        assert self._ws is not None
        try:
            data = await asyncio.wait_for(self.reader.read(_READ), self.timeout)
        except TimeoutError:
            raise InfraError(f"the robot server sent nothing for {self.timeout:g}s") from None
        except ConnectionError:
            data = b""  # a reset tunnel is an EOF to the protocol
        if data:
            self._ws.receive_data(data)
        else:
            self._ws.receive_eof()
        events = self._ws.events_received()
        await self._flush(closing=not data)  # pongs, close replies
        if not data and not events:
            raise InfraError(f"the robot server closed the connection "
                             f"({self._ws.close_code}: {self._ws.close_reason or 'no reason'})")
        return events

    def _collect(self, events: list[Any]) -> None:
        for frame in events:
            if frame.opcode is Opcode.CLOSE:
                self._closed = True
            elif frame.opcode in (Opcode.BINARY, Opcode.TEXT, Opcode.CONT):
                self._parts.append(bytes(frame.data))
                if frame.fin:
                    self._inbox.append(b"".join(self._parts))
                    self._parts.clear()

    async def recv_raw(self) -> dict[str, Any]:
        """The next message from the server, decoded, error frames included.

        Raises:
            InfraError: the connection closed or stayed silent past the timeout.
        """
        while not self._inbox:
            if self._closed:
                assert self._ws is not None
                raise InfraError(f"the robot server closed the connection ({self._ws.close_code}: "
                                 f"{self._ws.close_reason or 'no reason'})")
            self._collect(await self._feed())
        message = decode(self._inbox.pop(0))
        if not isinstance(message, dict):
            raise ProtocolError(INVALID_REQUEST, f"the robot server sent a {type(message).__name__}")
        return message

    async def recv(self) -> dict[str, Any]:
        """The next message; an error frame raises.

        Raises:
            RobotServerError: the server sent an error frame.
            InfraError: see `recv_raw`.
        """
        message = await self.recv_raw()
        if message.get("type") == "error":
            raise RobotServerError(INVALID_PARAMS, f"robot server: {message.get('code')}: "
                                           f"{message.get('message')}", message)
        return message

    async def send(self, message: dict[str, Any]) -> None:
        """Send one message (a map; arrays allowed).

        Raises:
            CodecError: the message holds a value the codec does not carry.
            InfraError: the connection is closed or broke.
        """
        assert self._ws is not None
        frame = encode(message)
        try:
            self._ws.send_binary(frame)
        except InvalidState:
            raise InfraError(f"the robot server closed the connection ({self._ws.close_code}: "
                             f"{self._ws.close_reason or 'no reason'})") from None
        await self._flush()

    async def step(self, action: dict[str, Any]) -> dict[str, Any]:
        """Send an action (or chunk) and return the observation frame it produced.

        Raises:
            RobotServerError: the action was refused (the episode was not stepped).
            InfraError: see `recv_raw`.
        """
        await self.send({"type": "action", "action": action})
        self.last = await self.recv()
        return self.last

    async def observe(self) -> dict[str, Any]:
        """The current observation frame, without stepping.

        Raises:
            InfraError: see `recv_raw`.
        """
        await self.send({"type": "observe"})
        return await self.recv()

    async def reset(self, seed: int | None = None) -> dict[str, Any]:
        """Start a new anonymous episode on this connection; return its first observation.

        Raises:
            RobotServerError: the episode is a reserved one (those cannot be reset).
        """
        await self.send({"type": "reset", "seed": seed})
        self.last = await self.recv()
        return self.last

    async def close(self) -> None:
        """Close the WebSocket and the streams; never raises."""
        with contextlib.suppress(Exception):
            if self._ws is not None:
                self._ws.send_close()
                await self._flush()
        with contextlib.suppress(Exception):
            self.writer.close()
            await asyncio.wait_for(self.writer.wait_closed(), 5)
