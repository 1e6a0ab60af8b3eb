"""Template time limits and environment concurrency: declared, inherited, validated; the
stall guard off the main thread."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from hud import Environment
from hud.errors import ConfigError
from hud.serve.stall import Stalled, guarded


def test_templates_inherit_the_environments_limits_unless_they_set_their_own() -> None:
    """A template's limits are its own where given, else its environment's."""
    env = Environment(name="limits", setup_timeout=30, stall_timeout=2)

    @env.template(grade_timeout=5)
    async def task():
        yield "p"
        yield 1.0

    limits = task.limits
    assert (limits.setup, limits.grade, limits.stall) == (30.0, 5.0, 2.0)


def test_default_limits_and_concurrency() -> None:
    """By default: 600 s setup and grading, 10 s of synchronous work, one task at a time."""
    env = Environment(name="defaults")

    @env.template()
    async def task():
        yield "p"
        yield 1.0

    assert (task.limits.setup, task.limits.grade, task.limits.stall) == (600.0, 600.0, 10.0)
    assert env.concurrency == 1 and env.manifest().env.concurrency == 1


@pytest.mark.parametrize("value", [0, -1, float("nan"), float("inf"), "10", True])
def test_a_limit_must_be_a_positive_number_of_seconds(value: object) -> None:
    """Zero, negative, non-finite and non-numeric limits are ConfigErrors naming the value."""
    with pytest.raises(ConfigError, match=r"stall_timeout must be a positive number of seconds"):
        Environment(name="bad", stall_timeout=value)  # type: ignore[arg-type]
    env = Environment(name="bad-template")
    with pytest.raises(ConfigError, match=r"setup_timeout must be a positive number"):
        env.template(setup_timeout=value)(_task)  # type: ignore[arg-type]


async def _task():  # type: ignore[no-untyped-def]
    yield "p"
    yield 1.0


@pytest.mark.parametrize("value", [0, -3, 1.5, True])
def test_concurrency_must_be_a_positive_integer(value: object) -> None:
    """concurrency below 1 or not an int is a ConfigError."""
    with pytest.raises(ConfigError, match=r"concurrency must be an integer >= 1"):
        Environment(name="bad", concurrency=value)  # type: ignore[arg-type]


def test_off_the_main_thread_a_long_step_fails_when_it_returns() -> None:
    """A loop in another thread cannot be interrupted, but a step past its limit still
    fails its call (Stalled) instead of passing as a success."""
    outcome: list[BaseException | str] = []

    async def blocking() -> str:
        time.sleep(0.3)  # noqa: ASYNC251 - the stall under test
        return "done"

    async def main() -> str:
        return await guarded(blocking(), 0.1)

    def run() -> None:
        try:
            outcome.append(asyncio.run(main()))
        except BaseException as exc:  # noqa: BLE001 - recorded for the assert
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    assert isinstance(outcome[0], Stalled) and outcome[0].limit == 0.1


async def test_a_step_within_its_limit_passes_through() -> None:
    """Awaiting through the guard returns the value, and exceptions pass unchanged."""

    async def fine() -> int:
        await asyncio.sleep(0.01)
        return 7

    async def broken() -> None:
        await asyncio.sleep(0)
        raise KeyError("k")

    assert await guarded(fine(), 5) == 7
    with pytest.raises(KeyError, match="k"):
        await guarded(broken(), 5)
