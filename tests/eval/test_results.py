"""group_relative, Job aggregation and the job statistics."""

from __future__ import annotations

import json
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


def _job(*runs: Run) -> Job:
    return Job(id="j", agent="a", placement="local", group=2, runs=list(runs))


def test_stats_count_every_status_and_average_the_agents_outcomes() -> None:
    """Per task and for the job: counts by status; mean and std over completed, timeout and
    grade_error runs (a missing reward as 0.0), infra errors left out, as in Job.reward."""
    job = _job(_run({}, 0, "completed", 1.0), _run({}, 1, "timeout", None),
               _run({"w": "b"}, 0, "infra_error", None), _run({"w": "b"}, 1, "grade_error", None))
    stats = job.stats
    assert stats.by_status == {"completed": 1, "timeout": 1, "grade_error": 1,
                               "agent_error": 0, "infra_error": 1}
    assert (stats.runs, stats.completed, stats.counted, stats.errors) == (4, 1, 3, 3)
    assert stats.mean == job.reward == pytest.approx(1 / 3)
    assert stats.std == pytest.approx(math.sqrt(2) / 3)
    first, second = stats.tasks.values()
    assert (first.mean, first.std, first.counted, first.errors) == (0.5, 0.5, 2, 1)
    assert (second.mean, second.counted, second.by_status["infra_error"]) == (0.0, 1, 1)


def test_stats_of_a_task_with_no_counted_run_have_no_mean() -> None:
    """A task whose runs all failed on infrastructure has mean and std None, not 0."""
    stats = _job(_run({}, 0, "infra_error", None), _run({}, 1, "agent_error", None)).stats
    assert (stats.tasks["t"].mean, stats.tasks["t"].std, stats.mean) == (None, None, None)
    assert stats.tasks["t"].errors == 2 and stats.counted == 0


def test_zero_variance_groups_are_flagged_per_task_and_listed_for_the_job() -> None:
    """A group whose counted rewards are all equal has no signal; one counted run is not."""
    job = _job(_run({}, 0, "completed", 1.0), _run({}, 1, "completed", 1.0),
               _run({"w": "b"}, 0, "completed", 1.0), _run({"w": "b"}, 1, "completed", 0.0),
               _run({"w": "c"}, 0, "completed", 1.0), _run({"w": "c"}, 1, "infra_error", None))
    stats = job.stats
    assert {slug: t.zero_variance for slug, t in stats.tasks.items()} == {
        "t": True, Task(env="e", id="t", args={"w": "b"}).slug: False,
        Task(env="e", id="t", args={"w": "c"}).slug: False}
    assert stats.zero_variance_tasks == ["t"]


def test_stats_count_a_retried_member_once() -> None:
    """Only a group member's final attempt is in the statistics."""
    stats = _job(_run({}, 0, "infra_error", None), _run({}, 0, "completed", 0.5, attempt=2)).stats
    assert (stats.runs, stats.by_status["infra_error"], stats.mean) == (1, 0, 0.5)


def test_job_json_carries_the_stats_and_reads_back() -> None:
    """The job's JSON has `stats`; a stored job reads back with the same statistics."""
    job = _job(_run({}, 0, "completed", 1.0), _run({}, 1, "timeout", None))
    data = json.loads(job.model_dump_json())
    assert data["stats"]["mean"] == 0.5 and data["stats"]["tasks"]["t"]["by_status"]["timeout"] == 1
    assert Job.model_validate(data).stats == job.stats
