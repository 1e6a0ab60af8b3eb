"""pass@k, comparisons and leaderboards over real `Job` objects."""

from __future__ import annotations

import math

import pytest

from hud.eval.results import Job, Run, Status
from hud.task import Task
from hud.view.events import CAP, HEAD_CHARS, chip, fold, item, visible
from hud.view.scores import compare, leaderboards, pass_at_k, passes, task_rows


def _job(job_id: str, rewards: dict[str, list[float | None]], started: float = 0.0,
         status: Status = "completed") -> Job:
    runs = [Run(trace_id=f"{job_id}{slug}{i}", job_id=job_id, task=Task(env="e", id=slug),
                group_id=slug, index=i, status=status if reward is None else "completed",
                reward=reward)
            for slug, values in rewards.items() for i, reward in enumerate(values)]
    group = max(len(v) for v in rewards.values())
    return Job(id=job_id, agent="a", placement="local", group=group, runs=runs,
               started_at=started)


@pytest.mark.parametrize(("n", "c", "k", "expected"), [
    (5, 2, 1, 0.4), (5, 2, 2, 1 - math.comb(3, 2) / math.comb(5, 2)), (5, 0, 3, 0.0),
    (4, 4, 4, 1.0), (3, 1, 3, 1.0), (2, 1, 3, None), (2, 1, 0, None)])
def test_pass_at_k_is_the_unbiased_estimate(n: int, c: int, k: int,
                                            expected: float | None) -> None:
    """pass@k = 1 - C(n-c, k) / C(n, k); None when fewer than k runs."""
    value = pass_at_k(n, c, k)
    assert value == pytest.approx(expected) if expected is not None else value is None


def test_a_pass_is_a_full_reward_among_counted_runs() -> None:
    """Partial rewards do not pass; an agent_error is not counted; a timeout counts as 0."""
    job = _job("j", {"t": [1.0, 0.5, None, None]})
    job.runs[2].status, job.runs[3].status = "agent_error", "timeout"
    assert passes(job.runs) == (3, 1)
    row = task_rows(job)[0]
    assert (row.pass1, row.passk) == (pytest.approx(1 / 3), None)  # 3 counted < group 4


def test_compare_marks_improved_regressed_same_and_missing() -> None:
    """Deltas are against the first job; a task the other did not run is missing."""
    base = _job("base", {"a": [1.0, 0.0], "b": [1.0, 1.0], "c": [0.5, 0.5]})
    other = _job("other", {"a": [1.0, 1.0], "b": [0.0, 1.0], "d": [1.0, 1.0]})
    result = compare([base, other])
    rows = {row.slug: (row.deltas[0], row.verdicts[0]) for row in result.rows}
    assert rows == {"a": (0.5, "improved"), "b": (-0.5, "regressed"), "c": (None, "missing"),
                    "d": (None, "missing")}
    assert result.common == ["a", "b"]
    assert result.common_means == [0.75, 0.75]
    assert result.counts == [{"improved": 1, "regressed": 1, "same": 0, "missing": 2}]


def test_leaderboards_group_jobs_by_task_set_best_first() -> None:
    """Jobs over the same tasks share a board, best reward first; another set has its own."""
    low, high = _job("low", {"a": [0.0], "b": [0.0]}), _job("high", {"a": [1.0], "b": [1.0]})
    alone = _job("alone", {"a": [1.0]})
    boards = leaderboards([low, alone, high])
    assert [[job.id for job in board.jobs] for board in boards] == [["high", "low"], ["alone"]]
    assert boards[0].tasks == ["a", "b"] and boards[0].key != boards[1].key


def test_folding_keeps_a_head_and_cuts_at_the_cap() -> None:
    """A long value folds (a head for the closed state) and is cut at CAP characters."""
    text = fold("y" * (CAP + 50))
    assert text.head is not None and len(text.head) == HEAD_CHARS
    assert len(text.full) == CAP and text.cut == 50
    assert fold("short").head is None


def test_hidden_characters_are_shown() -> None:
    """Control, bidi and zero-width characters become visible \\uXXXX escapes."""
    assert visible("a\x1b[2Jb\u202ec\u200bd\n") == "a\\u001b[2Jb\\u202ec\\u200bd\n"
    assert chip("x" * 500).endswith("…") and len(chip("x" * 500)) == 120


def test_an_event_with_a_bad_screenshot_name_shows_no_image() -> None:
    """Only a plain file name ending in .png becomes an image; anything else stays text."""
    assert item(0, {"type": "screenshot", "file": "r-0001.png"}).shot == "r-0001.png"
    for name in ("../x.png", "/etc/passwd", "x.png\" onerror=\"alert(1)", 3):
        shown = item(0, {"type": "screenshot", "file": name})
        assert shown.shot is None and shown.blocks
