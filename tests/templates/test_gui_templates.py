"""The browser and desktop templates grade 1.0 with the oracle and 0.0 with nop (local
placement, real Chromium and Xvnc on this host; the docker placement is tested with the
images)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hud.agents import NopAgent, OracleAgent
from hud.capabilities.chromium import LOOPBACK_ONLY
from hud.environment import Environment
from hud.eval import Taskset
from hud.eval.placement import LocalPlacement
from hud.serve.loader import load_environment
from tests.guikit import need

TEMPLATES = Path(__file__).parents[2] / "templates"


@pytest.fixture(autouse=True)
def runs_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "runs"
    monkeypatch.setenv("HUD_RUNS_DIR", str(path))
    return path


def _load(name: str) -> Environment:
    env = load_environment(str(TEMPLATES / name))
    for capability in env.capabilities.values():
        capability.user_name = None  # type: ignore[attr-defined]  # no `agent` user here
        if hasattr(capability, "args"):
            capability.args = list(LOOPBACK_ONLY)  # type: ignore[attr-defined]
    return env


async def _rewards(name: str, agent: object) -> list[float | None]:
    env = _load(name)
    # one display and one browser per environment: its rollouts take turns
    job = await Taskset(env.listed_tasks(), env=env).run(agent, runtime=LocalPlacement(env),
                                                         max_concurrent=1)
    assert all(r.status == "completed" for r in job.runs), [r.error for r in job.runs]
    return [r.reward for r in job.runs]


async def test_browser_template_oracle_scores_one() -> None:
    """The todo app's reference solution, done over CDP, scores 1.0 on every listed task."""
    need("chromium")
    assert await _rewards("browser", OracleAgent()) == [1.0, 1.0]


async def test_browser_template_nop_scores_zero() -> None:
    """Doing nothing in the todo app scores 0.0."""
    need("chromium")
    assert await _rewards("browser", NopAgent()) == [0.0, 0.0]


async def test_desktop_template_oracle_scores_one() -> None:
    """The Notes app's reference solution, done with xdotool, scores 1.0 on every task."""
    need("Xvnc", "openbox", "xdotool", "xprop")
    pytest.importorskip("tkinter")
    assert await _rewards("desktop", OracleAgent()) == [1.0, 1.0]


async def test_desktop_template_nop_scores_zero() -> None:
    """Doing nothing in the Notes app scores 0.0."""
    need("Xvnc", "openbox", "xdotool", "xprop")
    pytest.importorskip("tkinter")
    assert await _rewards("desktop", NopAgent()) == [0.0, 0.0]
