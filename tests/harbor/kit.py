"""Helpers for the Harbor tests: the example task folders and broken copies of them."""

from __future__ import annotations

import shutil
from pathlib import Path

TASKS = Path(__file__).parent / "tasks"
EXAMPLES = ("shell-line-count", "python-slugify", "json-report")


def example(name: str) -> Path:
    """The folder of one example task (tests/harbor/tasks/NAME)."""
    return TASKS / name


def copy_task(tmp_path: Path, name: str = "shell-line-count", as_name: str | None = None) -> Path:
    """A writable copy of an example task under tmp_path (to break it)."""
    target = tmp_path / (as_name or name)
    shutil.copytree(example(name), target)
    return target


def write_task(tmp_path: Path, name: str, test_sh: str, *, verifier_timeout: float = 60.0,
               solve_sh: str | None = None) -> Path:
    """A task sharing the examples' environment, with its own test.sh (and solve.sh)."""
    target = copy_task(tmp_path, "shell-line-count", as_name=name)
    shutil.rmtree(target / "solution")
    (target / "tests" / "test.sh").write_text(test_sh)
    (target / "task.toml").write_text(
        f'[agent]\ntimeout_sec = 120.0\n\n[verifier]\ntimeout_sec = {verifier_timeout}\n\n'
        f'[environment]\nworkdir = "/app"\nallow_internet = false\n')
    if solve_sh is not None:
        (target / "solution").mkdir()
        (target / "solution" / "solve.sh").write_text(solve_sh)
    return target
