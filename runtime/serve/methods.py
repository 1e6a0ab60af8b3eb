"""The session methods of the control protocol: hello, tasks.*, bye (DESIGN §4).

`SessionMethods` holds what the methods work on — the environment, the sessions, the
capabilities' bindings — and knows nothing of connections or framing (hud.serve.connections).

One running environment serves `env.concurrency` tasks at once (1 unless the
environment declares more): a session counts from `tasks.start` until its task is
graded or cancelled *and* the capabilities cleaned up after it, parked or not. A start
beyond that is refused with the tasks in progress and what to do.

Around each task the capabilities run their hooks, the ssh workspace first (its sweep
kills every process of the agent's uid, browsers and displays included, so they restart
after it rather than being killed anew): `before_start` before the template's setup (a
failure refuses the start), `before_grade` before grading, `task_ended` after.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from hud import messages as p
from hud import wire
from hud.capability import Capability
from hud.environment import Environment
from hud.errors import EnvLoadError, ProtocolError
from hud.serve.runner import TaskRun, really_cancelled
from hud.serve.sessions import Session, SessionRegistry

log = logging.getLogger("hud.serve.methods")


class Conn:
    """What a method sees of its connection: the attached session, if any."""

    session: Session | None = None


class SessionMethods:
    """hello, tasks.list/start/grade/cancel/solve and bye over a SessionRegistry."""

    def __init__(self, env: Environment | None, load_error: EnvLoadError | None,
                 session_ttl: float) -> None:
        if env is None and load_error is None:
            raise ValueError("ControlServer needs an environment or the error that stopped it")
        self.env = env
        self.load_error = load_error
        self.sessions = SessionRegistry(session_ttl)
        self.bindings: dict[str, p.Binding] = {}
        # each method takes its own params model (PARAMS_BY_METHOD), hence Any
        self.methods: dict[str, Callable[[Conn, Any], Awaitable[dict[str, Any]]]] = {
            "hello": self._hello,
            "tasks.list": self._tasks_list,
            "tasks.start": self._tasks_start,
            "tasks.grade": self._tasks_grade,
            "tasks.cancel": self._tasks_cancel,
            "tasks.solve": self._tasks_solve,
            "bye": self._bye,
        }

    def _session(self, conn: Conn) -> Session:
        if conn.session is None:
            conn.session = self.sessions.new()
        return conn.session

    def manifest(self, session_id: str | None = None) -> p.Manifest:
        assert self.env is not None
        manifest = self.env.manifest(list(self.bindings.values()))
        manifest.session_id = session_id
        return manifest

    async def _hello(self, conn: Conn, params: p.HelloParams) -> dict[str, Any]:
        if params.session_id is not None and (
            conn.session is None or conn.session.id != params.session_id
        ):
            resumed = self.sessions.resume(params.session_id)
            if conn.session is not None:
                self.sessions.detach(conn.session)
            conn.session = resumed
        session = self._session(conn)
        return self.manifest(session.id).model_dump(mode="json")

    async def _tasks_list(self, conn: Conn, params: p.EmptyParams) -> dict[str, Any]:
        manifest = self.manifest()
        return {
            "tasks": [t.model_dump(mode="json") for t in manifest.tasks],
            "templates": [t.model_dump(mode="json") for t in manifest.templates],
        }

    def _check_concurrency(self, session: Session) -> None:
        """Refuse a start beyond `env.concurrency` tasks in progress (parked ones count).

        Raises:
            ProtocolError: INVALID_REQUEST listing the tasks in progress and the fixes.
        """
        assert self.env is not None
        limit = self.env.concurrency
        busy = [s for s in self.sessions.all() if s.run is not None and s is not session]
        if len(busy) < limit:
            return
        listed = "; ".join(s.describe() for s in busy)
        raise ProtocolError(
            wire.INVALID_REQUEST,
            f"this environment runs {limit} task{'s' if limit > 1 else ''} at a time and "
            f"{len(busy)} {'is' if len(busy) == 1 else 'are'} in progress: {listed}. Grade or "
            f"cancel {'it' if len(busy) == 1 else 'one'} first (`hud task grade`/`hud task "
            f"cancel --session ID`), run this rollout in a fresh container, or declare "
            f"Environment(concurrency=N) if its tasks cannot interfere with each other",
            {"sessions": [s.id for s in busy]},
        )

    async def _tasks_start(self, conn: Conn, params: p.StartParams) -> dict[str, Any]:
        assert self.env is not None
        session = self._session(conn)
        if session.in_progress:
            assert session.run is not None
            raise ProtocolError(
                wire.INVALID_REQUEST,
                f"task {session.run.slug!r} is already in progress in this session; grade or "
                f"cancel it first, or open another connection",
            )
        template, args = self.env.resolve(params.id, params.args)
        self._check_concurrency(session)
        try:
            run = TaskRun(template, args)
        except UnicodeEncodeError:
            raise ProtocolError(
                wire.INVALID_PARAMS,
                f"args of task {params.id!r} hold a string that is not valid Unicode (a lone "
                f"surrogate such as \\ud800); send valid text",
            ) from None
        session.run = run
        try:
            await self._prepare(run)
            return await run.start()
        except BaseException:
            session.run = None
            raise

    def _ordered(self) -> list[Capability]:
        assert self.env is not None
        return sorted(self.env.capabilities.values(),
                      key=lambda c: 0 if c.protocol.startswith("ssh/") else 1)

    async def _prepare(self, run: TaskRun) -> None:
        """Every capability's `before_start`; the first failure refuses the start.

        Raises:
            ProtocolError: CAPABILITY_ERROR naming the capability and the task.
        """
        for capability in self._ordered():
            try:
                await capability.before_start()
            except BaseException as exc:  # an env's own capability, too
                if really_cancelled(exc):
                    raise
                log.exception("capability %s failed to prepare for task %s", capability.name,
                              run.slug)
                raise ProtocolError(
                    wire.CAPABILITY_ERROR,
                    f"task {run.slug!r} was not started: capability {capability.name!r} "
                    f"failed to prepare for it ({type(exc).__name__}: {exc}), so nothing of "
                    f"the task ran on a workspace that was not swept; see the daemon log "
                    f"(/run/hud/serve.log), or restart the container",
                ) from None

    async def _hook(self, what: str, capability: Capability) -> None:
        try:
            await getattr(capability, what)()
        except BaseException as exc:  # logged; the task's outcome stands
            if really_cancelled(exc):
                raise
            log.exception("capability %s failed in %s", capability.name, what)

    async def _finish(self) -> None:
        assert self.env is not None
        for capability in self._ordered():
            await self._hook("task_ended", capability)

    def _select(self, conn: Conn, name: str | None, session_id: str | None) -> Session:
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

    async def _end(self, session: Session) -> None:
        """The session's task is over: clean up after it, then free its slot."""
        try:
            await self._finish()
        finally:
            session.run = None

    async def _tasks_grade(self, conn: Conn, params: p.GradeParams) -> dict[str, Any]:
        session = self._select(conn, params.id, params.session_id)
        run = session.run
        assert run is not None
        assert self.env is not None
        for capability in self.env.capabilities.values():
            await self._hook("before_grade", capability)
        try:
            return await run.grade(params.answer)
        finally:
            await self._end(session)

    async def _tasks_cancel(self, conn: Conn, params: p.CancelParams) -> dict[str, Any]:
        session = self._select(conn, params.id, params.session_id)
        run = session.run
        assert run is not None
        try:
            await run.cancel()
        finally:
            await self._end(session)
        return {"cancelled": run.slug, "session_id": session.id}

    async def _tasks_solve(self, conn: Conn, params: p.EmptyParams) -> dict[str, Any]:
        """Run the task's reference solution in the daemon (for the `oracle` agent)."""
        session = conn.session
        if session is None or not session.in_progress:
            raise ProtocolError(wire.INVALID_REQUEST, "no task in progress in this session; "
                                "tasks.solve works on the task this connection started")
        assert session.run is not None
        return {"answer": await session.run.solve()}

    async def _bye(self, conn: Conn, params: p.EmptyParams) -> dict[str, Any]:
        session = conn.session
        if session is not None and session.run is not None:
            run = session.run
            try:
                await run.cancel()
            finally:
                await self._end(session)
        return {}

    async def expire_parked(self) -> int:
        """Cancel and forget parked sessions past their TTL; returns how many."""
        gone = self.sessions.expired()
        for session in gone:
            log.warning("parked session %s expired after %gs; cancelling it",
                        session.describe(), self.sessions.ttl)
            if session.run is not None:
                await session.run.cancel()
                session.run = None
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

