"""The hud environment of an env dir made by `hud harbor import` (runs in the container).

The generated env.py is three lines: `env = harbor_environment(HERE)`. Each Harbor task
becomes one template (its id is the task's folder name):

    setup      removes /tests and /solution left by an earlier rollout in this container
    prompt     instruction.md, verbatim, in a start frame that also carries
               `agent_timeout` ([agent] timeout_sec): the host gives the agent the
               shorter of that and its own --timeout (hud.eval.rollout)
    reward     the task's tests/test.sh, run by `hud.harbor.verifier` after the agent's
               processes are killed; the agent's answer is not used (Harbor grades the
               container's state, not a reply)
    solution   solution/solve.sh, copied to /solution and run as the agent (see below)

Design decisions:
- The agent works as hud's `agent` user (uid 1000, no sudo) in the task's workdir, which
  `hud build` gave to that user (hud.harbor.base), with the image's own environment
  (PATH...) in its sessions. Harbor's agents usually run as root: a task that needs root
  for the agent's work (apt-get install, editing /etc) cannot be solved here.
- solve.sh runs as that same agent user, not root: Harbor's oracle runs as whatever user
  its agent runs as, so hud's oracle proves a task is solvable with the rights hud's agent
  has. A solve.sh that needs root fails, which is the truth about the task under hud.
- The workdir is [environment] workdir, else the WORKDIR of the tasks' image (recorded at
  build time in /etc/hud/harbor/image.json, with the image's environment), else `/`.
- Grading and the solution share the template's grade limit, so it is set to the longer
  of [verifier] and [agent] timeout_sec plus a margin; the verifier itself is killed at
  its own timeout_sec, which is then a grade_error.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

from hud.capabilities.programs import program
from hud.capabilities.ssh import Workspace
from hud.environment import Environment
from hud.errors import TaskError
from hud.harbor.config import (
    IMAGE_INFO,
    SOLVE_SCRIPT,
    TASKS_DIR,
    HarborTask,
    read_spec,
    read_task,
)
from hud.harbor.verifier import SOLUTION, replace_top, run_as, verify

#: seconds added to a template's grade limit over the verifier's and the agent's timeout
MARGIN = 60.0
#: variables of the image's environment that belong to the user a process runs as
_PER_USER = frozenset({"HOME", "USER", "LOGNAME", "SHELL", "HOSTNAME", "TERM", "PWD", "OLDPWD"})


def image_info(path: str = IMAGE_INFO) -> dict[str, Any]:
    """What the build recorded about the tasks' image ({} outside such an image)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def image_env(info: dict[str, Any]) -> dict[str, str]:
    """The image's own environment variables, less the per-user ones."""
    env = info.get("env")
    if not isinstance(env, dict):
        return {}
    return {str(k): str(v) for k, v in env.items() if str(k) not in _PER_USER}


def _description(instruction: str) -> str:
    for line in instruction.splitlines():
        text = line.strip().lstrip("#").strip()
        if text:
            return text if len(text) <= 120 else text[:117] + "..."
    return "a Harbor task"


def _clear_leftovers() -> None:
    """Remove /tests and /solution left by an earlier rollout (in the image only).

    Raises:
        TaskError: this is not the env's image (no IMAGE_INFO): a Harbor task works on
            its container's /tests, /solution and /logs, never on the host's.
    """
    if not Path(IMAGE_INFO).is_file():
        raise TaskError(f"Harbor tasks run only in their image ({IMAGE_INFO} is missing "
                        f"here): `hud build ENV`, then `hud eval ENV AGENT` (docker)")
    for name in ("tests", SOLUTION.lstrip("/")):
        replace_top(name, None)


def _add_task(env: Environment, workspace: Workspace, task: HarborTask, workdir: str,
              base_env: dict[str, str]) -> None:
    """Register one Harbor task as a template of `env`."""
    config = task.config
    agent_timeout = config.agent.timeout_sec
    verifier_env = {**base_env, **config.verifier.env}
    tests = task.path / "tests"

    async def harbor_task() -> AsyncGenerator[Any, Any]:
        await asyncio.to_thread(_clear_leftovers)
        yield {"prompt": task.instruction, "agent_timeout": agent_timeout}
        yield await verify(task.name, tests, workdir=workdir, env=verifier_env,
                           timeout=config.verifier.timeout_sec)

    template = env.template(
        harbor_task, id=task.id, description=_description(task.instruction),
        grade_timeout=max(config.verifier.timeout_sec, agent_timeout) + MARGIN)
    if not task.has_solution:
        return

    async def solve() -> str:
        await asyncio.to_thread(replace_top, SOLUTION.lstrip("/"), task.path / "solution")
        try:
            done = await run_as(workspace.login, [program("bash"), f"{SOLUTION}/solve.sh"],
                                timeout=agent_timeout, cwd=workdir,
                                env={**base_env, **config.solution.env})
        finally:
            await asyncio.to_thread(replace_top, SOLUTION.lstrip("/"), None)
        if not done.ok:
            raise TaskError(f"{SOLVE_SCRIPT} of task {task.name!r} exited {done.code} (run "
                            f"as {workspace.login} in {workdir}): {done.tail(8)}")
        return f"ran {SOLVE_SCRIPT}"

    template.solution(solve)


def harbor_environment(root: str | Path) -> Environment:
    """The Environment serving the Harbor tasks of the imported env dir `root`.

    Raises:
        ConfigError: harbor.json or a task's files are missing or malformed.
    """
    root = Path(root)
    spec = read_spec(root)
    info = image_info()
    workdir = str(info.get("workdir") or spec.workdir or "/")
    base_env = image_env(info)
    env = Environment(name=spec.name)
    workspace = env.workspace(workdir, env=base_env)
    for folder in spec.tasks.values():
        _add_task(env, workspace, read_task(root / TASKS_DIR / folder, environment=False),
                  workdir, base_env)
    return env
