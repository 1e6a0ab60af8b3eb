"""Episodes: how a template's grading code finds the episode its agent just ran.

A template reserves an episode before its prompt and hands the agent the ticket in the
start frame; the agent presents it when it connects; the grading code then awaits the
outcome of exactly that episode, even when many rollouts share one capability:

    episode = robot.reserve(seed=seed, max_steps=50, success=reached)
    answer = yield episode.prompt("Move the fingertip onto the target.")
    outcome = await episode.result()
    yield 1.0 if outcome.success else 0.0

The outcome is recorded by the simulator side, never taken from the agent's answer, so
an agent cannot claim a reward it did not earn. Connections without a ticket get an
anonymous episode (handy for benchmarks and data collection); the most recent finished
one is `RobotCapability.last_outcome`.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from pydantic import BaseModel, Field

from hud.robot.bridge import SuccessFn

Status = Literal["pending", "running", "terminated", "truncated", "disconnected", "failed"]
#: how long `Episode.result` waits for a running episode to finish before ending it
RESULT_TIMEOUT = 10.0


class Outcome(BaseModel):
    """How one episode went, as the simulator saw it."""

    episode: str
    status: Status = "pending"
    seed: int | None = None
    slot: int | None = None
    steps: int = 0
    total_reward: float = 0.0
    success: bool | None = None
    success_step: int | None = None
    #: actions refused with an error frame (the episode was not stepped for them)
    rejected: int = 0
    info: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None

    @property
    def done(self) -> bool:
        return self.status not in ("pending", "running")


class Episode:
    """One episode, reserved by a template or opened by an anonymous connection."""

    def __init__(self, *, seed: int | None = None, max_steps: int | None = None,
                 success: SuccessFn | None = None, end_on_success: bool = True,
                 reserved: bool = True, binding: str = "robot") -> None:
        self.id = secrets.token_urlsafe(12)
        self.seed = seed
        self.max_steps = max_steps
        self.success_fn = success
        self.end_on_success = end_on_success
        self.reserved = reserved
        self.binding = binding
        self.outcome = Outcome(episode=self.id, seed=seed)
        self._done = asyncio.Event()
        #: set while a connection runs it: ends that connection
        self._closer: Callable[[], Awaitable[object]] | None = None

    def __repr__(self) -> str:
        return f"<Episode {self.id} {self.outcome.status} steps={self.outcome.steps}>"

    def ticket(self) -> dict[str, Any]:
        """What the agent needs to run this episode: goes in the start frame."""
        return {"episode": self.id, "seed": self.seed, "max_steps": self.max_steps}

    def prompt(self, text: Any, **extra: Any) -> dict[str, Any]:
        """A start frame: the prompt plus this episode's ticket under the binding's name."""
        return {"prompt": text, self.binding: self.ticket(), **extra}

    def begin(self, slot: int, closer: Callable[[], Awaitable[object]]) -> None:
        self.outcome.status, self.outcome.slot = "running", slot
        self._closer = closer

    def finish(self, status: Status, error: str | None = None) -> None:
        """Record how the episode ended (the first call wins)."""
        if self.outcome.done:
            return
        self.outcome.status = status
        self.outcome.error = error
        self._closer = None
        self._done.set()

    async def result(self, timeout: float = RESULT_TIMEOUT) -> Outcome:
        """The outcome, once the episode is over.

        An episode never started returns at once (status "pending": the agent did not
        run it). A running one is awaited up to `timeout` seconds, then its connection
        is closed and it ends as "disconnected" with what it did so far.
        """
        if self.outcome.status == "running":
            try:
                await asyncio.wait_for(self._done.wait(), timeout)
            except TimeoutError:
                closer = self._closer
                self.finish("disconnected", f"still running {timeout:g}s after the answer")
                if closer is not None:
                    await closer()
        return self.outcome.model_copy(deep=True)


class EpisodeBook:
    """The episodes a capability knows: reserved ones by id, plus recent finished ones."""

    def __init__(self, keep: int = 1024) -> None:
        self.keep = keep
        self._episodes: dict[str, Episode] = {}
        self.last: Episode | None = None

    def add(self, episode: Episode) -> Episode:
        """Track `episode`; past `keep`, forget finished ones first, then the oldest."""
        self._episodes[episode.id] = episode
        if len(self._episodes) > self.keep:
            done = [k for k, e in self._episodes.items() if e.outcome.done]
            oldest = [k for k, e in self._episodes.items() if e.outcome.status == "pending"]
            for key in (done + oldest)[: len(self._episodes) - self.keep]:
                del self._episodes[key]
        return episode

    def get(self, episode_id: str) -> Episode | None:
        return self._episodes.get(episode_id)

    def finished(self, episode: Episode) -> None:
        self.last = episode
