from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def runs_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every eval test writes its traces to its own store."""
    path = tmp_path / "runs"
    monkeypatch.setenv("HUD_RUNS_DIR", str(path))
    return path
