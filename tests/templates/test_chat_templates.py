"""The blank and coding templates in the local placement: oracle 1.0, nop 0.0."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from hud.agents import NopAgent, OracleAgent
from hud.build.scaffold import scaffold
from hud.eval import Taskset
from tests.graderkit import grader_account  # noqa: F401


@pytest.fixture
def dev_host(monkeypatch: pytest.MonkeyPatch):
    """No `agent` account here: capabilities run as us, in a scratch workspace."""
    workspace = Path(tempfile.mkdtemp(prefix="hud-ws-"))
    workspace.chmod(0o755)
    monkeypatch.setenv("HUD_AGENT_USER", "")
    monkeypatch.setenv("HUD_WORKSPACE", str(workspace))
    monkeypatch.setenv("HUD_RUNS_DIR", str(workspace.parent / f"{workspace.name}-runs"))
    yield workspace
    shutil.rmtree(workspace, ignore_errors=True)
    shutil.rmtree(workspace.parent / f"{workspace.name}-runs", ignore_errors=True)


@pytest.mark.parametrize("template", ["blank", "coding"])
async def test_oracle_and_nop_locally(template: str, dev_host: Path, tmp_path: Path,
                                      request: pytest.FixtureRequest,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Every task of the template: oracle → 1.0, nop → 0.0, in-process."""
    if template == "coding":  # its grader runs the agent's code as a grading account
        grader = request.getfixturevalue("grader_account")
        monkeypatch.setenv("HUD_GRADER_USER", grader.pw_name)
    folder, _ = scaffold(tmp_path / f"local-{template}", template)
    tasks = Taskset.from_source(folder)
    oracle = await tasks.run(OracleAgent(), runtime="local", max_concurrent=1)
    assert oracle.reward == 1.0, [r.error for r in oracle.runs]
    nop = await tasks.run(NopAgent(), runtime="local", max_concurrent=1)
    assert nop.reward == 0.0, [r.error for r in nop.runs]


def test_coding_hidden_inputs_are_fresh_at_every_grade(tmp_path: Path) -> None:
    """The coding template's hidden cases are drawn anew each time, with expected values
    from a reference: what the agent saw (or read in the public source) does not repeat."""
    import importlib.util
    import statistics

    folder, _ = scaffold(tmp_path / "coder", "coding")
    spec = importlib.util.spec_from_file_location("coding_env_probe", folder / "env.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    first, second = module.hidden_cases(), module.hidden_cases()
    drawn = [c.args for c in first if c not in module.FIXED_CASES]
    assert len(drawn) >= 10 and drawn != [c.args for c in second if c not in module.FIXED_CASES]
    medians = [c for c in first if c.call == "stats:median" and c.raises is None]
    assert all(c.expect == statistics.median(c.args[0]) for c in medians)
    assert any(len(c.args[0]) % 2 == 0 for c in medians)  # the bug's case is always there
