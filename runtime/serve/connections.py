"""The control server: connections, NDJSON JSON-RPC 2.0 framing, TCP admission, dispatch.

Every connection starts with one frame that decides what it is: `tunnel.open` makes it a
raw byte pipe to a capability (hud.serve.tunnel); anything else makes it a session channel
(the methods are in hud.serve.methods). Bad input is answered with a JSON-RPC error and the
connection keeps serving: a parse error, a non-object, nesting too deep, an unknown
method, bad params, an oversize frame, template code that raises. Every request with an
id gets exactly one reply, and a reply is always a valid frame: one that cannot be
encoded becomes an INTERNAL_ERROR frame saying why.

TCP (`TcpPolicy`) is guarded before anything else is read: at most `max_connections` at
once (past that: one error frame, then close); with a token, the first frame must arrive
within `auth_timeout` seconds, be at most `auth_frame_limit` bytes and carry the token,
else one error frame and close — nothing large is buffered or parsed before auth;
optionally, a connection that sends no complete frame for `idle_timeout` seconds is
answered and closed. The unix socket is root-only and has none of these limits.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from dataclasses import dataclass
from typing import Any

from hud import messages as p
from hud import wire
from hud.environment import Environment
from hud.errors import ConfigError, EnvLoadError, ProtocolError, TaskError
from hud.framing import OVERSIZE, FrameReader
from hud.records import Invalid
from hud.serve.methods import Conn, SessionMethods
from hud.serve.runner import really_cancelled
from hud.serve.tunnel import open_tunnel, splice

log = logging.getLogger("hud.serve.connections")

#: a connection that held this many bytes at once returns freed memory to the OS on close
TRIM_AFTER = 1 << 20
#: seconds a connection the daemon refuses may still send (discarded) before it is closed
LINGER = 2.0
_TOKEN_HINT = "pass params.token in the first frame (hud: --token-file or HUD_TOKEN)"


@dataclass
class TcpPolicy:
    """How the daemon guards its TCP listener (see the module docstring). `idle_timeout`
    also bounds how long a reply may wait for the client to read it."""

    token: str | None = None
    max_connections: int = 64
    idle_timeout: float | None = None
    auth_timeout: float = 10.0
    auth_frame_limit: int = 64 * 1024
    active: int = 0


def encode_reply(frame: dict[str, Any]) -> bytes:
    """`frame` as bytes; when it cannot be encoded, an INTERNAL_ERROR frame saying why."""
    try:
        return wire.encode(frame)
    except Exception as exc:  # noqa: BLE001 - whatever a value did to json.dumps
        problem = f"{type(exc).__name__}: {exc}"
    log.error("a reply could not be encoded as JSON (%s); sent an error instead", problem)
    request_id = frame.get("id")
    if not isinstance(request_id, (int, str)):
        request_id = None
    message = (f"internal error: the reply could not be encoded as JSON ({problem[:300]}); "
               f"this is a bug in hud or in the task's code, see the daemon log")
    try:
        return wire.encode(wire.error_frame(request_id, wire.INTERNAL_ERROR, message))
    except Exception:  # noqa: BLE001 - e.g. an id json cannot write
        return wire.encode(wire.error_frame(None, wire.INTERNAL_ERROR, message))


_libc: Any = None


def trim_memory() -> None:
    """Give freed heap memory back to the OS (glibc's malloc_trim); a no-op elsewhere."""
    global _libc
    try:
        if _libc is None:
            import ctypes.util  # on the first large connection, not at every daemon start

            _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        _libc.malloc_trim(0)
    except (OSError, AttributeError):
        _libc = False  # not glibc: nothing to trim with


async def _linger(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Half-close, then discard what the peer still sends for up to LINGER seconds: a
    socket closed with unread input resets the connection, and the peer could lose the
    error frame that says why it was refused."""
    try:
        if writer.can_write_eof():
            writer.write_eof()
        async with asyncio.timeout(LINGER):
            while await reader.read(1 << 16):
                pass
    except (ConnectionError, TimeoutError, OSError, RuntimeError):
        pass


class _Conn(Conn):
    """Per-connection state: the writer and the attached session, if any."""

    def __init__(self, writer: asyncio.StreamWriter, drain_timeout: float | None) -> None:
        self.writer = writer
        self.session = None
        self.closed = False
        #: the daemon hangs up on its own (auth, cap, idle): linger so the error is read
        self.refused = False
        self._drain_timeout = drain_timeout

    async def send(self, frame: dict[str, Any]) -> None:
        if self.closed:
            return
        try:
            self.writer.write(encode_reply(frame))
            async with asyncio.timeout(self._drain_timeout):
                await self.writer.drain()
        except (ConnectionError, RuntimeError, TimeoutError):
            self.closed = True


class ControlServer(SessionMethods):
    """Serves one environment's sessions and tunnels over any stream transport."""

    def __init__(
        self,
        env: Environment | None,
        *,
        load_error: EnvLoadError | None = None,
        session_ttl: float = 3600.0,
        max_frame: int = p.MAX_FRAME_BYTES,
    ) -> None:
        super().__init__(env, load_error, session_ttl)
        self.max_frame = max_frame

    async def handle(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        tcp: TcpPolicy | None = None,
    ) -> None:
        """Serve one connection until it closes; `tcp` guards a TCP connection."""
        conn = _Conn(writer, tcp.idle_timeout if tcp else None)
        frames = FrameReader(reader, self.max_frame)
        admitted = False
        try:
            if tcp is not None:
                if tcp.active >= tcp.max_connections:
                    conn.refused = True
                    await conn.send(wire.error_frame(
                        None, wire.INVALID_REQUEST,
                        f"too many connections: this daemon serves at most "
                        f"{tcp.max_connections} TCP connections at once; close one, or start "
                        f"it with a larger --max-connections"))
                    return
                tcp.active += 1
                admitted = True
            await self._serve(conn, reader, frames, tcp)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except Exception as exc:  # a bug in hud: say so before closing
            log.exception("internal error serving a connection")
            await conn.send(wire.error_frame(None, wire.INTERNAL_ERROR, f"internal error: "
                                          f"{type(exc).__name__}: {exc}; closing the connection"))
        finally:
            if admitted:
                assert tcp is not None
                tcp.active -= 1
            if conn.session is not None:
                self.sessions.detach(conn.session)
            if conn.refused:
                await _linger(reader, writer)
            conn.closed = True
            writer.close()
            if frames.high_water >= TRIM_AFTER:
                del frames
                trim_memory()

    async def _serve(self, conn: _Conn, reader: asyncio.StreamReader, frames: FrameReader,
                     tcp: TcpPolicy | None) -> None:
        first = True
        if tcp is not None and tcp.token is not None:
            request = await self._authenticate(conn, frames, tcp)
            if request is None:
                return
            first = False
            if request.method == "tunnel.open":
                await self._tunnel(conn, request, reader, frames)
                return
            await self._dispatch(conn, request)
            if request.method == "bye":
                return
        idle = tcp.idle_timeout if tcp is not None else None
        while not conn.closed:
            try:
                async with asyncio.timeout(idle):
                    raw = await frames.next()
            except TimeoutError:
                conn.refused = True
                await conn.send(wire.error_frame(
                    None, wire.INVALID_REQUEST,
                    f"closing the connection: no complete frame for {idle:g}s (the daemon's "
                    f"--idle-timeout); reconnect, `hello {{session_id}}` resumes a session"))
                return
            if raw is None:
                return
            if raw is OVERSIZE:
                await conn.send(wire.error_frame(
                    None, wire.INVALID_REQUEST,
                    f"frame larger than the limit of {self.max_frame} bytes was dropped; "
                    f"send less, or start the daemon with a larger --max-frame"))
                continue
            assert isinstance(raw, bytes)
            if not raw.strip():
                continue
            decoded = self._decode(raw)
            if isinstance(decoded, dict):
                await conn.send(decoded)
                continue
            request = decoded
            if first:
                first = False
                request.params.pop("token", None)  # auth rides on the first frame only
                if request.method == "tunnel.open":
                    await self._tunnel(conn, request, reader, frames)
                    return
            await self._dispatch(conn, request)
            if request.method == "bye":
                return

    async def _authenticate(self, conn: _Conn, frames: FrameReader,
                            tcp: TcpPolicy) -> p.Request | None:
        """Read and check the first frame of a connection that needs a token.

        Returns the request (token removed), or None after answering why not.
        """
        assert tcp.token is not None
        frames.limit = min(self.max_frame, tcp.auth_frame_limit)
        conn.refused = True  # until the token checks out
        raw: bytes | object | None = b""
        try:
            async with asyncio.timeout(tcp.auth_timeout):
                while isinstance(raw, bytes) and not raw.strip():
                    raw = await frames.next(stop_at_limit=True)
        except TimeoutError:
            await conn.send(wire.error_frame(
                None, wire.INVALID_REQUEST,
                f"no token within {tcp.auth_timeout:g}s: this endpoint needs a token; "
                f"{_TOKEN_HINT}"))
            return None
        if raw is None:
            return None
        if raw is OVERSIZE:
            await conn.send(wire.error_frame(
                None, wire.INVALID_REQUEST,
                f"the first frame on this endpoint must be a small request carrying the "
                f"token (at most {frames.limit} bytes); {_TOKEN_HINT}"))
            return None
        assert isinstance(raw, bytes)
        request = self._decode(raw)
        given = None if isinstance(request, dict) else request.params.get("token")
        if not isinstance(given, str) or not hmac.compare_digest(
            given.encode(errors="surrogatepass"), tcp.token.encode()
        ):
            request_id = request.get("id") if isinstance(request, dict) else request.id
            await conn.send(wire.error_frame(request_id, wire.INVALID_REQUEST,
                                          f"this endpoint needs a token: {_TOKEN_HINT}"))
            return None
        assert not isinstance(request, dict)
        request.params.pop("token", None)
        frames.limit = self.max_frame
        conn.refused = False
        return request

    def _decode(self, raw: bytes) -> p.Request | dict[str, Any]:
        """The request in `raw`, or the error frame that answers it."""
        try:
            obj = json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            what = "nested too deeply" if isinstance(exc, RecursionError) else f"not JSON ({exc})"
            return wire.error_frame(None, wire.PARSE_ERROR, f"parse error: {what}; send one "
                                    f"JSON-RPC 2.0 object per line")
        if not isinstance(obj, dict):
            return wire.error_frame(None, wire.INVALID_REQUEST, f"a frame must be a JSON object, "
                                    f"got {type(obj).__name__}: {raw[:80]!r}")
        try:
            return p.Request.model_validate(obj)
        except (Invalid, RecursionError) as exc:
            problems = "nested too deeply" if isinstance(exc, RecursionError) else "; ".join(
                f"{where or 'frame'}: {what}" for where, what in exc.problems
            )
            request_id = obj.get("id")
            return wire.error_frame(
                request_id if isinstance(request_id, (int, str)) else None,
                wire.INVALID_REQUEST,
                f"not a JSON-RPC 2.0 request ({problems}); expected "
                f'{{"jsonrpc": "2.0", "id": 1, "method": "hello", "params": {{}}}}',
            )

    async def _dispatch(self, conn: _Conn, request: p.Request) -> None:
        method = self.methods.get(request.method)
        try:
            if request.method == "tunnel.open":
                raise ProtocolError(
                    wire.INVALID_REQUEST,
                    "tunnel.open must be the first frame of a connection; open a new one",
                )
            if method is None:
                raise ProtocolError(
                    wire.METHOD_NOT_FOUND,
                    f"unknown method {request.method!r}; methods: "
                    f"{', '.join(p.SESSION_METHODS)} (or tunnel.open as a first frame)",
                )
            try:
                params = p.PARAMS_BY_METHOD[request.method].model_validate(request.params)
            except Invalid as exc:
                problems = "; ".join(f"{where}: {what}" for where, what in exc.problems)
                raise ProtocolError(
                    wire.INVALID_PARAMS, f"bad params for {request.method}: {problems}"
                ) from None
            if self.env is None and request.method != "bye":
                assert self.load_error is not None
                raise ProtocolError(
                    wire.ENV_LOAD_ERROR,
                    f"the environment failed to load: {self.load_error}",
                    {"traceback": self.load_error.traceback},
                )
            result = await method(conn, params)
        except ProtocolError as exc:
            frame = wire.error_frame(request.id, exc.code, str(exc), exc.data)
        except TaskError as exc:
            frame = wire.error_frame(request.id, wire.TASK_ERROR, str(exc),
                                  {"traceback": exc.traceback} if exc.traceback else None)
        except ConfigError as exc:
            frame = wire.error_frame(request.id, wire.INVALID_PARAMS, str(exc))
        except BaseException as exc:  # a bug in hud itself: report it, keep serving
            if really_cancelled(exc):
                raise
            log.exception("internal error in %s", request.method)
            frame = wire.error_frame(request.id, wire.INTERNAL_ERROR,
                                  f"internal error: {type(exc).__name__}: {exc}")
        else:
            frame = wire.result_frame(request.id, result)
        if request.id is not None:
            await conn.send(frame)

    async def _tunnel(self, conn: _Conn, request: p.Request, reader: asyncio.StreamReader,
                      frames: FrameReader) -> None:
        try:
            params = p.TunnelOpenParams.model_validate(request.params)
            binding = self.bindings.get(params.capability)
            if binding is None:
                known = ", ".join(sorted(self.bindings)) or "none"
                raise ProtocolError(
                    wire.INVALID_PARAMS,
                    f"unknown capability {params.capability!r}; this environment has: {known}",
                )
            up_reader, up_writer = await open_tunnel(binding)
        except Invalid as exc:
            await conn.send(wire.error_frame(request.id, wire.INVALID_PARAMS, f"bad params for "
                                          f"tunnel.open: {exc.problems[0][1]}"))
            return
        except ProtocolError as exc:
            await conn.send(wire.error_frame(request.id, exc.code, str(exc), exc.data))
            return
        await conn.send(wire.result_frame(request.id, {"capability": binding.name,
                                                    "protocol": binding.protocol}))
        await splice(reader, conn.writer, up_reader, up_writer, frames.take_buffered())
