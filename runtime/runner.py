"""Driving one task's generator: start (setup → prompt), grade (answer → reward), cancel.

A `TaskRun` lives in the daemon between `tasks.start` and `tasks.grade`, possibly across
several client connections (a parked session). Everything template code does wrong is
turned into a `TaskError` whose message names the task, the phase and the exception, so
a KeyError inside a template is never mistaken for "unknown task" and a template that
ends without a reward is an error, never a silent 0.
"""

from __future__ import annotations

import inspect
import logging
import math
import time
import traceback
from typing import Any

from hud.environment import Template
from hud.errors import TaskError
from hud.task import make_slug

log = logging.getLogger("hud.runner")


def _format_exc(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


def normalize_prompt(template_id: str, value: Any) -> dict[str, Any]:
    """The first yield as a frame: `{"prompt": ...}` plus any extra keys a dict carried.

    Raises:
        TaskError: the value is not a string, a list of messages, or a dict with "prompt".
    """
    if isinstance(value, str):
        return {"prompt": value}
    if isinstance(value, list):
        return {"prompt": value}
    if isinstance(value, dict) and "prompt" in value:
        return dict(value)
    raise TaskError(
        f"task {template_id!r} yielded a prompt of type {type(value).__name__} ({value!r:.80}); "
        f"yield a string, a list of chat messages, or a dict with a 'prompt' key"
    )


def normalize_reward(template_id: str, value: Any) -> dict[str, Any]:
    """The second yield as a frame: `{"score": float, ...extras}`.

    Raises:
        TaskError: the value is not a finite number or a dict with a numeric "score".
    """
    extras: dict[str, Any] = {}
    score = value
    if isinstance(value, dict):
        if "score" not in value:
            raise TaskError(
                f"task {template_id!r} yielded a reward dict without 'score' (keys: "
                f"{sorted(value)}); yield a number or {{'score': float, ...}}"
            )
        extras = {k: v for k, v in value.items() if k != "score"}
        score = value["score"]
    if isinstance(score, bool):
        score = float(score)
    if not isinstance(score, (int, float)) or not math.isfinite(score):
        raise TaskError(
            f"task {template_id!r} yielded a non-numeric reward {score!r:.80}; "
            f"yield a finite number (e.g. 1.0) or {{'score': 1.0, 'info': ...}}"
        )
    return {"score": float(score), **extras}


class TaskRun:
    """One started task. States: new → started → graded | cancelled | failed."""

    def __init__(self, template: Template, args: dict[str, Any]) -> None:
        self.template = template
        self.args = template.canonical_args(args)
        self.slug = make_slug(template.id, self.args)
        self.state = "new"
        self.started_at: float | None = None
        self._gen: Any = template.open(args)

    @property
    def id(self) -> str:
        return self.template.id

    def matches(self, name: str) -> bool:
        """Whether `name` (a slug or a template id) names this run's task."""
        return name in (self.slug, self.template.id)

    async def start(self) -> dict[str, Any]:
        """Run setup up to the first yield and return the prompt frame.

        Raises:
            TaskError: setup raised, ended without a prompt, or yielded an unusable prompt.
        """
        self.started_at = time.time()
        try:
            value = await self._gen.asend(None)
        except StopAsyncIteration:
            self.state = "failed"
            raise TaskError(f"task {self.id!r} ended during setup without yielding a prompt")
        except Exception as exc:
            self.state = "failed"
            raise TaskError(
                f"task {self.id!r} raised {type(exc).__name__}: {exc} during setup",
                _format_exc(exc),
            ) from exc
        try:
            frame = normalize_prompt(self.id, value)
        except TaskError:
            self.state = "failed"
            await self._close()
            raise
        self.state = "started"
        return frame

    async def grade(self, answer: Any) -> dict[str, Any]:
        """Send the answer, run the grading code and return the reward frame.

        Raises:
            TaskError: grading raised, ended without a reward, or yielded a bad reward.
        """
        try:
            value = await self._gen.asend(answer)
            frame = normalize_reward(self.id, value)
        except StopAsyncIteration:
            self.state = "failed"
            raise TaskError(
                f"task {self.id!r} ended without yielding a reward; its second yield must be "
                f"the reward (e.g. `yield 1.0 if correct else 0.0`)"
            ) from None
        except TaskError:
            self.state = "failed"
            raise
        except Exception as exc:
            self.state = "failed"
            raise TaskError(
                f"task {self.id!r} raised {type(exc).__name__}: {exc} while grading",
                _format_exc(exc),
            ) from exc
        finally:
            await self._close()  # the generator is done either way: run its cleanup once
        self.state = "graded"
        return frame

    async def solve(self) -> Any:
        """Run the template's reference solution (`@template.solution`) and return its answer.

        Raises:
            TaskError: the template has none, or the solution raised.
        """
        fn = self.template.solution_fn
        if fn is None:
            raise TaskError(
                f"task {self.id!r} has no reference solution; attach one with "
                f"`@{self.id}.solution` (the oracle agent runs it)"
            )
        try:
            answer = fn(**self.template.validate_args(self.args))
            if inspect.isawaitable(answer):
                answer = await answer
        except Exception as exc:
            raise TaskError(
                f"the reference solution of task {self.id!r} raised {type(exc).__name__}: {exc}",
                _format_exc(exc),
            ) from exc
        return answer

    async def cancel(self) -> None:
        """Abandon the task: the generator gets GeneratorExit so its `finally` runs."""
        if self.state in ("new", "started"):
            self.state = "cancelled"
        await self._close()

    async def _close(self) -> None:
        try:
            await self._gen.aclose()
        except Exception:  # cleanup code of a template must not kill the daemon, but say so
            log.exception("task %r raised while closing (its finally/cleanup code)", self.id)
