"""A test environment whose templates misbehave in every way the daemon must survive."""

import asyncio
import contextlib
import math
import sys
import time

from hud import Environment

# The tests run many sessions of it at once (parked ones too); nothing here is shared.
env = Environment(name="faults", version="1.2.3", concurrency=64)
EVENTS: list[str] = []


class Escape(BaseException):
    """Not an Exception: `except Exception` in the daemon would miss it."""


@env.initialize
async def _init() -> None:
    EVENTS.append("init")


@env.shutdown
def _first_registered() -> None:
    EVENTS.append("shutdown-1")


@env.shutdown
def _second_registered() -> None:
    EVENTS.append("shutdown-2")


@env.template()
async def count_letter(word: str = "strawberry", letter: str = "r"):
    """Count a letter in a word."""
    answer = yield f"How many '{letter}'s are in '{word}'? Reply with just the number."
    yield 1.0 if answer and str(word.count(letter)) in answer else 0.0


@env.template()
async def add(a: int, b: int = 1):
    """Add two integers."""
    answer = yield {"prompt": f"What is {a} + {b}?", "max_tokens": 5}
    yield {"score": 1.0 if str(answer).strip() == str(a + b) else 0.0, "info": {"expected": a + b}}


@env.template()
async def raises_in_setup():
    raise RuntimeError("setup exploded")
    yield "never"  # unreachable: the yield makes this an async generator


@env.template()
async def key_error_in_setup():
    data: dict = {}
    _ = data["missing_key"]
    yield "never"


@env.template()
async def raises_in_grading():
    answer = yield "anything"
    raise ValueError(f"grader broke on {answer!r}")


@env.template()
async def no_reward():
    _ = yield "answer and I will forget to grade"


@env.template()
async def text_reward():
    _ = yield "answer"
    yield "excellent"


@env.template()
async def bad_prompt():
    yield 42
    yield 1.0


@env.template()
async def echo_size(size: int = 1_000_000):
    answer = yield "x" * size
    yield 1.0 if isinstance(answer, str) and len(answer) == size else 0.0


@env.template()
async def slow_setup(seconds: float = 0.5):
    await asyncio.sleep(seconds)
    answer = yield "slow"
    yield 1.0 if answer == "ok" else 0.0


@env.template()
async def chat_prompt():
    answer = yield [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    yield float(bool(answer))


@env.template()
async def cleanup_tracked():
    try:
        answer = yield "cancel me"
        yield 1.0 if answer else 0.0
    finally:
        EVENTS.append("cleanup")


# -- BaseExceptions: each must become an error frame, never stop the daemon ---------------


@env.template()
async def exits_in_setup():
    sys.exit(3)
    yield "never"


@env.template()
async def interrupts_in_setup():
    raise KeyboardInterrupt
    yield "never"


@env.template()
async def escapes_in_setup():
    raise Escape("out of here")
    yield "never"


@env.template()
async def generator_exit_in_setup():
    raise GeneratorExit
    yield "never"


@env.template()
async def cancels_itself_in_setup():
    raise asyncio.CancelledError
    yield "never"


@env.template()
async def exits_while_grading():
    _ = yield "answer anything"
    sys.exit(0)


@env.template()
async def interrupts_while_grading():
    _ = yield "answer anything"
    raise KeyboardInterrupt


@env.template()
async def exits_in_cleanup():
    try:
        answer = yield "answer anything"
        yield 1.0 if answer else 0.0
    finally:
        sys.exit(1)


@env.template()
async def exits_in_solution():
    answer = yield "the solution exits"
    yield float(bool(answer))


@exits_in_solution.solution
def _exit_solution() -> str:
    raise SystemExit(2)


# -- time limits -----------------------------------------------------------------------


@env.template(setup_timeout=0.3)
async def hangs_in_setup():
    await asyncio.Event().wait()
    yield "never"


@env.template(grade_timeout=0.3)
async def hangs_while_grading():
    _ = yield "answer anything"
    await asyncio.Event().wait()
    yield 1.0


@env.template(stall_timeout=0.5)
async def sleeps_in_setup():
    time.sleep(3600)
    yield "never"


@env.template(stall_timeout=0.5)
async def spins_in_setup():
    while True:
        pass
    yield "never"


@env.template(stall_timeout=0.5)
async def sleeps_while_grading():
    _ = yield "answer anything"
    time.sleep(3600)
    yield 1.0


@env.template(stall_timeout=0.5)
async def swallows_the_interrupt():
    with contextlib.suppress(BaseException):  # exactly what a careless template does
        time.sleep(3600)
    await asyncio.sleep(0)
    yield "I survived the interrupt"
    yield 1.0


# -- values JSON cannot carry --------------------------------------------------------------


@env.template()
async def unencodable_reward():
    _ = yield "answer anything"
    cycle: list = []
    cycle.append(cycle)
    yield {"score": 1.0, "object": object(), "nan": math.nan, "inf": -math.inf, "set": {7},
           "bytes": b"\xff", "lone": "\ud800", "huge": 10**5000, "cycle": cycle,
           "keys": {(1, 2): "tuple key", None: "none key"}}


@env.template()
async def unencodable_prompt():
    answer = yield {"prompt": "what now?", "when": object(), "ratio": math.nan}
    yield float(bool(answer))
