"""Evals and training data: run tasks with an agent, get rewards, traces and GRPO groups.

    from hud.eval import Taskset, group_relative
    job = await Taskset(count_letter(word=w) for w in words).run(agent, group=16)
    for runs in job.results.values():
        advantages = group_relative([r.reward for r in runs], normalize_std=True)
"""

from hud.eval.placement import AttachPlacement, DockerPlacement, LocalPlacement, Placement
from hud.eval.results import Job, Run, group_relative
from hud.agents.context import RunContext
from hud.eval.taskset import Taskset

__all__ = sorted([
    "AttachPlacement",
    "DockerPlacement",
    "Job",
    "LocalPlacement",
    "Placement",
    "Run",
    "RunContext",
    "Taskset",
    "group_relative",
])
