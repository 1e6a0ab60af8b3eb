"""Sessions: who owns which started task, across dropped connections.

A session belongs to one connection at a time. When the connection drops while a task is
in progress, the session is *parked*; `hello {session_id}` resumes it, and `tasks.grade`
on a fresh connection adopts the only parked session (of a task, when an id is given).
With several candidates nothing is guessed: the error lists them. Parked sessions expire
after a TTL and their tasks are cancelled (their generators' cleanup runs).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field

from hud.errors import ProtocolError
from hud.serve.runner import TaskRun
from hud.wire import INVALID_PARAMS, INVALID_REQUEST

log = logging.getLogger("hud.serve.sessions")


@dataclass
class Session:
    id: str
    run: TaskRun | None = None
    attached: bool = True
    parked_at: float | None = None
    created_at: float = field(default_factory=time.time)

    @property
    def in_progress(self) -> bool:
        return self.run is not None and self.run.state == "started"

    def describe(self) -> str:
        run = self.run
        if run is None:
            return f"{self.id} (no task)"
        age = time.time() - (run.started_at or self.created_at)
        where = "attached" if self.attached else "parked"
        return f"{self.id} ({run.slug}, started {age:.0f}s ago, {where})"


class SessionRegistry:
    """All sessions of one daemon, attached and parked."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._sessions: dict[str, Session] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    def new(self) -> Session:
        # what secrets.token_hex(8) returns (the kernel's CSPRNG), without loading
        # secrets and random into every container's daemon for it
        session = Session(id=os.urandom(8).hex())
        self._sessions[session.id] = session
        return session

    def parked(self, name: str | None = None) -> list[Session]:
        """Parked sessions with a task in progress, optionally only those of task `name`."""
        return [
            s
            for s in self._sessions.values()
            if not s.attached
            and s.in_progress
            and (name is None or (s.run is not None and s.run.matches(name)))
        ]

    def resume(self, session_id: str) -> Session:
        """Attach the parked session `session_id` to the calling connection.

        Raises:
            ProtocolError: unknown or expired id, or the session is attached elsewhere.
        """
        session = self._sessions.get(session_id)
        if session is None:
            raise ProtocolError(
                INVALID_PARAMS,
                f"unknown session_id {session_id!r}: it ended, or expired after the parked-"
                f"session TTL of {self.ttl:g}s; start the task again",
            )
        if session.attached:
            raise ProtocolError(
                INVALID_REQUEST,
                f"session {session_id!r} is attached to another connection; close that "
                f"connection first (a dropped connection parks its session)",
            )
        session.attached = True
        session.parked_at = None
        return session

    def adopt(self, name: str | None, session_id: str | None) -> Session:
        """Pick the parked session a `tasks.grade`/`tasks.cancel` without a session means.

        Raises:
            ProtocolError: nothing to adopt, or several candidates (all listed).
        """
        if session_id is not None:
            session = self.resume(session_id)
            if not session.in_progress:
                session.attached = False
                raise ProtocolError(
                    INVALID_REQUEST, f"session {session_id!r} has no task in progress"
                )
            return session
        candidates = self.parked(name)
        if not candidates:
            if name is None:
                raise ProtocolError(
                    INVALID_REQUEST, "no task in progress: start one with tasks.start first"
                )
            others = ", ".join(s.describe() for s in self.parked()) or "none"
            raise ProtocolError(
                INVALID_REQUEST,
                f"no task in progress for {name!r}: start it first (`hud task start "
                f"{name}`); parked sessions: {others}",
            )
        if len(candidates) > 1:
            listed = "; ".join(s.describe() for s in candidates)
            what = f"of {name!r} " if name else ""
            raise ProtocolError(
                INVALID_REQUEST,
                f"{len(candidates)} parked sessions {what}are in progress: {listed}. Pick one "
                f"with session_id (`hud task grade NAME --session ID`) or resume it with "
                f"hello {{session_id}}",
                data={"sessions": [s.id for s in candidates]},
            )
        session = candidates[0]
        session.attached = True
        session.parked_at = None
        return session

    def detach(self, session: Session) -> None:
        """The session's connection dropped: park it if a task is in progress, else end it."""
        if session.in_progress:
            session.attached = False
            session.parked_at = time.time()
            log.info("parked session %s", session.describe())
        else:
            self.drop(session)

    def drop(self, session: Session) -> None:
        self._sessions.pop(session.id, None)

    def expired(self, now: float | None = None) -> list[Session]:
        """Remove and return parked sessions older than the TTL (caller cancels their runs)."""
        now = time.time() if now is None else now
        gone = [
            s
            for s in self._sessions.values()
            if not s.attached and s.parked_at is not None and now - s.parked_at > self.ttl
        ]
        for session in gone:
            self.drop(session)
        return gone

    def all(self) -> list[Session]:
        return list(self._sessions.values())
