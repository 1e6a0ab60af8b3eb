"""The `robot` scaffold for `hud init --template robot`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from hud.build.scaffold import scaffold, templates


def test_the_robot_template_is_shipped_with_a_readme() -> None:
    """`hud init --list` offers robot, with its README and example task."""
    meta = templates()["robot"]
    assert meta.example_task == "reach" and (meta.path / "README.md").is_file()


def test_a_rendered_robot_env_lists_reach_tasks(tmp_path: Path) -> None:
    """`hud init my-arm --template robot` renders a loadable env named my-arm."""
    target, _ = scaffold(tmp_path / "my-arm", "robot")
    done = subprocess.run([sys.executable, "-m", "hud.cli.main", "manifest", "--module",
                           str(target)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    manifest = json.loads(done.stdout)
    assert manifest["env"]["name"] == "my-arm"
    assert {t["id"] for t in manifest["tasks"]} == {"reach"} and len(manifest["tasks"]) == 4
