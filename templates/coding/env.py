"""fix_bug: a small Python project in /workspace has a real bug; fix it.

Setup resets the agent's workspace to a fresh copy of `project/` (the copy is made as the
agent, so a symlink the agent planted can't send root's writes anywhere). Grading calls
the agent's `stats` functions on hidden inputs with `hud.graders.python_calls`: the files
`stats/**/*.py` are copied into a sandbox that runs them as the grading user (neither the
agent nor root), with isolated Python and bounded time, memory and output, and that only
returns what each call gave. The inputs are mostly drawn fresh at each grade and the
expected values come from a reference implementation; they never leave the daemon, and
the comparison happens there, so nothing the agent's code prints, patches or
plants (a sitecustomize.py, a unittest.py, an exit at import) can change the verdict. The
reward is 1.0 when every hidden case passes, else 0.0; `info` lists the failed cases.

Outside a container, set HUD_WORKSPACE to a scratch directory (default /workspace).
"""

from __future__ import annotations

import os
import random
import statistics
from pathlib import Path

from hud import Environment, graders
from hud.errors import TaskError

env = Environment(name="fix-bug")

HERE = Path(__file__).resolve().parent
WORKSPACE = os.environ.get("HUD_WORKSPACE", "/workspace")
# The agent's shell and files: ssh into the workspace as `agent` (uid 1000), reached from
# the host through `hud connect --tunnel shell` (or `hud ssh CONTAINER`).
workspace = env.workspace(WORKSPACE)

PROMPT = """\
The Python project in {workspace} has a bug: some of `stats`'s functions give wrong
results. Find it and fix it in place (do not rename files or functions). You can run the
project's own tests with `cd {workspace} && python3 -m unittest`. Reply with one line
saying what you fixed."""

# Hidden cases: inputs go into the sandbox, the expected values stay in the daemon. Most
# inputs are drawn fresh at every grade and the expected values come from a reference
# (the standard library), so nothing the agent could read in advance (this template is
# public) lets it answer from a lookup table instead of fixing the code.
FIXED_CASES = [
    graders.Case("stats:median", args=[[5, 3, 9, 1, 7]], expect=5),
    graders.Case("stats:median", args=[[42]], expect=42),
    graders.Case("stats:median", args=[[]], raises="ValueError"),
]


def hidden_cases() -> list[graders.Case]:
    """The fixed edge cases plus fresh random ones (even and odd lengths, ints and floats)."""
    rng = random.SystemRandom()
    cases = list(FIXED_CASES)
    for length in (2, 4, 6, 7, 10):
        values = [rng.randint(-1000, 1000) for _ in range(length)]
        floats = [round(rng.uniform(-100, 100), 3) for _ in range(length)]
        cases += [graders.Case("stats:median", args=[values], expect=statistics.median(values)),
                  graders.Case("stats:median", args=[floats], expect=statistics.median(floats))]
    values = [rng.randint(-1000, 1000) for _ in range(rng.randint(1, 9))]
    cases += [graders.Case("stats:mean", args=[values], expect=statistics.fmean(values)),
              graders.Case("stats:spread", args=[values], expect=max(values) - min(values))]
    return cases


@env.template()
async def fix_bug():
    """Fix the bug in the `stats` project in /workspace."""
    await workspace.reset(HERE / "project")
    answer = yield PROMPT.format(workspace=WORKSPACE)
    yield await graders.python_calls(WORKSPACE, include=["stats/**/*.py"], cases=hidden_cases())


@fix_bug.solution
async def solve() -> str:
    """The reference fix (used by the `oracle` agent), made as the agent: the even-length
    median."""
    done = await workspace.run(["sed", "-i", "s/ordered\\[mid + 1\\]/ordered[mid - 1]/",
                                "stats/core.py"])
    if not done.ok:
        raise TaskError(f"the reference fix failed (exit {done.code}): {done.tail(5)}")
    return "median() averaged the wrong neighbour for even lengths: use mid - 1 and mid"


tasks = [fix_bug()]
