"""The numbers the viewer shows beyond `Job.stats`: pass@k, comparisons, leaderboards.

A run passes when it earned the full reward (`PASS_REWARD`); pass@k is the unbiased
estimate over a task's counted runs (n runs, c passes): 1 - C(n-c, k) / C(n, k), the
chance that at least one of k runs drawn from the n passes. Counted runs follow the rule
of `hud.eval.results` (completed, timeout and grade_error, a missing reward as 0.0).

A comparison lines up two or more jobs task by task (by slug); the first job is the
baseline and every other job's mean reward is shown with its delta, a task counting as
improved or regressed when the delta is beyond `SAME`. A leaderboard ranks every job that
ran exactly the same set of tasks.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from hud.eval.results import COUNTED, Job, Run, TaskStats

PASS_REWARD = 1.0
#: reward deltas within this are "same"
SAME = 1e-9


def passes(runs: Sequence[Run]) -> tuple[int, int]:
    """(counted runs, runs that passed) of one task's final runs."""
    counted = [r.reward or 0.0 for r in runs if r.status in COUNTED]
    return len(counted), sum(1 for reward in counted if reward >= PASS_REWARD - SAME)


def pass_at_k(n: int, c: int, k: int) -> float | None:
    """The unbiased pass@k of n runs of which c passed; None when n < k or k < 1."""
    if k < 1 or n < k:
        return None
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


@dataclass
class TaskRow:
    """One task of a job: its statistics, pass@1 and pass@k, and its arguments."""

    slug: str
    env: str
    args: dict[str, object]
    stats: TaskStats
    passed: int
    pass1: float | None
    passk: float | None


def task_rows(job: Job) -> list[TaskRow]:
    """The job's tasks in the order they first ran, with pass@1 and pass@group."""
    rows = []
    stats = job.stats.tasks
    for slug, runs in job.results.items():
        n, c = passes(runs)
        task = runs[0].task
        rows.append(TaskRow(slug, task.env, dict(task.args), stats[slug], c,
                            pass_at_k(n, c, 1), pass_at_k(n, c, job.group) if job.group > 1
                            else None))
    return rows


def task_means(job: Job) -> dict[str, float | None]:
    """slug -> mean reward of the task's counted runs (None when none counts)."""
    return {slug: s.mean for slug, s in job.stats.tasks.items()}


@dataclass
class CompareRow:
    """One task across the compared jobs: each job's mean, and each delta to the first."""

    slug: str
    means: list[float | None]
    deltas: list[float | None]
    verdicts: list[str]  # per job after the first: improved, regressed, same, missing


@dataclass
class Comparison:
    """Jobs side by side over the union of their tasks."""

    jobs: list[Job]
    rows: list[CompareRow]
    common: list[str]  # tasks every job ran
    common_means: list[float | None]  # each job's mean reward over the common tasks
    counts: list[dict[str, int]] = field(default_factory=list)  # per job after the first


def compare(jobs: Sequence[Job]) -> Comparison:
    """The per-task comparison of `jobs` (the first is the baseline)."""
    means = [task_means(job) for job in jobs]
    slugs: list[str] = []
    for table in means:
        slugs += [slug for slug in table if slug not in slugs]
    common = [slug for slug in slugs if all(slug in table for table in means)]
    rows = []
    counts = [dict.fromkeys(("improved", "regressed", "same", "missing"), 0) for _ in jobs[1:]]
    for slug in slugs:
        values = [table.get(slug) for table in means]
        base = values[0]
        deltas: list[float | None] = []
        verdicts = []
        for i, value in enumerate(values[1:]):
            if base is None or value is None:
                delta, verdict = None, "missing"
            else:
                delta = value - base
                verdict = ("improved" if delta > SAME else "regressed" if delta < -SAME
                           else "same")
            deltas.append(delta)
            verdicts.append(verdict)
            counts[i][verdict] += 1
        rows.append(CompareRow(slug, values, deltas, verdicts))
    common_means = []
    for table in means:
        values = [table[slug] for slug in common if table[slug] is not None]
        common_means.append(sum(v for v in values if v is not None) / len(values)
                            if values else None)
    return Comparison(list(jobs), rows, common, common_means, counts)


@dataclass
class Board:
    """Every job that ran one set of tasks, best mean reward first."""

    key: str  # a short digest of the task set (anchors, export file names)
    tasks: list[str]
    envs: list[str]
    jobs: list[Job]


def task_set_key(tasks: frozenset[str]) -> str:
    return hashlib.sha256("\n".join(sorted(tasks)).encode()).hexdigest()[:12]


def leaderboards(jobs: Sequence[Job]) -> list[Board]:
    """One board per distinct task set (jobs with no run are left out), the sets run by
    the most jobs first; on a board the best reward first, then the most recent."""
    sets: dict[frozenset[str], list[Job]] = {}
    for job in jobs:
        tasks = frozenset(run.slug for run in job.runs)
        if tasks:
            sets.setdefault(tasks, []).append(job)
    boards = []
    for tasks, members in sets.items():
        ranked = sorted(members, key=lambda j: (j.reward is None, -(j.reward or 0.0),
                                                -j.started_at))
        envs = sorted({run.task.env for job in members for run in job.runs})
        boards.append(Board(task_set_key(tasks), sorted(tasks), envs, ranked))
    return sorted(boards, key=lambda b: (-len(b.jobs), b.envs, b.key))
