"""Session methods in-process: one rollout at a time, and the capability hooks around a task."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hud import Environment, wire
from hud.capability import Capability
from hud.messages import Binding
from hud.serve.connections import ControlServer
from tests.conftest import InProcess, RawClient


async def _wait_parked(inproc: InProcess, count: int) -> None:
    for _ in range(300):
        if len(inproc.server.sessions.parked()) == count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"expected {count} parked sessions")


async def test_a_second_task_in_one_container_is_refused(inproc: InProcess,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """With concurrency 1, a start while another session's task is in progress is -32600
    naming that task and the ways out; once it is graded, the start works."""
    monkeypatch.setattr(inproc.server.env, "concurrency", 1)
    first = await inproc.client()
    session_id = (await first.result("hello"))["session_id"]
    await first.result("tasks.start", {"id": "count_letter"})
    second = await inproc.client()
    reply = await second.request("tasks.start", {"id": "add", "args": {"a": 1}})
    error = reply["error"]
    assert error["code"] == wire.INVALID_REQUEST and error["data"] == {"sessions": [session_id]}
    assert f"runs 1 task at a time and 1 is in progress: {session_id} (count_letter" in error["message"]
    assert "fresh container" in error["message"] and "Environment(concurrency=N)" in error["message"]
    assert await first.result("tasks.grade", {"answer": "3"}) == {"score": 1.0}
    assert (await second.result("tasks.start", {"id": "add", "args": {"a": 1}}))["prompt"]


async def test_parked_sessions_count(inproc: InProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    """A parked task holds its slot: a new start is refused until it is graded."""
    monkeypatch.setattr(inproc.server.env, "concurrency", 1)
    first = await inproc.client()
    await first.result("tasks.start", {"id": "count_letter"})
    await first.close()
    await _wait_parked(inproc, 1)
    client = await inproc.client()
    reply = await client.request("tasks.start", {"id": "count_letter"})
    assert "parked" in reply["error"]["message"]
    assert await client.result("tasks.grade", {"answer": "3"}) == {"score": 1.0}
    assert (await client.result("tasks.start", {"id": "count_letter"}))["prompt"]


async def test_declared_concurrency_allows_that_many(inproc: InProcess,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Environment(concurrency=2): two tasks run at once, a third is refused."""
    monkeypatch.setattr(inproc.server.env, "concurrency", 2)
    clients = [await inproc.client() for _ in range(3)]
    for client in clients[:2]:
        await client.result("tasks.start", {"id": "count_letter"})
    reply = await clients[2].request("tasks.start", {"id": "count_letter"})
    assert "runs 2 tasks at a time and 2 are in progress" in reply["error"]["message"]
    for client in clients[:2]:
        assert await client.result("tasks.grade", {"answer": "3"}) == {"score": 1.0}


async def test_a_failed_start_frees_its_slot(inproc: InProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    """A template that raises in setup does not keep the container busy."""
    monkeypatch.setattr(inproc.server.env, "concurrency", 1)
    client = await inproc.client()
    assert (await client.request("tasks.start", {"id": "raises_in_setup"}))["error"]
    assert (await client.result("tasks.start", {"id": "count_letter"}))["prompt"]


class Recorder(Capability):
    """A capability that records its hooks (and can fail before a start)."""

    def __init__(self, name: str, protocol: str, events: list[str]) -> None:
        self.name, self.protocol, self.events = name, protocol, events
        self.fail: BaseException | None = None

    async def start(self) -> Binding:
        return Binding(name=self.name, protocol=self.protocol, url="tcp://127.0.0.1:9")

    async def stop(self) -> None:
        return None

    async def before_start(self) -> None:
        self.events.append(f"{self.name}.before_start")
        if self.fail is not None:
            raise self.fail

    async def task_ended(self) -> None:
        self.events.append(f"{self.name}.task_ended")


class Hooked:
    def __init__(self, client: RawClient, events: list[str], tools: Recorder) -> None:
        self.client, self.events, self.tools = client, events, tools


@pytest.fixture
async def hooked(short_dir: Path) -> AsyncIterator[Hooked]:
    events: list[str] = []
    env = Environment(name="hooked")
    tools = env.add_capability(Recorder("tools", "mcp/2025-11-25", events))
    env.add_capability(Recorder("shell", "ssh/2", events))  # registered last, swept first

    @env.template()
    async def task():
        events.append("setup")
        answer = yield "p"
        yield 1.0 if answer == "ok" else 0.0

    server = ControlServer(env)
    for capability in env.capabilities.values():
        server.bindings[capability.name] = await capability.start()
    listener = await asyncio.start_unix_server(server.handle, path=str(short_dir / "h.sock"))
    reader, writer = await asyncio.open_unix_connection(str(short_dir / "h.sock"))
    yield Hooked(RawClient(reader, writer), events, tools)  # type: ignore[arg-type]
    listener.close()
    await server.cancel_all()


async def test_before_start_runs_for_every_capability_before_setup(hooked: Hooked) -> None:
    """Each capability's before_start runs, the ssh one first, before the template's setup."""
    await hooked.client.result("tasks.start", {"id": "task"})
    assert hooked.events == ["shell.before_start", "tools.before_start", "setup"]
    await hooked.client.result("tasks.grade", {"answer": "ok"})
    assert hooked.events[3:] == ["shell.task_ended", "tools.task_ended"]


@pytest.mark.parametrize("failure", [OSError("sweep failed"), SystemExit(1)])
async def test_a_failing_before_start_refuses_the_start(hooked: Hooked, failure: BaseException) -> None:
    """A capability that cannot prepare refuses the start: setup never runs, nothing is in
    progress, and the next start works once it recovers."""
    hooked.tools.fail = failure
    reply = await hooked.client.request("tasks.start", {"id": "task"})
    assert reply["error"]["code"] == wire.CAPABILITY_ERROR
    assert "task 'task' was not started: capability 'tools' failed to prepare" in reply["error"]["message"]
    assert "setup" not in hooked.events
    refused = await hooked.client.request("tasks.grade", {"answer": "ok"})
    assert "no task in progress" in refused["error"]["message"]
    hooked.tools.fail = None
    await hooked.client.result("tasks.start", {"id": "task"})
    assert hooked.events[-1] == "setup"
