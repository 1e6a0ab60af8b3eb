"""group_relative and Job aggregation."""

from __future__ import annotations

import math

import pytest

from hud.eval import Job, Run, group_relative
from hud.task import Task


def test_group_relative_normalizes_by_std() -> None:
    """Advantages are (r - mean) / std: they sum to 0 and have unit variance."""
    adv = group_relative([1.0, 0.0, 1.0, 0.0])
    assert adv == [1.0, -1.0, 1.0, -1.0]


def test_group_relative_without_std() -> None:
    """normalize_std=False only centers."""
    assert group_relative([3.0, 1.0], normalize_std=False) == [1.0, -1.0]


def test_zero_variance_group_gives_zeros_not_nan() -> None:
    """All-equal rewards: no learning signal, zeros."""
    adv = group_relative([1.0] * 8)
    assert adv == [0.0] * 8 and not any(math.isnan(a) for a in adv)


def test_missing_reward_is_refused() -> None:
    """A None reward (a failed run) is an error saying what to do."""
    with pytest.raises(ValueError, match="re-run them"):
        group_relative([1.0, None])  # type: ignore[list-item]


def _run(slug_args: dict, index: int, status: str, reward: float | None, attempt: int = 1) -> Run:
    return Run(trace_id=f"t{index}{attempt}", job_id="j", task=Task(env="e", id="t", args=slug_args),
               group_id="g", index=index, attempt=attempt, status=status, reward=reward)  # type: ignore[arg-type]


def test_job_reward_counts_completed_runs_only() -> None:
    """Infra errors are not zeros: they are left out of the mean and listed in errors."""
    job = Job(id="j", agent="a", placement="local", group=3, runs=[
        _run({}, 0, "completed", 1.0), _run({}, 1, "infra_error", None), _run({}, 2, "completed", 0.5)])
    assert job.reward == 0.75
    assert [r.index for r in job.errors] == [1]


def test_results_keep_the_last_attempt_in_group_order() -> None:
    """A retried member appears once, as its final attempt, in index order."""
    job = Job(id="j", agent="a", placement="local", group=2, runs=[
        _run({}, 1, "completed", 1.0), _run({}, 0, "infra_error", None),
        _run({}, 0, "completed", 0.0, attempt=2)])
    runs = job.results["t"]
    assert [(r.index, r.attempt, r.reward) for r in runs] == [(0, 2, 0.0), (1, 1, 1.0)]
    assert job.errors == []
