"""What an eval produces: `Run`s grouped into a `Job`, and GRPO's group-relative advantage.

A run's `status` says how it ended. The rule: what the agent could cause is the agent's
outcome and counts; only what the rollout could not cause is left out and retried.

    completed     graded by the environment (any reward, including 0.0)
    timeout       the agent ran past the rollout timeout: reward 0.0, counted
    grade_error   the environment's grading code raised after the agent acted: no reward
                  is recorded (never a fake 0.0), but the job's mean counts it as unearned,
                  since the agent may have caused it (deleted a file the grader reads...)
    agent_error   the agent's harness raised (a model/API error, a bug in the harness)
    infra_error   the rollout could not cause it: docker failed, the container vanished,
                  the tunnel broke, setup raised before the agent acted

Infra and agent errors are never a reward: they are left out of `Job.reward`, and
`retries` re-runs infra errors so a GRPO group is never silently smaller.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field

from hud.task import Task

Status = Literal["completed", "timeout", "grade_error", "agent_error", "infra_error"]
#: statuses that are the agent's outcome: counted in `Job.reward` (a missing reward as 0)
COUNTED: frozenset[str] = frozenset({"completed", "timeout", "grade_error"})


class Run(BaseModel):
    """One rollout: a task, an agent's answer and (when completed) its reward."""

    trace_id: str
    job_id: str
    task: Task
    group_id: str
    index: int = 0
    attempt: int = 1
    status: Status
    reward: float | None = None
    grade: dict[str, Any] = Field(default_factory=dict)
    prompt: Any = None
    answer: Any = None
    error: str | None = None
    stop_reason: str | None = None
    timings: dict[str, float] = Field(default_factory=dict)
    placement: dict[str, Any] = Field(default_factory=dict)
    trace: list[dict[str, Any]] = Field(default_factory=list, exclude=True)

    @property
    def slug(self) -> str:
        return self.task.slug

    @property
    def ok(self) -> bool:
        return self.status == "completed"


class Job(BaseModel):
    """All runs of one `Taskset.run`: results per task slug, in group order."""

    id: str
    agent: str
    placement: str
    group: int
    runs: list[Run] = Field(default_factory=list)
    started_at: float = 0.0
    finished_at: float = 0.0

    @property
    def results(self) -> dict[str, list[Run]]:
        """slug -> the final run of each group member, in group order."""
        out: dict[str, dict[int, Run]] = {}
        for run in self.runs:
            members = out.setdefault(run.slug, {})
            previous = members.get(run.index)
            if previous is None or run.attempt > previous.attempt:
                members[run.index] = run
        return {slug: [m[i] for i in sorted(m)] for slug, m in out.items()}

    @property
    def final_runs(self) -> list[Run]:
        return [run for runs in self.results.values() for run in runs]

    @property
    def reward(self) -> float | None:
        """Mean reward over the runs that are the agent's outcome (completed, timeout,
        grade_error — the latter two as 0.0); None when there are none."""
        rewards = [r.reward or 0.0 for r in self.final_runs if r.status in COUNTED]
        return sum(rewards) / len(rewards) if rewards else None

    @property
    def errors(self) -> list[Run]:
        """Final runs that did not complete (after retries)."""
        return [r for r in self.final_runs if not r.ok]


def group_relative(rewards: Sequence[float], normalize_std: bool = True) -> list[float]:
    """GRPO advantages: each reward minus the group mean, over the group's std if asked.

    A group with no variance has no learning signal: its advantages are all 0.0, never NaN.

    Raises:
        ValueError: a reward is missing (None) or not finite — drop or re-run failed runs.
    """
    values = list(rewards)
    for value in values:
        if value is None or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(
                f"group_relative needs finite rewards, got {value!r}; runs that did not "
                f"complete have no reward: re-run them (retries=) or leave them out"
            )
    if not values:
        return []
    mean = sum(values) / len(values)
    centered = [v - mean for v in values]
    if not normalize_std:
        return centered
    std = math.sqrt(sum(c * c for c in centered) / len(values))
    if std < 1e-12:
        return [0.0] * len(values)
    return [c / std for c in centered]
