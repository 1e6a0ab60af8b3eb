"""A test env whose daemon counts the `hello`s it answers: its task's prompt says how many.

HELLOS_HANG=1 makes its initialize hook hang (the daemon never listens); HELLOS_DIE=1 makes
the daemon exit (code 3) in it, a second after it started. Load it only in a daemon of its
own (a `hud serve` subprocess or a container): importing it wraps
`hud.serve.methods.SessionMethods._hello` in that process, before the daemon builds its
server.
"""

import os
import sys
import time
from typing import Any

from hud import Environment
from hud.serve import methods

env = Environment(name="hello-count")
COUNT = {"hello": 0}
_answer_hello = methods.SessionMethods._hello


async def _counted(self: methods.SessionMethods, conn: methods.Conn, params: Any) -> Any:
    COUNT["hello"] += 1
    return await _answer_hello(self, conn, params)


methods.SessionMethods._hello = _counted  # type: ignore[method-assign]


@env.initialize
def misbehave() -> None:
    if os.environ.get("HELLOS_HANG") == "1":
        print("hellos: the initialize hook hangs", file=sys.stderr, flush=True)
        time.sleep(3600)
    if os.environ.get("HELLOS_DIE") == "1":
        print("hellos: the daemon dies while starting", file=sys.stderr, flush=True)
        time.sleep(1)
        os._exit(3)


@env.template()
async def count():
    answer = yield f"hellos={COUNT['hello']}"
    yield 1.0 if answer else 0.0


tasks = [count()]
