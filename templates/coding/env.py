"""fix_bug: a small Python project in /workspace has a real bug; fix it.

Setup copies `project/` from this (root-only) directory into the agent's workspace,
owned by the agent. Grading copies `hidden_tests/` into a fresh temporary directory and
runs them with `python3 -m unittest` against the workspace, as the agent's uid (so the
agent's code never runs as root), with a timeout. The reward is 1.0 when every hidden
test passes, else 0.0; `info` carries the counts and the tail of the test output.

Outside a container, set HUD_WORKSPACE to a scratch directory (default /workspace).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

from hud import Environment

env = Environment(name="fix-bug")

HERE = Path(__file__).resolve().parent
WORKSPACE = Path(os.environ.get("HUD_WORKSPACE", "/workspace"))
# The agent's shell and files: ssh into the workspace as `agent` (uid 1000), reached from
# the host through `hud connect --tunnel shell` (or `hud ssh CONTAINER`).
workspace = env.workspace(str(WORKSPACE))
AGENT_UID = 1000
GRADE_TIMEOUT = 60.0

PROMPT = """\
The Python project in {workspace} has a bug: some of `stats`'s functions give wrong
results. Find it and fix it in place (do not rename files or functions). You can run the
project's own tests with `cd {workspace} && python3 -m unittest`. Reply with one line
saying what you fixed."""


def _as_agent() -> list[str]:
    """Run as the agent when we are root (in the image); as ourselves otherwise."""
    if os.geteuid() != 0:
        return []
    return ["setpriv", f"--reuid={AGENT_UID}", f"--regid={AGENT_UID}", "--clear-groups"]


def reset_workspace() -> None:
    """Put a fresh copy of the project in the workspace, owned by the agent."""
    WORKSPACE.mkdir(parents=True, exist_ok=True)
    for child in WORKSPACE.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()
    shutil.copytree(HERE / "project", WORKSPACE, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__"))
    if os.geteuid() == 0:
        for path in [WORKSPACE, *WORKSPACE.rglob("*")]:
            os.chown(path, AGENT_UID, AGENT_UID, follow_symlinks=False)


async def run_hidden_tests() -> dict:
    """Run the hidden tests against the workspace; return score and counts."""
    with tempfile.TemporaryDirectory(prefix="grade-") as tmp:
        shutil.copytree(HERE / "hidden_tests", tmp, dirs_exist_ok=True)
        os.chmod(tmp, 0o755)
        argv = [*_as_agent(), sys.executable, "-m", "unittest", "discover",
                "-s", tmp, "-t", tmp, "-p", "test_*.py"]
        environ = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/tmp",
                   "PYTHONPATH": str(WORKSPACE), "PYTHONDONTWRITEBYTECODE": "1",
                   # never read the workspace's __pycache__: a .pyc the agent left (or
                   # planted) could shadow the source being graded
                   "PYTHONPYCACHEPREFIX": os.path.join(tmp, ".pycache")}
        proc = await asyncio.create_subprocess_exec(
            *argv, cwd=str(WORKSPACE), env=environ,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), GRADE_TIMEOUT)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
            return {"score": 0.0, "info": {"error": f"tests ran past {GRADE_TIMEOUT:g}s"}}
    text = out.decode(errors="replace")
    ran = re.search(r"^Ran (\d+) tests?", text, re.MULTILINE)
    total = int(ran.group(1)) if ran else 0
    bad = sum(int(n) for n in re.findall(r"(?:failures|errors)=(\d+)", text))
    passed = total - bad if total else 0
    score = 1.0 if total and passed == total and proc.returncode == 0 else 0.0
    return {"score": score,
            "info": {"passed": passed, "total": total, "output": text[-1500:]}}


@env.template()
async def fix_bug():
    """Fix the bug in the `stats` project in /workspace."""
    reset_workspace()
    answer = yield PROMPT.format(workspace=WORKSPACE)
    yield await run_hidden_tests()


@fix_bug.solution
def solve() -> str:
    """The reference fix (used by the `oracle` agent): the even-length median."""
    core = WORKSPACE / "stats" / "core.py"
    core.write_text(core.read_text().replace("ordered[mid + 1]", "ordered[mid - 1]"))
    return "median() averaged the wrong neighbour for even lengths: use mid - 1 and mid"


tasks = [fix_bug()]
