"""Fixtures of the viewer's tests: one runs folder of real and hostile jobs, one `hud view`
serving it, one Chromium; built once for all the tests of tests/view/."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.guikit import need
from tests.view.viewkit import CHROMIUM, ENVS, big_job, evals, hostile_job, shots_dir, viewer


@dataclass
class Runs:
    """The fixture folder and its jobs."""

    root: Path
    oracle: str  # letters, oracle, group 3: every reward 1
    nop: str  # letters, nop, group 3: every reward 0
    one_task: str  # letters, oracle, only count_letter, group 2
    faults: str  # a grade_error and a completed run
    hostile: str
    hostile_trace: str
    big: str
    big_trace: str


@pytest.fixture(scope="session")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    root = tmp_path_factory.mktemp("view") / "runs"
    letters = str(ENVS / "letters.py")
    oracle, nop, one_task, faults = evals(
        root, [letters, "oracle", "--group", "3"], [letters, "nop", "--group", "3"],
        [letters, "oracle", "--group", "2", "--task", "count_letter"],
        [str(ENVS / "faults.py"), "nop", "--task", "raises_in_grading", "--task",
         "count_letter"])
    hostile, hostile_trace = hostile_job(root)
    big, big_trace = big_job(root)
    yield Runs(root, oracle, nop, one_task, faults, hostile, hostile_trace, big, big_trace)
    shutil.rmtree(root, ignore_errors=True)  # 50 MB of trace: not left for pytest to keep


@pytest.fixture(scope="session")
def served(runs: Runs) -> Iterator[str]:
    """The URL of a `hud view` serving the fixture folder."""
    with viewer(runs.root) as (url, _):
        yield url


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    need("chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh page that records every dialog it was asked to open."""
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    page = context.new_page()
    page.dialogs = []  # type: ignore[attr-defined]
    page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
    yield page
    context.close()


@pytest.fixture(scope="session")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the tests save a screenshot of each page ($HUD_VIEW_SHOTS keeps them)."""
    return shots_dir(tmp_path_factory.mktemp("shots"))
