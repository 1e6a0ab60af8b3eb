"""A daemon that shuts down closes its capabilities (`Capability.close`), which removes
what a capability keeps across restarts: the browser's profile and logs, the desktop's
logs. It used to only stop them, and every in-process daemon (`hud eval` with the local
placement) left a `/tmp/hud-browser-*` or `/tmp/hud-desktop-*` directory behind."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from hud import Environment
from hud.capability import Capability
from hud.eval.placement import LocalPlacement
from hud.messages import Binding


class KeepsADir(Capability):
    """Like the browser: a directory made at the first start, kept across restarts,
    removed by close()."""

    name = "keeper"
    protocol = "keeper/1"

    def __init__(self) -> None:
        self.dir: Path | None = None
        self.calls: list[str] = []

    async def start(self) -> Binding:
        self.dir = self.dir or Path(tempfile.mkdtemp(prefix="hud-test-keeper-"))
        self.calls.append("start")
        return Binding(name=self.name, protocol=self.protocol, url="tcp://127.0.0.1:1")

    async def stop(self) -> None:
        self.calls.append("stop")

    async def close(self) -> None:
        await self.stop()
        self.calls.append("close")
        if self.dir is not None:
            shutil.rmtree(self.dir)


class StopsOnly(Capability):
    """A capability without a close() of its own: shutting down still stops it."""

    name = "plain"
    protocol = "plain/1"

    def __init__(self) -> None:
        self.stopped = 0

    async def start(self) -> Binding:
        return Binding(name=self.name, protocol=self.protocol, url="tcp://127.0.0.1:2")

    async def stop(self) -> None:
        self.stopped += 1


async def test_shutting_down_closes_every_capability() -> None:
    env = Environment(name="closing")
    keeper = env.add_capability(KeepsADir())
    plain = env.add_capability(StopsOnly())

    @env.template()
    async def noop():  # type: ignore[no-untyped-def]
        yield "p"
        yield 1.0

    placement = LocalPlacement(env)
    lease = await placement.open("job", "run")
    await lease.close()
    kept = keeper.dir
    assert kept is not None and kept.is_dir()
    await placement.shutdown()
    assert keeper.calls[-2:] == ["stop", "close"]
    assert not kept.exists()
    assert plain.stopped == 1
