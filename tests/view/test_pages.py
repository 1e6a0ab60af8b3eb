"""`hud view` in a real browser: the jobs, job, run, compare and leaderboard pages."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tests.view.conftest import Runs
from tests.view.viewkit import snap


def _rows(page: Any, table: str) -> list[str]:
    return [row.inner_text() for row in page.locator(f"#{table} tbody tr:visible").all()]


def test_jobs_page_lists_every_job(page: Any, served: str, runs: Runs, shots: Path) -> None:
    """The jobs page has a row per job with its agent, environment and state."""
    page.goto(served)
    rows = _rows(page, "jobs")
    assert len(rows) == 6
    oracle = next(row for row in rows if runs.oracle in row)
    assert "oracle" in oracle and "letter-count" in oracle and "finished" in oracle
    assert "1.000" in oracle
    snap(page, shots, "jobs")


def _rewards(page: Any) -> list[float]:
    return [float(text) for text in page.locator("#jobs tbody tr:visible .rnum").all_inner_texts()]


def test_jobs_page_sorts_and_filters(page: Any, served: str, runs: Runs) -> None:
    """Clicking the Reward header sorts by reward, again reverses; the filter box narrows."""
    page.goto(served)
    header = page.locator("#jobs th", has_text="Reward")
    header.click()
    assert _rewards(page) == sorted(_rewards(page)) and _rewards(page)[0] == 0.0
    header.click()
    assert _rewards(page) == sorted(_rewards(page), reverse=True) and _rewards(page)[0] == 1.0
    page.fill(".filter-text[data-table=jobs]", "claude-big")
    assert [runs.big in row for row in _rows(page, "jobs")] == [True]
    assert page.locator("[data-count=jobs]").inner_text() == "1 of 6"


def test_click_into_a_job_and_a_run(page: Any, served: str, runs: Runs, shots: Path) -> None:
    """From the jobs page a click opens the job (tasks with pass@k), another a run (its
    prompt, answer, grade and timeline)."""
    page.goto(served)
    page.click(f"a:text-is('{runs.oracle}')")
    page.wait_for_url(re.compile(f"/job/{runs.oracle}$"))
    tasks = _rows(page, "tasks")
    assert len(tasks) == 3 and all("1.00" in row for row in tasks)
    assert page.locator("#tasks th", has_text="pass@3").count() == 1
    assert page.locator("#tasks .flag").count() == 3  # every group: zero variance
    snap(page, shots, "job")
    page.locator("#runs tbody a").first.click()
    page.wait_for_url(re.compile("/run/"))
    assert "How many 'r's are in" in page.locator("#prompt").inner_text()
    assert page.locator("#answer").inner_text().count("3") >= 1
    assert "score 1.0" in page.locator("#answer").inner_text()
    assert page.locator("svg.timeline rect.ph-agent").count() == 1
    snap(page, shots, "run")


def test_run_screenshot_is_shown_inline(page: Any, served: str, runs: Runs) -> None:
    """A computer-use screenshot in a trace is an image that loads (naturalWidth > 0)."""
    page.goto(f"{served}job/{runs.hostile}/run/{runs.hostile_trace}")
    image = page.locator("figure.shot img")
    assert image.count() == 1
    image.scroll_into_view_if_needed()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())
    assert image.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [320, 200]


def test_compare_shows_the_deltas(page: Any, served: str, runs: Runs, shots: Path) -> None:
    """Comparing nop (baseline), oracle and a one-task oracle job: +1 on each task the
    other job ran, a missing task marked missing, and the counts per job."""
    page.goto(f"{served}compare?job={runs.nop}&job={runs.oracle}&job={runs.one_task}")
    deltas = {row.get_attribute("data-slug"): [cell.inner_text() for cell in
                                               row.locator("td.delta").all()]
              for row in page.locator("#compare-tasks tbody tr").all()}
    assert deltas == {"count_letter": ["+1.000", "+1.000"],
                      "count_letter-7723267a": ["+1.000", "-"],
                      "count_letter-938911f2": ["+1.000", "-"]}
    counts = [row.locator("td.r").all_inner_texts() for row in
              page.locator("#compare-jobs tbody tr").all()]
    assert counts[1:] == [["3", "0", "0"], ["1", "0", "0"]]
    snap(page, shots, "compare")


def test_compare_picks_jobs_from_a_form(page: Any, served: str, runs: Runs) -> None:
    """Ticking two jobs on the jobs page and pressing Compare opens their comparison."""
    page.goto(served)
    page.check(f"input[value='{runs.nop}']")
    page.check(f"input[value='{runs.oracle}']")
    page.click("text=Compare selected")
    page.wait_for_url(re.compile("/compare\\?"))
    assert page.locator("#compare-tasks tbody tr").count() == 3


def test_leaderboard_ranks_the_jobs_of_a_task_set(page: Any, served: str, runs: Runs,
                                                  shots: Path) -> None:
    """The jobs that ran the same three letter tasks are ranked oracle first, nop second."""
    page.goto(f"{served}leaderboard")
    board = page.locator("section.board", has_text="3 tasks")
    ranked = board.locator("tbody tr").all_inner_texts()
    assert len(ranked) == 2 and runs.oracle in ranked[0] and runs.nop in ranked[1]
    snap(page, shots, "leaderboard")
    board.locator("text=compare these").click()
    assert page.locator("#compare-tasks tbody tr").count() == 3


def test_job_page_filters_runs_by_status_and_reward(page: Any, served: str, runs: Runs) -> None:
    """The runs table narrows to one status, and to one kind of reward."""
    page.goto(f"{served}job/{runs.faults}")
    assert len(_rows(page, "runs")) == 2
    page.select_option("select[data-key=status]", "grade_error")
    assert [("grade error" in row) for row in _rows(page, "runs")] == [True]
    page.select_option("select[data-key=status]", "")
    page.select_option("select[data-key=reward]", "zero")
    assert [("count_letter" in row) for row in _rows(page, "runs")] == [True]


def test_a_big_trace_opens_a_page_at_a_time(page: Any, served: str, runs: Runs,
                                            shots: Path) -> None:
    """10,000 events (50 MB, one output of 2 MB): a page shows at most 200 events, the
    2 MB output folds and is cut, its raw event has it whole, and the last page opens."""
    url = f"{served}job/{runs.big}/run/{runs.big_trace}"
    response = page.goto(url)
    assert response is not None and len(response.body()) < 2_000_000
    assert 0 < page.locator("ol.events > li").count() <= 200
    assert "10,002 events" in page.locator("h2#trace").inner_text()
    snap(page, shots, "big-run", full=False)
    page.locator("nav.pager").first.locator("a", has_text="next").click()
    page.wait_for_url(re.compile(r"page=2$"))  # the 2 MB output starts a page of its own
    cut = page.locator("p.cut")
    assert cut.count() == 1
    assert "1,980,000 more characters" in cut.text_content()  # 20,000 of 2,000,000 sent
    raw = page.request.get(served.rstrip("/") + cut.locator("a").get_attribute("href"))
    assert raw.ok and len(raw.text()) > 2_000_000
    last = page.locator("nav.pager").first.locator("a").nth(-2)  # the last page's number
    last.click()
    page.wait_for_url(re.compile(r"page=\d+"))
    assert "output 9999:" in page.locator("ol.events").inner_text()
    assert "answer" in page.locator("ol.events > li").last.inner_text()
