"""The control server: one connection at a time per session, NDJSON JSON-RPC 2.0.

Every connection starts with one frame that decides what it is: `tunnel.open` makes it a
raw byte pipe to a capability (hud.tunnel); anything else makes it a session channel.
Bad input is answered with a JSON-RPC error and the connection keeps serving: a parse
error, a non-object, an unknown method, bad params, an oversize frame, template code
that raises. Only an auth failure on TCP closes the connection.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from typing import Any

from pydantic import ValidationError

from hud import protocol as p
from hud.environment import Environment
from hud.errors import ConfigError, EnvLoadError, ProtocolError, TaskError
from hud.framing import OVERSIZE, FrameReader, encode
from hud.runner import TaskRun
from hud.sessions import Session, SessionRegistry
from hud.tunnel import open_tunnel, splice

log = logging.getLogger("hud.server")


class _Conn:
    """Per-connection state: the writer and the attached session, if any."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.session: Session | None = None
        self.closed = False

    async def send(self, frame: dict[str, Any]) -> None:
        if self.closed:
            return
        try:
            self.writer.write(encode(frame))
            await self.writer.drain()
        except (ConnectionError, RuntimeError):
            self.closed = True


class ControlServer:
    """Serves one environment's sessions and tunnels over any stream transport."""

    def __init__(
        self,
        env: Environment | None,
        *,
        load_error: EnvLoadError | None = None,
        session_ttl: float = 3600.0,
        max_frame: int = p.MAX_FRAME_BYTES,
    ) -> None:
        if env is None and load_error is None:
            raise ValueError("ControlServer needs an environment or the error that stopped it")
        self.env = env
        self.load_error = load_error
        self.max_frame = max_frame
        self.sessions = SessionRegistry(session_ttl)
        self.bindings: dict[str, p.Binding] = {}
        self._methods = {
            "hello": self._hello,
            "tasks.list": self._tasks_list,
            "tasks.start": self._tasks_start,
            "tasks.grade": self._tasks_grade,
            "tasks.cancel": self._tasks_cancel,
            "tasks.solve": self._tasks_solve,
            "bye": self._bye,
        }

    # -- connections -------------------------------------------------------------------

    async def handle(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        token: str | None = None,
    ) -> None:
        """Serve one connection until it closes. `token`, when set, must come first."""
        conn = _Conn(writer)
        frames = FrameReader(reader, self.max_frame)
        first = True
        try:
            while not conn.closed:
                raw = await frames.next()
                if raw is None:
                    break
                if raw is OVERSIZE:
                    await conn.send(
                        p.error_frame(
                            None,
                            p.INVALID_REQUEST,
                            f"frame larger than the limit of {self.max_frame} bytes was dropped; "
                            f"send less, or start the daemon with a larger --max-frame",
                        )
                    )
                    continue
                assert isinstance(raw, bytes)
                if not raw.strip():
                    continue
                request = await self._parse(conn, raw)
                if request is None:
                    continue
                if first:
                    first = False
                    if token is not None and not self._authorized(request, token):
                        await conn.send(
                            p.error_frame(
                                request.id,
                                p.INVALID_REQUEST,
                                "this endpoint needs a token: pass params.token in the first "
                                "frame (hud: --token or HUD_TOKEN)",
                            )
                        )
                        break
                    request.params.pop("token", None)  # auth rides on the first frame only
                    if request.method == "tunnel.open":
                        await self._tunnel(conn, request, reader, frames)
                        return
                await self._dispatch(conn, request)
                if request.method == "bye":
                    break
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            if conn.session is not None:
                self.sessions.detach(conn.session)
            conn.closed = True
            writer.close()

    @staticmethod
    def _authorized(request: p.Request, token: str) -> bool:
        given = request.params.get("token")
        return isinstance(given, str) and hmac.compare_digest(given.encode(), token.encode())

    async def _parse(self, conn: _Conn, raw: bytes) -> p.Request | None:
        try:
            obj = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            await conn.send(
                p.error_frame(None, p.PARSE_ERROR, f"parse error: not JSON ({exc}); send one "
                              f"JSON-RPC 2.0 object per line")
            )
            return None
        if not isinstance(obj, dict):
            await conn.send(
                p.error_frame(None, p.INVALID_REQUEST, f"a frame must be a JSON object, got "
                              f"{type(obj).__name__}: {raw[:80]!r}")
            )
            return None
        try:
            return p.Request.model_validate(obj)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'frame'}: {e['msg']}" for e in exc.errors()
            )
            await conn.send(
                p.error_frame(
                    obj.get("id") if isinstance(obj.get("id"), (int, str)) else None,
                    p.INVALID_REQUEST,
                    f"not a JSON-RPC 2.0 request ({problems}); expected "
                    f'{{"jsonrpc": "2.0", "id": 1, "method": "hello", "params": {{}}}}',
                )
            )
            return None

    async def _dispatch(self, conn: _Conn, request: p.Request) -> None:
        method = self._methods.get(request.method)
        try:
            if request.method == "tunnel.open":
                raise ProtocolError(
                    p.INVALID_REQUEST,
                    "tunnel.open must be the first frame of a connection; open a new one",
                )
            if method is None:
                raise ProtocolError(
                    p.METHOD_NOT_FOUND,
                    f"unknown method {request.method!r}; methods: "
                    f"{', '.join(p.SESSION_METHODS)} (or tunnel.open as a first frame)",
                )
            params_model = p.PARAMS_BY_METHOD[request.method]
            try:
                params = params_model.model_validate(request.params)
            except ValidationError as exc:
                problems = "; ".join(
                    f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()
                )
                raise ProtocolError(
                    p.INVALID_PARAMS, f"bad params for {request.method}: {problems}"
                ) from None
            if self.env is None and request.method != "bye":
                assert self.load_error is not None
                raise ProtocolError(
                    p.ENV_LOAD_ERROR,
                    f"the environment failed to load: {self.load_error}",
                    {"traceback": self.load_error.traceback},
                )
            result = await method(conn, params)
        except ProtocolError as exc:
            frame = p.error_frame(request.id, exc.code, str(exc), exc.data)
        except TaskError as exc:
            frame = p.error_frame(
                request.id, p.TASK_ERROR, str(exc), {"traceback": exc.traceback} if exc.traceback else None
            )
        except ConfigError as exc:
            frame = p.error_frame(request.id, p.INVALID_PARAMS, str(exc))
        except Exception as exc:  # a bug in hud itself: report it, keep serving
            log.exception("internal error in %s", request.method)
            frame = p.error_frame(request.id, -32603, f"internal error: {type(exc).__name__}: {exc}")
        else:
            frame = p.result_frame(request.id, result)
        if request.id is not None:
            await conn.send(frame)

    # -- session methods ---------------------------------------------------------------

    def _session(self, conn: _Conn) -> Session:
        if conn.session is None:
            conn.session = self.sessions.new()
        return conn.session

    def manifest(self, session_id: str | None = None) -> p.Manifest:
        assert self.env is not None
        manifest = self.env.manifest(list(self.bindings.values()))
        manifest.session_id = session_id
        return manifest

    async def _hello(self, conn: _Conn, params: p.HelloParams) -> dict[str, Any]:
        if params.session_id is not None and (
            conn.session is None or conn.session.id != params.session_id
        ):
            resumed = self.sessions.resume(params.session_id)
            if conn.session is not None:
                self.sessions.detach(conn.session)
            conn.session = resumed
        session = self._session(conn)
        return self.manifest(session.id).model_dump(mode="json")

    async def _tasks_list(self, conn: _Conn, params: p.EmptyParams) -> dict[str, Any]:
        manifest = self.manifest()
        return {
            "tasks": [t.model_dump(mode="json") for t in manifest.tasks],
            "templates": [t.model_dump(mode="json") for t in manifest.templates],
        }

    async def _tasks_start(self, conn: _Conn, params: p.StartParams) -> dict[str, Any]:
        assert self.env is not None
        session = self._session(conn)
        if session.in_progress:
            assert session.run is not None
            raise ProtocolError(
                p.INVALID_REQUEST,
                f"task {session.run.slug!r} is already in progress in this session; grade or "
                f"cancel it first, or open another connection",
            )
        template, args = self.env.resolve(params.id, params.args)
        run = TaskRun(template, args)
        session.run = run
        try:
            return await run.start()
        except TaskError:
            session.run = None
            raise

    def _select(self, conn: _Conn, name: str | None, session_id: str | None) -> Session:
        own = conn.session
        if own is not None and own.in_progress and session_id in (None, own.id):
            assert own.run is not None
            if name is None or own.run.matches(name):
                return own
        adopted = self.sessions.adopt(name, session_id)
        if own is not None and own is not adopted:
            self.sessions.detach(own)
        conn.session = adopted
        return adopted

    async def _finish(self) -> None:
        assert self.env is not None
        # The shell's sweep kills every process of the agent's uid, browsers and displays
        # included: it goes first, so they restart after it rather than being killed anew.
        ordered = sorted(self.env.capabilities.values(),
                         key=lambda c: 0 if c.protocol.startswith("ssh/") else 1)
        for capability in ordered:
            try:
                await capability.task_ended()
            except Exception:
                log.exception("capability %s failed to clean up after a task", capability.name)

    async def _tasks_grade(self, conn: _Conn, params: p.GradeParams) -> dict[str, Any]:
        session = self._select(conn, params.id, params.session_id)
        run = session.run
        assert run is not None
        assert self.env is not None
        for capability in self.env.capabilities.values():
            try:
                await capability.before_grade()
            except Exception:
                log.exception("capability %s failed to stop the agent before grading",
                              capability.name)
        try:
            return await run.grade(params.answer)
        finally:
            session.run = None
            await self._finish()

    async def _tasks_cancel(self, conn: _Conn, params: p.CancelParams) -> dict[str, Any]:
        session = self._select(conn, params.id, params.session_id)
        run = session.run
        assert run is not None
        session.run = None
        await run.cancel()
        await self._finish()
        return {"cancelled": run.slug, "session_id": session.id}

    async def _tasks_solve(self, conn: _Conn, params: p.EmptyParams) -> dict[str, Any]:
        """Run the task's reference solution in the daemon (for the `oracle` agent)."""
        session = conn.session
        if session is None or not session.in_progress:
            raise ProtocolError(p.INVALID_REQUEST, "no task in progress in this session; "
                                "tasks.solve works on the task this connection started")
        assert session.run is not None
        return {"answer": await session.run.solve()}

    async def _bye(self, conn: _Conn, params: p.EmptyParams) -> dict[str, Any]:
        session = conn.session
        if session is not None and session.run is not None:
            run, session.run = session.run, None
            await run.cancel()
            await self._finish()
        return {}

    # -- tunnels, expiry, shutdown -----------------------------------------------------

    async def _tunnel(
        self,
        conn: _Conn,
        request: p.Request,
        reader: asyncio.StreamReader,
        frames: FrameReader,
    ) -> None:
        try:
            params = p.TunnelOpenParams.model_validate(request.params)
            binding = self.bindings.get(params.capability)
            if binding is None:
                known = ", ".join(sorted(self.bindings)) or "none"
                raise ProtocolError(
                    p.INVALID_PARAMS,
                    f"unknown capability {params.capability!r}; this environment has: {known}",
                )
            up_reader, up_writer = await open_tunnel(binding)
        except ValidationError as exc:
            await conn.send(p.error_frame(request.id, p.INVALID_PARAMS, f"bad params for "
                                          f"tunnel.open: {exc.errors()[0]['msg']}"))
            return
        except ProtocolError as exc:
            await conn.send(p.error_frame(request.id, exc.code, str(exc), exc.data))
            return
        await conn.send(p.result_frame(request.id, {"capability": binding.name,
                                                    "protocol": binding.protocol}))
        await splice(reader, conn.writer, up_reader, up_writer, frames.take_buffered())

    async def expire_parked(self) -> int:
        """Cancel and forget parked sessions past their TTL; returns how many."""
        gone = self.sessions.expired()
        for session in gone:
            log.warning("parked session %s expired after %gs; cancelling it",
                        session.describe(), self.sessions.ttl)
            if session.run is not None:
                await session.run.cancel()
        if gone:
            await self._finish()
        return len(gone)

    async def cancel_all(self) -> None:
        """Cancel every task in progress (shutdown): their cleanup code runs."""
        for session in self.sessions.all():
            if session.run is not None:
                run, session.run = session.run, None
                await run.cancel()
            self.sessions.drop(session)
