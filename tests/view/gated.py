"""A test env whose one task starts only once the file $HUD_VIEW_GATE exists, so a test
can open a page while the rollout is in flight and then let it land."""

import asyncio
import os
from pathlib import Path

from hud import Environment

env = Environment(name="gated")
GATE_TIMEOUT = 60.0


@env.template()
async def wait_for_gate():
    gate = Path(os.environ["HUD_VIEW_GATE"])
    loop = asyncio.get_running_loop()
    deadline = loop.time() + GATE_TIMEOUT
    while not gate.exists():  # the test's signal; bounded so a failed test cannot hang
        if loop.time() > deadline:
            raise TimeoutError(f"{gate} did not appear within {GATE_TIMEOUT:g}s")
        await asyncio.sleep(0.05)
    answer = yield "Say anything."
    yield 1.0 if answer is None else 0.5


tasks = [wait_for_gate()]
