"""Template code against a real `hud serve`: it cannot kill, freeze or silence the daemon."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from hud.wire import INVALID_PARAMS, PARSE_ERROR, TASK_ERROR
from tests.conftest import ENVS, RawClient


class Wire:
    """Connections to one real daemon's control socket."""

    def __init__(self, daemon) -> None:  # type: ignore[no-untyped-def]
        self.daemon = daemon

    async def client(self) -> RawClient:
        reader, writer = await asyncio.open_unix_connection(str(self.daemon.socket_path),
                                                            limit=1 << 24)
        return RawClient(reader, writer)

    async def assert_serving(self) -> None:
        """The daemon is alive and a fresh session starts and grades a task."""
        assert self.daemon.proc.poll() is None, "hud serve died"
        client = await self.client()
        assert "strawberry" in (await client.result("tasks.start", {"id": "count_letter"}))["prompt"]
        assert await client.result("tasks.grade", {"answer": "3"}) == {"score": 1.0}
        await client.close()


@pytest.fixture
def wire(start_daemon) -> Wire:  # type: ignore[no-untyped-def]
    return Wire(start_daemon(str(ENVS / "faults.py")))


@pytest.mark.parametrize(("template", "raised"), [
    ("exits_in_setup", "SystemExit: 3"),
    ("interrupts_in_setup", "KeyboardInterrupt"),
    ("escapes_in_setup", "Escape: out of here"),
    ("generator_exit_in_setup", "GeneratorExit"),
    ("cancels_itself_in_setup", "CancelledError"),
])
async def test_base_exceptions_in_setup_are_task_errors(wire: Wire, template: str, raised: str) -> None:
    """SystemExit, KeyboardInterrupt & co. in setup: -32000 naming task, exception and
    phase; the daemon lives on and serves the next session."""
    client = await wire.client()
    error = (await client.request("tasks.start", {"id": template}))["error"]
    assert error["code"] == TASK_ERROR
    assert error["message"].startswith(f"task {template!r} raised {raised} during setup")
    assert "template code must not try to stop the daemon" in error["message"]
    await wire.assert_serving()


@pytest.mark.parametrize(("template", "raised"), [
    ("exits_while_grading", "SystemExit: 0"),
    ("interrupts_while_grading", "KeyboardInterrupt"),
])
async def test_base_exceptions_while_grading_are_task_errors(wire: Wire, template: str,
                                                             raised: str) -> None:
    """A grader that exits or raises KeyboardInterrupt is an error frame, not a dead daemon."""
    client = await wire.client()
    await client.result("tasks.start", {"id": template})
    error = (await client.request("tasks.grade", {"answer": "x"}))["error"]
    assert error["message"].startswith(f"task {template!r} raised {raised} while grading")
    await wire.assert_serving()


async def test_exit_in_cleanup_still_delivers_the_score(wire: Wire) -> None:
    """sys.exit() in a template's finally: the reward stands, the daemon logs it and lives."""
    client = await wire.client()
    await client.result("tasks.start", {"id": "exits_in_cleanup"})
    assert await client.result("tasks.grade", {"answer": "x"}) == {"score": 1.0}
    await wire.assert_serving()
    log = wire.daemon.log_path.read_text()
    assert "task 'exits_in_cleanup' raised SystemExit: 1 in its cleanup code" in log


async def test_exit_in_a_reference_solution_is_a_task_error(wire: Wire) -> None:
    """tasks.solve whose solution raises SystemExit answers -32000."""
    client = await wire.client()
    await client.result("tasks.start", {"id": "exits_in_solution"})
    error = (await client.request("tasks.solve"))["error"]
    assert error["message"].startswith(
        "the reference solution of task 'exits_in_solution' raised SystemExit: 2")
    await wire.assert_serving()


@pytest.mark.parametrize(("method", "template", "words"), [
    ("tasks.start", "hangs_in_setup", "did not finish during setup within its setup_timeout of 0.3s"),
    ("tasks.grade", "hangs_while_grading",
     "did not finish while grading within its grade_timeout of 0.3s"),
])
async def test_an_async_hang_hits_its_time_limit(wire: Wire, method: str, template: str,
                                                 words: str) -> None:
    """A template awaiting forever fails its call with the limit to raise."""
    client = await wire.client()
    params = {"id": template}
    if method == "tasks.grade":
        await client.result("tasks.start", params)
        params = {"answer": "x"}
    error = (await client.request(method, params))["error"]
    assert error["code"] == TASK_ERROR and words in error["message"]
    assert "@env.template(" in error["message"]
    await wire.assert_serving()


@pytest.mark.parametrize(("template", "phase"), [
    ("sleeps_in_setup", "during setup"),
    ("spins_in_setup", "during setup"),
    ("swallows_the_interrupt", "during setup"),
    ("sleeps_while_grading", "while grading"),
])
async def test_a_blocking_template_fails_only_its_own_call(wire: Wire, template: str,
                                                           phase: str) -> None:
    """time.sleep / a busy loop in template code blocks the event loop: the stall guard
    interrupts it, its call fails saying so, and a client waiting meanwhile is answered."""
    blocked, bystander = await wire.client(), await wire.client()
    await bystander.result("hello")
    if phase == "while grading":
        await blocked.result("tasks.start", {"id": template})
        call = blocked.request("tasks.grade", {"answer": "x"})
    else:
        call = blocked.request("tasks.start", {"id": template})
    pending = asyncio.ensure_future(call)
    await asyncio.sleep(0.1)  # let the blocking call reach the daemon first
    listed = await bystander.result("tasks.list")
    assert "count_letter" in [t["slug"] for t in listed["tasks"]]
    error = (await pending)["error"]
    assert error["code"] == TASK_ERROR
    assert error["message"].startswith(
        f"task {template!r} blocked the daemon's event loop for more than 0.5s {phase}")
    assert "asyncio.to_thread" in error["message"]
    await wire.assert_serving()


async def test_unencodable_reward_extras_still_deliver_the_score(wire: Wire) -> None:
    """Objects, sets, NaN, bytes, a cycle, a huge int and odd keys in the reward: the
    score arrives, the extras as their JSON-safe forms."""
    client = await wire.client()
    await client.result("tasks.start", {"id": "unencodable_reward"})
    reward = await client.result("tasks.grade", {"answer": "x"})
    assert reward["score"] == 1.0
    assert reward["object"].startswith("<object object at")
    assert (reward["nan"], reward["inf"], reward["set"]) == ("NaN", "-Infinity", [7])
    assert reward["lone"] == "\ud800" and reward["cycle"] == ["<circular reference>"]
    assert reward["huge"].startswith("<int of") and reward["bytes"] == "b'\\xff'"
    assert reward["keys"] == {"(1, 2)": "tuple key", "null": "none key"}


async def test_unencodable_prompt_extras_still_deliver_the_prompt(wire: Wire) -> None:
    """A prompt dict with an object and NaN: the prompt arrives and the session goes on."""
    client = await wire.client()
    started = await client.result("tasks.start", {"id": "unencodable_prompt"})
    assert started["prompt"] == "what now?" and started["ratio"] == "NaN"
    assert await client.result("tasks.grade", {"answer": "x"}) == {"score": 1.0}


async def test_a_lone_surrogate_id_is_answered_with_it(wire: Wire) -> None:
    """A string id JSON can carry but UTF-8 cannot: the reply carries the same id."""
    client = await wire.client()
    await client.send_raw(b'{"jsonrpc":"2.0","id":"\\ud83d","method":"tasks.list"}\n')
    reply = await client.recv()
    assert reply["id"] == "\ud83d" and "result" in reply
    await client.send_raw(b'{"jsonrpc":"2.0","id":2,"method":"tasks.start","params":'
                          b'{"id":"count_letter","args":{"word":"\\udc00"}}}\n')
    error = (await client.recv())["error"]
    assert error["code"] == INVALID_PARAMS and "not valid Unicode" in error["message"]
    await wire.assert_serving()


async def test_deep_nesting_is_a_parse_error(wire: Wire) -> None:
    """JSON nested beyond the parser's depth is -32700 and the connection keeps serving."""
    client = await wire.client()
    await client.send_raw(b"[" * 200_000 + b"\n")
    error = (await client.recv())["error"]
    assert error["code"] == PARSE_ERROR and "nested too deeply" in error["message"]
    assert (await client.result("tasks.list"))["tasks"]


def test_the_daemon_lowers_its_oom_score_when_it_may(start_daemon) -> None:  # type: ignore[no-untyped-def]
    """As root with CAP_SYS_RESOURCE the daemon's oom_score_adj is -900; without the
    capability it says so in its log and serves anyway."""
    import os

    daemon = start_daemon(str(ENVS / "letters.py"))
    value = int(Path(f"/proc/{daemon.proc.pid}/oom_score_adj").read_text())
    caps = int(next(line.split()[1] for line in Path("/proc/self/status").read_text().splitlines()
                    if line.startswith("CapEff:")), 16)
    if os.geteuid() != 0:
        assert value == 0
    elif caps & (1 << 24):  # CAP_SYS_RESOURCE
        assert value == -900
    else:
        assert value == 0 and "could not lower the daemon's OOM score" in daemon.log_path.read_text()
    assert json.loads(daemon.hud("task", "list", "--json").stdout)["tasks"]
