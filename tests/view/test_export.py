"""`hud view --export OUT`: static pages that open from file:// and behave like the served ones."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from hud.view.export import MARKER, export
from hud.view.store import Store
from tests.view.conftest import Runs
from tests.view.viewkit import hostile_job, hud, snap


@pytest.fixture(scope="module")
def exported(runs: Runs, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An export of the fixture jobs (all but the 50 MB one)."""
    base = tmp_path_factory.mktemp("export")
    root = base / "runs"
    for folder in runs.root.iterdir():
        if folder.is_dir() and folder.name != runs.big:
            shutil.copytree(folder, root / folder.name)
    out = base / "out"
    done = hud(root, "view", str(root), "--export", str(out))
    assert done.returncode == 0, done.stderr
    assert "exported" in done.stdout and "1 screenshots" in done.stdout
    return out


def test_exported_pages_open_from_file(page: Any, exported: Path, runs: Runs,
                                       shots: Path) -> None:
    """From file://: the jobs page (styled, its filter working), a click into a job and a
    run whose screenshot loads."""
    page.goto((exported / "index.html").as_uri())
    assert page.locator("#jobs tbody tr").count() == 5
    background = page.evaluate("() => getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(246, 247, 249)"  # view.css loaded
    page.fill(".filter-text[data-table=jobs]", "xss-env")
    assert page.locator("#jobs tbody tr:visible").count() == 1  # view.js runs
    snap(page, shots, "export-jobs")
    page.click(f"a:text-is('{runs.hostile}')")
    page.click(f"a:text-is('{runs.hostile_trace}')")
    assert page.url.startswith("file://") and page.url.endswith(".html")
    image = page.locator("figure.shot img")
    image.scroll_into_view_if_needed()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0",
                           arg=image.element_handle())
    assert page.dialogs == [] and page.evaluate("() => window.__pwned") is None
    snap(page, shots, "export-run")


def test_exported_leaderboard_links_its_comparison(page: Any, exported: Path,
                                                   runs: Runs) -> None:
    """The static leaderboard links a comparison page of the jobs of a task set."""
    page.goto((exported / "leaderboard.html").as_uri())
    page.locator("section.board", has_text="3 tasks").locator("text=compare these").click()
    rows = page.locator("#compare-tasks tbody tr")
    assert rows.count() == 3
    assert rows.locator("td.delta").all_inner_texts() == ["−1.000"] * 3  # nop vs oracle


def test_export_refuses_a_folder_it_did_not_write(runs: Runs, tmp_path: Path) -> None:
    """A non-empty folder that is not an earlier export is never written over."""
    (tmp_path / "notes.txt").write_text("mine")
    done = hud(runs.root, "view", str(runs.root), "--export", str(tmp_path))
    assert done.returncode == 1
    assert "not empty and is not an earlier export" in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_a_re_export_replaces_links_in_out_and_leaves_their_targets(tmp_path: Path) -> None:
    """Links planted in an earlier export (static/, shots/JOB, a run page) are replaced by
    real folders and files; what they named is untouched."""
    root, out, outside = tmp_path / "runs", tmp_path / "out", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "view.css").write_text("precious")
    job_id, trace_id = hostile_job(root)
    export(Store(root), out)
    shutil.rmtree(out / "static")
    (out / "static").symlink_to(outside)
    shutil.rmtree(out / "shots" / job_id)
    (out / "shots" / job_id).symlink_to(outside)
    run_page = out / f"run-{job_id}.{trace_id}.html"
    run_page.unlink()
    run_page.symlink_to(outside / "view.css")
    assert (out / MARKER).is_file()
    export(Store(root), out)
    assert sorted(p.name for p in outside.iterdir()) == ["view.css"]
    assert (outside / "view.css").read_text() == "precious"
    for path in (out / "static", out / "shots" / job_id, run_page):
        assert not path.is_symlink() and path.exists()
