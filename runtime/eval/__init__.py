"""Evals and training data: run tasks with an agent, get rewards, traces and GRPO groups.

    from hud.eval import Taskset, group_relative
    job = await Taskset(count_letter(word=w) for w in words).run(agent, group=16)
    for runs in job.results.values():
        advantages = group_relative([r.reward for r in runs], normalize_std=True)

Names are exported lazily (PEP 562), as in `hud` and `hud.robot`: importing one module of
the package (an agent reading `hud.eval.traces`) does not import the runner and every
placement, so `hud.agents` and `hud.eval` do not import each other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hud import lazy

if TYPE_CHECKING:  # what a type checker sees; at run time `__getattr__` imports on first use
    from hud.agents.context import RunContext as RunContext
    from hud.eval.attach import AttachPlacement as AttachPlacement
    from hud.eval.docker import DockerPlacement as DockerPlacement
    from hud.eval.placement import LocalPlacement as LocalPlacement
    from hud.eval.placement import Placement as Placement
    from hud.eval.results import Job as Job
    from hud.eval.results import JobStats as JobStats
    from hud.eval.results import Run as Run
    from hud.eval.results import TaskStats as TaskStats
    from hud.eval.results import group_relative as group_relative
    from hud.eval.taskset import Taskset as Taskset

# public name -> defining module
_EXPORTS: dict[str, str] = {
    "AttachPlacement": "hud.eval.attach",
    "DockerPlacement": "hud.eval.docker",
    "Job": "hud.eval.results",
    "JobStats": "hud.eval.results",
    "LocalPlacement": "hud.eval.placement",
    "Placement": "hud.eval.placement",
    "Run": "hud.eval.results",
    "RunContext": "hud.agents.context",
    "TaskStats": "hud.eval.results",
    "Taskset": "hud.eval.taskset",
    "group_relative": "hud.eval.results",
}

__all__ = [
    "AttachPlacement",
    "DockerPlacement",
    "Job",
    "JobStats",
    "LocalPlacement",
    "Placement",
    "Run",
    "RunContext",
    "TaskStats",
    "Taskset",
    "group_relative",
]

__getattr__, __dir__ = lazy.exports(__name__, _EXPORTS, globals())
