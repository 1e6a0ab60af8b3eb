"""Driving one task's generator: start (setup → prompt), grade (answer → reward), cancel.

A `TaskRun` lives in the daemon between `tasks.start` and `tasks.grade`, possibly across
several client connections (a parked session). The daemon outlives whatever template
code does; everything it does wrong becomes a `TaskError` whose message names the task,
the phase and the cause:
- it raises anything, `BaseException`s included (SystemExit, KeyboardInterrupt,
  GeneratorExit, a CancelledError it raised itself): only a real cancellation of the
  daemon's own task (shutdown) passes through. A KeyError inside a template is never
  mistaken for "unknown task";
- a phase runs past its time limit (`setup_timeout`, `grade_timeout`, hud.template): it
  is cancelled;
- it blocks the event loop synchronously past `stall_timeout`: the stall guard
  interrupts it (hud.serve.stall) and the other clients are served again;
- it ends without a reward (never a silent 0), or yields an unusable prompt or reward.
After a failure the generator is closed, so its cleanup (`finally`) runs, under the same
guards. Prompts and rewards are made JSON-safe here, at the source: a value JSON cannot
carry (an object, a set, NaN, a huge int) becomes its repr or a string, so the score
always reaches the client. Plain JSON (scalars, lists, dicts) is walked here; only other
objects are handed to pydantic_core, imported then, so an ordinary rollout never pays for
importing it (see hud.template).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
import time
import traceback
from collections.abc import Awaitable
from typing import Any, TypeVar

from hud.errors import TaskError
from hud.serve.stall import Stalled, guarded
from hud.task import make_slug
from hud.template import Template

log = logging.getLogger("hud.serve.runner")
T = TypeVar("T")

#: seconds the template's cleanup (`finally` after grading or on cancel) may take
CLEANUP_TIMEOUT = 60.0
_MAX_DEPTH = 100
_NONFINITE = {math.inf: "Infinity", -math.inf: "-Infinity"}
# the phases of template code: (what the messages say, the limit that applies)
_PHASES = {
    "setup": ("during setup", "setup_timeout"),
    "grading": ("while grading", "grade_timeout"),
    "solution": ("in its reference solution", "grade_timeout"),
    "cleanup": ("in its cleanup code", None),
}


def _describe(exc: BaseException) -> str:
    """`Type: message`, even when the exception's own __str__ misbehaves."""
    try:
        text = str(exc)
        return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    except BaseException:  # noqa: BLE001 - its __str__ is template code too
        return f"{type(exc).__name__} (whose message could not be rendered)"


def _format_exc(exc: BaseException) -> str:
    try:
        return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    except BaseException:  # noqa: BLE001 - see _describe
        return _describe(exc)


def really_cancelled(exc: BaseException) -> bool:
    """Whether `exc` is a cancellation of the running asyncio task (not one code raised)."""
    if not isinstance(exc, asyncio.CancelledError):
        return False
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def _repr(value: Any) -> str:
    try:
        text = repr(value)
    except BaseException:  # noqa: BLE001 - a template's __repr__
        text = f"<{type(value).__name__} object>"
    return text if len(text) <= 1000 else text[:1000] + "..."


def json_safe(value: Any, _depth: int = 0, _seen: set[int] | None = None) -> Any:
    """`value` in a form JSON can carry; JSON values come back unchanged.

    Non-finite floats become "NaN"/"Infinity"/"-Infinity", tuples and sets lists,
    pydantic models, dataclasses, dates and the like their JSON form, and anything else
    (or a cycle, or nesting deeper than 100) its repr.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        # json.dumps refuses ints of more than 4300 digits
        return value if value.bit_length() < 14000 else f"<int of {value.bit_length()} bits>"
    if isinstance(value, float):
        return value if math.isfinite(value) else _NONFINITE.get(value, "NaN")
    if _depth > _MAX_DEPTH:
        return _repr(value)
    seen = set() if _seen is None else _seen
    if isinstance(value, (dict, list, tuple)):
        if id(value) in seen:
            return "<circular reference>"
        seen.add(id(value))
        try:
            if isinstance(value, dict):
                return {_key(k): json_safe(v, _depth + 1, seen) for k, v in value.items()}
            return [json_safe(v, _depth + 1, seen) for v in value]
        finally:
            seen.discard(id(value))
    from pydantic_core import to_jsonable_python

    try:
        converted = to_jsonable_python(value)
    except BaseException:  # noqa: BLE001 - serializers of template objects
        return _repr(value)
    if isinstance(converted, (dict, list)) or converted is not value:
        return json_safe(converted, _depth + 1, seen)
    return _repr(value)


def _key(key: Any) -> str:
    """A dict key as json.dumps would write it (str, null, true/false, numbers), else repr."""
    if isinstance(key, str):
        return key
    if key is None:
        return "null"
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, (int, float)):
        return str(json_safe(key))
    return _repr(key)


def normalize_prompt(template_id: str, value: Any) -> dict[str, Any]:
    """The first yield as a JSON-safe frame: `{"prompt": ...}` plus a dict's extra keys.

    Raises:
        TaskError: the value is not a string, a list of messages, or a dict with "prompt".
    """
    if isinstance(value, (str, list)):
        return {"prompt": json_safe(value)}
    if isinstance(value, dict) and "prompt" in value:
        frame: dict[str, Any] = json_safe(dict(value))  # a dict comes back a dict
        return frame
    raise TaskError(
        f"task {template_id!r} yielded a prompt of type {type(value).__name__} "
        f"({_repr(value):.80}); yield a string, a list of chat messages, or a dict with a "
        f"'prompt' key"
    )


def normalize_reward(template_id: str, value: Any) -> dict[str, Any]:
    """The second yield as a JSON-safe frame: `{"score": float, ...extras}`.

    Raises:
        TaskError: the value is not a finite number or a dict with a numeric "score".
    """
    extras: dict[str, Any] = {}
    score = value
    if isinstance(value, dict):
        if "score" not in value:
            raise TaskError(
                f"task {template_id!r} yielded a reward dict without 'score' (keys: "
                f"{sorted(map(_repr, value))}); yield a number or {{'score': float, ...}}"
            )
        extras = {k: v for k, v in value.items() if k != "score"}
        score = value["score"]
    number: float | None = None
    if isinstance(score, (int, float)):
        try:
            number = float(score)
        except OverflowError:
            number = None
    if number is None or not math.isfinite(number):
        raise TaskError(
            f"task {template_id!r} yielded a non-numeric reward {_repr(score):.80}; "
            f"yield a finite number (e.g. 1.0) or {{'score': 1.0, 'info': ...}}"
        )
    return {"score": number, **json_safe(extras)}


class TaskRun:
    """One started task. States: new → started → graded | cancelled | failed."""

    def __init__(self, template: Template, args: dict[str, Any]) -> None:
        self.template = template
        self.args = template.canonical_args(args)
        self.slug = make_slug(template.id, self.args)
        self.limits = template.limits
        self.state = "new"
        self.started_at: float | None = None
        self._gen = template.open(args)

    @property
    def id(self) -> str:
        return self.template.id

    def matches(self, name: str) -> bool:
        """Whether `name` (a slug or a template id) names this run's task."""
        return name in (self.slug, self.template.id)

    async def _run(self, phase: str, awaitable: Awaitable[T], timeout: float) -> T:
        """Await template code under the phase's time limit and the stall guard.

        Raises:
            StopAsyncIteration: the generator ended.
            TaskError: anything else template code did wrong (see the module docstring).
            asyncio.CancelledError: only a real cancellation of the daemon's task.
        """
        words, limit_name = _PHASES[phase]
        deadline = asyncio.timeout(timeout)
        try:
            async with deadline:
                return await guarded(awaitable, self.limits.stall)
        except (StopAsyncIteration, TaskError):
            if not deadline.expired():
                raise
            exc: BaseException | None = None
        except Stalled as stalled:
            log.warning("task %r blocked the event loop for %.1fs %s (stall_timeout %gs): "
                        "its call fails", self.id, stalled.seconds, words, stalled.limit)
            raise TaskError(
                f"task {self.id!r} blocked the daemon's event loop for more than "
                f"{stalled.limit:g}s {words} (a synchronous call: time.sleep, a busy loop, "
                f"blocking I/O, subprocess.run); make it async (await asyncio.sleep, "
                f"asyncio.create_subprocess_exec) or use `await asyncio.to_thread(...)`, or "
                f"raise its stall_timeout"
            ) from None
        except BaseException as caught:  # template code: see the docstring
            if really_cancelled(caught) and not deadline.expired():
                raise
            exc = caught
        if deadline.expired():
            if limit_name is None:
                raise TaskError(f"task {self.id!r} did not finish {words} within {timeout:g}s; "
                                f"keep cleanup short")
            raise TaskError(
                f"task {self.id!r} did not finish {words} within its {limit_name} of "
                f"{timeout:g}s; make it faster, or raise the limit with "
                f"@env.template({limit_name}=...) or Environment({limit_name}=...)"
            )
        assert exc is not None
        message = f"task {self.id!r} raised {_describe(exc)} {words}"
        if phase == "solution":
            message = f"the reference solution of task {self.id!r} raised {_describe(exc)}"
        if not isinstance(exc, Exception):
            message += (f" ({type(exc).__name__} is not an Exception: template code must not "
                        f"try to stop the daemon; raise an Exception or yield a reward)")
        raise TaskError(message, _format_exc(exc)) from None

    async def start(self) -> dict[str, Any]:
        """Run setup up to the first yield and return the prompt frame.

        Raises:
            TaskError: setup raised, ran too long, ended without a prompt, or yielded an
                unusable prompt.
        """
        self.started_at = time.time()

        async def setup() -> dict[str, Any]:
            value = await self._gen.asend(None)
            return normalize_prompt(self.id, value)  # a template's __repr__ runs guarded

        try:
            frame = await self._run("setup", setup(), self.limits.setup)
        except StopAsyncIteration:
            self.state = "failed"
            raise TaskError(f"task {self.id!r} ended during setup without yielding a prompt"
                            ) from None
        except BaseException as exc:
            self.state = "failed"
            if not really_cancelled(exc):
                await self._close()
            raise
        self.state = "started"
        return frame

    async def grade(self, answer: Any) -> dict[str, Any]:
        """Send the answer, run the grading code and return the reward frame.

        Raises:
            TaskError: grading raised, ran too long, ended without a reward, or yielded a
                bad reward.
        """

        async def grading() -> dict[str, Any]:
            value = await self._gen.asend(answer)
            return normalize_reward(self.id, value)

        try:
            frame = await self._run("grading", grading(), self.limits.grade)
        except StopAsyncIteration:
            self.state = "failed"
            raise TaskError(
                f"task {self.id!r} ended without yielding a reward; its second yield must be "
                f"the reward (e.g. `yield 1.0 if correct else 0.0`)"
            ) from None
        except BaseException:
            self.state = "failed"
            raise
        finally:
            await self._close()  # the generator is done either way: run its cleanup once
        self.state = "graded"
        return frame

    async def solve(self) -> Any:
        """Run the template's reference solution (`@template.solution`) and return its
        answer, made JSON-safe.

        Raises:
            TaskError: the template has none, or the solution raised or ran too long.
        """
        fn = self.template.solution_fn
        if fn is None:
            raise TaskError(
                f"task {self.id!r} has no reference solution; attach one with "
                f"`@{self.id}.solution` (the oracle agent runs it)"
            )
        args = self.template.validate_args(self.args)

        async def solution() -> Any:
            answer = fn(**args)  # a synchronous solution is one guarded step
            if inspect.isawaitable(answer):
                answer = await answer
            return json_safe(answer)

        try:
            return await self._run("solution", solution(), self.limits.grade)
        except StopAsyncIteration as exc:  # raised by the solution itself
            raise TaskError(f"the reference solution of task {self.id!r} raised "
                            f"StopAsyncIteration") from exc

    async def cancel(self) -> None:
        """Abandon the task: the generator gets GeneratorExit so its `finally` runs."""
        if self.state in ("new", "started"):
            self.state = "cancelled"
        await self._close()

    async def _close(self) -> None:
        """Close the generator (its cleanup runs, guarded); failures are logged, not raised."""
        try:
            await self._run("cleanup", self._gen.aclose(), CLEANUP_TIMEOUT)
        except TaskError as exc:
            log.error("%s", exc)
        except StopAsyncIteration:
            log.error("task %r raised StopAsyncIteration in its cleanup code", self.id)
