"""Live pages: a run that lands while its job's page is open appears without a reload;
`hud eval` says where the viewer is, or how to start one."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from tests.view.viewkit import ENVS, hud, snap, start, viewer

GATED = Path(__file__).parent / "gated.py"
WAIT = 30.0


def _first_trace(runs: Path, proc: Any) -> Path:
    """The first trace file under `runs`, once the rollout has written it."""
    deadline = time.monotonic() + WAIT
    while True:
        found = sorted(runs.glob("*/*.jsonl"))
        if found:
            return found[0]
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no trace file appeared"
        time.sleep(0.05)


def test_job_page_shows_a_run_that_lands_while_open(page: Any, tmp_path: Path,
                                                    shots: Path) -> None:
    """With a job's page open, its rollout in flight shows as in progress; when the run
    lands it appears in the runs table, in the same page (no reload)."""
    runs, gate = tmp_path / "runs", tmp_path / "gate"
    runs.mkdir()
    with viewer(runs) as (url, _):
        job = start(runs, "eval", str(GATED), "nop", env={"HUD_VIEW_GATE": str(gate)})
        try:
            job_id = _first_trace(runs, job).parent.name
            page.goto(f"{url}job/{job_id}")
            expect(page.locator("h1 .badge")).to_have_text("running")
            assert page.locator("#runs").count() == 0
            assert page.locator(".inprogress li").count() == 1
            page.evaluate("() => { window.__same_page = true; }")
            snap(page, shots, "live-before")
            gate.touch()
            expect(page.locator("#runs tbody tr")).to_have_count(1, timeout=WAIT * 1000)
            expect(page.locator("h1 .badge")).to_have_text("finished", timeout=WAIT * 1000)
            assert page.evaluate("() => window.__same_page") is True
            assert "completed" in page.locator("#runs tbody tr").inner_text()
            snap(page, shots, "live-after")
        finally:
            gate.touch()
            job.communicate(timeout=60)


def test_hud_eval_prints_the_running_viewers_url(tmp_path: Path) -> None:
    """With a viewer serving the runs folder, `hud eval` ends with the job's URL in it."""
    runs = tmp_path / "runs"
    runs.mkdir()
    with viewer(runs) as (url, _):
        done = hud(runs, "eval", str(ENVS / "letters.py"), "nop", "--task", "count_letter")
    assert done.returncode == 0, done.stderr
    job_id = next(p.name for p in runs.iterdir() if p.is_dir())
    assert f"view: {url}job/{job_id}" in done.stderr.splitlines()


def test_hud_eval_prints_how_to_start_a_viewer(tmp_path: Path) -> None:
    """With no viewer running (one came and went), `hud eval` names the command instead."""
    runs = tmp_path / "runs"
    runs.mkdir()
    with viewer(runs):
        assert (runs / ".hud-view.json").is_file()
    assert not (runs / ".hud-view.json").exists()
    done = hud(runs, "eval", str(ENVS / "letters.py"), "nop", "--task", "count_letter")
    assert any(re.fullmatch(r"view: hud view +\(.*\)", line)
               for line in done.stderr.splitlines()), done.stderr
