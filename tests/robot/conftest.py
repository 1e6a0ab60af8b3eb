"""Robot fixtures: a real Reacher-v5 capability on loopback and clients connected to it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest

if TYPE_CHECKING:
    from hud.robot import RobotCapability, RobotClient

TEMPLATE = Path(__file__).resolve().parents[2] / "templates" / "robot" / "env.py"
Connect = Callable[..., Awaitable["RobotClient"]]


def _robot_extra_error() -> str | None:
    """Why the robot extra cannot be imported here, or None when it can."""
    try:
        import gymnasium  # noqa: F401
        import mujoco  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - a missing extra, or a MUJOCO_GL that cannot load
        return (f"the robot extra cannot be imported ({type(exc).__name__}: {exc}); "
                f"pip install -e .[robot], and unset MUJOCO_GL or install its GL library")
    return None


ROBOT_EXTRA_ERROR = _robot_extra_error()
if ROBOT_EXTRA_ERROR is not None:
    # only test_exports collects; its test_the_robot_extra_imports skips with the reason
    collect_ignore_glob = [p.name for p in Path(__file__).parent.glob("test_*.py")
                           if p.name != "test_exports.py"]


@pytest.fixture
def runs_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Eval tests write their traces to their own store."""
    path = tmp_path / "runs"
    monkeypatch.setenv("HUD_RUNS_DIR", str(path))
    return path


@pytest.fixture
async def reacher() -> AsyncIterator[RobotCapability]:
    """A started Reacher-v5 capability with two slots and a short slot wait."""
    from hud.robot import RobotCapability

    cap = RobotCapability.gym("Reacher-v5", slots=2)
    cap.slot_timeout = 5.0
    await cap.start()
    yield cap
    await cap.stop()


@pytest.fixture
async def connect(reacher: RobotCapability) -> AsyncIterator[Connect]:
    """Open clients to `reacher` over loopback TCP; all are closed afterwards."""
    from hud.robot import RobotClient

    clients: list[RobotClient] = []

    async def open_client(cap: RobotCapability | None = None, **kwargs: Any) -> RobotClient:
        binding = (cap or reacher).binding
        assert binding is not None, "start the capability first"
        url = urlsplit(binding.url)
        assert url.hostname is not None and url.port is not None
        client = await RobotClient.connect_tcp(url.hostname, url.port, timeout=10.0, **kwargs)
        clients.append(client)
        return client

    yield open_client
    for client in clients:
        await client.close()
