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

`Job.stats` (per task and for the whole job) applies the same rule, so the table and the
JSON of `hud eval` agree with `Job.reward`; it is serialized with the job.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal, get_args

from pydantic import BaseModel, Field, computed_field

from hud.task import Task

Status = Literal["completed", "timeout", "grade_error", "agent_error", "infra_error"]
#: statuses that are the agent's outcome: counted in `Job.reward` (a missing reward as 0)
COUNTED: frozenset[str] = frozenset({"completed", "timeout", "grade_error"})
#: a std below this is no variance: a group with no learning signal
ZERO_STD = 1e-12


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


def _rewards(runs: Sequence[Run]) -> list[float]:
    """The rewards that count (the agent's outcomes), a missing one as 0.0."""
    return [r.reward or 0.0 for r in runs if r.status in COUNTED]


def _stats_fields(runs: Sequence[Run]) -> dict[str, Any]:
    """The fields of `Stats` for `runs`, as keyword arguments."""
    rewards = _rewards(runs)
    mean = sum(rewards) / len(rewards) if rewards else None
    std = (math.sqrt(sum((x - mean) ** 2 for x in rewards) / len(rewards))
           if mean is not None else None)
    by_status = dict.fromkeys(get_args(Status), 0)
    for run in runs:
        by_status[run.status] += 1
    return {"runs": len(runs), "completed": by_status["completed"], "counted": len(rewards),
            "errors": len(runs) - by_status["completed"], "mean": mean, "std": std,
            "by_status": by_status}


class Stats(BaseModel):
    """Counts and reward statistics over final runs (one per group member).

    `mean` and `std` (population) are over the `counted` runs, the agent's outcomes
    (completed, timeout, grade_error; a missing reward as 0.0), the same rule as
    `Job.reward`; both are None when no run counts. `errors` counts the runs that did not
    complete; `by_status` has every status, zeros included.
    """

    runs: int
    completed: int
    counted: int
    errors: int
    mean: float | None
    std: float | None
    by_status: dict[str, int]


class TaskStats(Stats):
    """One task's group. `zero_variance`: two or more counted runs, all with the same
    reward, so the group gives GRPO no learning signal (its advantages are all 0)."""

    zero_variance: bool

    @classmethod
    def of(cls, runs: Sequence[Run]) -> TaskStats:
        """The statistics of one task's final runs."""
        fields = _stats_fields(runs)
        std = fields["std"]
        return cls(**fields, zero_variance=fields["counted"] > 1 and std is not None
                   and std < ZERO_STD)


class JobStats(Stats):
    """A whole job: its final runs together, each task's in `tasks`, and the slugs of the
    tasks whose group has zero variance."""

    tasks: dict[str, TaskStats]
    zero_variance_tasks: list[str]

    @classmethod
    def of(cls, results: dict[str, list[Run]]) -> JobStats:
        """The statistics of a job's `results` (slug -> final runs)."""
        tasks = {slug: TaskStats.of(runs) for slug, runs in results.items()}
        return cls(**_stats_fields([run for runs in results.values() for run in runs]),
                   tasks=tasks,
                   zero_variance_tasks=[slug for slug, t in tasks.items() if t.zero_variance])


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
        rewards = _rewards(self.final_runs)
        return sum(rewards) / len(rewards) if rewards else None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def stats(self) -> JobStats:
        """Counts by status, mean and std of the reward, and zero-variance groups, for the
        job and per task, over the final runs (see `Stats`). Part of the job's JSON."""
        return JobStats.of(self.results)

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
