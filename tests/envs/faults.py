"""A test environment whose templates misbehave in every way the daemon must survive."""

import asyncio

from hud import Environment

env = Environment(name="faults", version="1.2.3")
EVENTS: list[str] = []


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
    yield "never"  # noqa: unreachable


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
