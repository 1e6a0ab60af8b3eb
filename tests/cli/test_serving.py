"""`hud serve` pauses the garbage collector while it starts and gives it back once it
listens (hud.cli.serving), by the fast path and through click alike."""

from __future__ import annotations

import gc
import json
import time
from pathlib import Path
from typing import Any

import pytest

PROBE_ENV = '''
import gc
import json

from hud import Environment

env = Environment(name="gc-probe", concurrency=8)
AT_INIT = {}


@env.initialize
def _init() -> None:
    AT_INIT["threshold"] = gc.get_threshold()[0]
    {own}


@env.template()
async def probe():
    answer = yield json.dumps({"init": AT_INIT["threshold"], "now": gc.get_threshold(),
                               "frozen": gc.get_freeze_count(), "enabled": gc.isenabled()})
    yield 1.0
'''


def _probe(daemon: Any) -> dict[str, Any]:
    """What the daemon's collector looks like now (a task started and cancelled)."""
    done = daemon.hud("task", "start", "probe", "--json")
    assert done.returncode == 0, done.stderr
    frame = json.loads(done.stdout)
    assert daemon.hud("task", "cancel", "--session", frame["session_id"]).returncode == 0
    return dict(json.loads(frame["prompt"]))


@pytest.mark.parametrize("extra", [[], ["--session-ttl", "600"]], ids=["fast path", "click"])
def test_collection_paused_during_start_and_restored_after(extra: list[str], tmp_path: Path,
                                                           start_daemon: Any) -> None:
    """While the environment loads, no automatic collection (threshold 0); once the
    daemon listens the thresholds are the interpreter's own again, collection enabled,
    start-up objects frozen; later they rejoin the collector (nothing frozen)."""
    (tmp_path / "env.py").write_text(PROBE_ENV.replace("{own}", "pass"))
    daemon = start_daemon(str(tmp_path / "env.py"), *extra)
    seen = _probe(daemon)
    assert seen["init"] == 0
    assert tuple(seen["now"]) == gc.get_threshold() and seen["enabled"] is True
    assert seen["frozen"] > 0
    deadline = time.monotonic() + 60
    while _probe(daemon)["frozen"] and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _probe(daemon)["frozen"] == 0


def test_an_environment_that_sets_thresholds_keeps_them(tmp_path: Path,
                                                       start_daemon: Any) -> None:
    """An environment that sets its own thresholds while loading is not overridden."""
    (tmp_path / "env.py").write_text(PROBE_ENV.replace("{own}", "gc.set_threshold(1234, 5, 6)"))
    seen = _probe(start_daemon(str(tmp_path / "env.py")))
    assert tuple(seen["now"]) == (1234, 5, 6)
