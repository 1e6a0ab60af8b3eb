"""The control server in-process: protocol, sessions, parking, and every kind of bad input.

Each bad-input test ends with a normal start/grade on the same server, which must work.
"""

from __future__ import annotations

import asyncio
import json
import sys

import pytest

from hud import messages as p
from hud import wire
from tests.conftest import InProcess, RawClient


async def assert_still_serving(inproc: InProcess) -> None:
    client = await inproc.client()
    started = await client.result("tasks.start", {"id": "count_letter"})
    assert "strawberry" in started["prompt"]
    graded = await client.result("tasks.grade", {"answer": "3"})
    assert graded == {"score": 1.0}


async def test_hello_returns_the_manifest_with_a_session_id(inproc: InProcess) -> None:
    """hello answers protocol version, env, bindings, tasks and a session id."""
    client = await inproc.client()
    manifest = await client.result("hello")
    assert manifest["protocol"] == p.PROTOCOL_VERSION
    assert manifest["env"] == {"name": "faults", "version": "1.2.3", "layer": "base", "concurrency": 64}
    assert manifest["session_id"]
    assert "count_letter" in [t["slug"] for t in manifest["tasks"]]
    assert "add" in [t["id"] for t in manifest["templates"]]


async def test_start_then_grade_on_one_connection(inproc: InProcess) -> None:
    """The first yield is the prompt; the answer is graded by the second yield."""
    client = await inproc.client()
    started = await client.result("tasks.start", {"id": "count_letter",
                                                   "args": {"word": "kiwi", "letter": "i"}})
    assert started == {"prompt": "How many 'i's are in 'kiwi'? Reply with just the number."}
    assert await client.result("tasks.grade", {"answer": "2"}) == {"score": 1.0}


async def test_wrong_answer_is_a_reward_not_an_error(inproc: InProcess) -> None:
    """A wrong answer grades 0.0."""
    client = await inproc.client()
    await client.result("tasks.start", {"id": "count_letter"})
    assert await client.result("tasks.grade", {"answer": "7"}) == {"score": 0.0}


async def test_dict_prompt_and_reward_keep_extra_keys(inproc: InProcess) -> None:
    """Extra keys in the prompt dict and the reward dict reach the client."""
    client = await inproc.client()
    started = await client.result("tasks.start", {"id": "add", "args": {"a": "40", "b": 2}})
    assert started == {"prompt": "What is 40 + 2?", "max_tokens": 5}
    graded = await client.result("tasks.grade", {"answer": "42"})
    assert graded == {"score": 1.0, "info": {"expected": 42}}


async def test_chat_message_prompt(inproc: InProcess) -> None:
    """A list of chat messages is a valid prompt."""
    client = await inproc.client()
    started = await client.result("tasks.start", {"id": "chat_prompt"})
    assert started["prompt"][1] == {"role": "user", "content": "hi"}


async def test_malformed_json_is_a_parse_error(inproc: InProcess) -> None:
    """A line that is not JSON gets -32700 and the connection keeps serving."""
    client = await inproc.client()
    await client.send_raw(b'{"jsonrpc": "2.0", "id": 1,,,\n')
    reply = await client.recv()
    assert reply["error"]["code"] == wire.PARSE_ERROR and "not JSON" in reply["error"]["message"]
    assert (await client.result("tasks.list"))["tasks"]
    await assert_still_serving(inproc)


async def test_non_object_frame_is_invalid_request(inproc: InProcess) -> None:
    """A JSON array is -32600 naming the type."""
    client = await inproc.client()
    await client.send_raw(b"[1, 2, 3]\n")
    reply = await client.recv()
    assert reply["error"]["code"] == wire.INVALID_REQUEST and "got list" in reply["error"]["message"]
    await assert_still_serving(inproc)


async def test_missing_jsonrpc_field_is_invalid_request(inproc: InProcess) -> None:
    """An object without jsonrpc/method is -32600 with an example of a good frame."""
    client = await inproc.client()
    await client.send_raw(b'{"id": 5, "method": "hello"}\n')
    reply = await client.recv()
    assert reply["id"] == 5 and reply["error"]["code"] == wire.INVALID_REQUEST
    assert "jsonrpc" in reply["error"]["message"]


async def test_unknown_method_lists_the_methods(inproc: InProcess) -> None:
    """-32601 names the known methods."""
    client = await inproc.client()
    reply = await client.request("tasks.explode")
    assert reply["error"]["code"] == wire.METHOD_NOT_FOUND
    assert "tasks.start" in reply["error"]["message"]
    await assert_still_serving(inproc)


async def test_unknown_task_lists_known_ones(inproc: InProcess) -> None:
    """-32602 names the unknown task and lists the real ones."""
    client = await inproc.client()
    reply = await client.request("tasks.start", {"id": "does_not_exist"})
    assert reply["error"]["code"] == wire.INVALID_PARAMS
    assert "unknown task 'does_not_exist'" in reply["error"]["message"]
    assert "count_letter" in reply["error"]["message"]
    await assert_still_serving(inproc)


async def test_bad_args_are_invalid_params(inproc: InProcess) -> None:
    """An argument that cannot be coerced is -32602 naming it."""
    client = await inproc.client()
    reply = await client.request("tasks.start", {"id": "add", "args": {"a": "many"}})
    assert reply["error"]["code"] == wire.INVALID_PARAMS
    assert "a: Input should be a valid integer" in reply["error"]["message"]
    await assert_still_serving(inproc)


async def test_missing_args_are_invalid_params(inproc: InProcess) -> None:
    """A required argument left out is -32602."""
    client = await inproc.client()
    reply = await client.request("tasks.start", {"id": "add"})
    assert reply["error"]["code"] == wire.INVALID_PARAMS and "a: Field required" in reply["error"]["message"]


async def test_missing_params_field_is_invalid_params(inproc: InProcess) -> None:
    """tasks.start without an id is -32602."""
    client = await inproc.client()
    reply = await client.request("tasks.start", {})
    assert reply["error"]["code"] == wire.INVALID_PARAMS and "id: Field required" in reply["error"]["message"]


@pytest.mark.parametrize(
    ("template", "phase", "exc"),
    [
        ("raises_in_setup", "during setup", "RuntimeError: setup exploded"),
        ("key_error_in_setup", "during setup", "KeyError: 'missing_key'"),
    ],
)
async def test_template_raising_in_setup_is_a_task_error(
    inproc: InProcess, template: str, phase: str, exc: str
) -> None:
    """-32000 names the task and the exception (a KeyError is not "unknown task")."""
    client = await inproc.client()
    reply = await client.request("tasks.start", {"id": template})
    error = reply["error"]
    assert error["code"] == wire.TASK_ERROR
    assert f"task '{template}' raised {exc} {phase}" == error["message"]
    assert "Traceback" in error["data"]["traceback"]
    await assert_still_serving(inproc)


async def test_template_raising_while_grading_is_a_task_error(inproc: InProcess) -> None:
    """A grader crash is -32000 with the task and exception, never a reward."""
    client = await inproc.client()
    await client.result("tasks.start", {"id": "raises_in_grading"})
    reply = await client.request("tasks.grade", {"answer": "x"})
    assert reply["error"]["code"] == wire.TASK_ERROR
    assert reply["error"]["message"] == ("task 'raises_in_grading' raised ValueError: "
                                         "grader broke on 'x' while grading")
    await assert_still_serving(inproc)


async def test_template_ending_without_reward_is_an_error(inproc: InProcess) -> None:
    """No second yield is an error, never a silent 0."""
    client = await inproc.client()
    await client.result("tasks.start", {"id": "no_reward"})
    reply = await client.request("tasks.grade", {"answer": "x"})
    assert reply["error"]["code"] == wire.TASK_ERROR
    assert "ended without yielding a reward" in reply["error"]["message"]
    await assert_still_serving(inproc)


async def test_non_numeric_reward_is_an_error(inproc: InProcess) -> None:
    """A string reward is rejected, naming the value."""
    client = await inproc.client()
    await client.result("tasks.start", {"id": "text_reward"})
    reply = await client.request("tasks.grade", {"answer": "x"})
    assert reply["error"]["code"] == wire.TASK_ERROR
    assert "non-numeric reward 'excellent'" in reply["error"]["message"]
    await assert_still_serving(inproc)


async def test_unusable_prompt_is_an_error(inproc: InProcess) -> None:
    """A prompt that is a number is rejected with the accepted shapes."""
    client = await inproc.client()
    reply = await client.request("tasks.start", {"id": "bad_prompt"})
    assert reply["error"]["code"] == wire.TASK_ERROR
    assert "yielded a prompt of type int" in reply["error"]["message"]
    await assert_still_serving(inproc)


async def test_grade_with_nothing_started(inproc: InProcess) -> None:
    """-32600 "no task in progress"."""
    client = await inproc.client()
    reply = await client.request("tasks.grade", {"answer": "3"})
    assert reply["error"]["code"] == wire.INVALID_REQUEST
    assert "no task in progress" in reply["error"]["message"]


async def test_second_start_in_one_session_is_refused(inproc: InProcess) -> None:
    """A session runs one task at a time: the second start says how to proceed."""
    client = await inproc.client()
    await client.result("tasks.start", {"id": "count_letter"})
    reply = await client.request("tasks.start", {"id": "add", "args": {"a": 1}})
    assert "already in progress" in reply["error"]["message"]
    assert await client.result("tasks.grade", {"answer": "3"}) == {"score": 1.0}


async def test_grade_adopts_the_only_parked_session(inproc: InProcess) -> None:
    """Start on one connection, drop it, grade from another (what `hud task` does)."""
    first = await inproc.client()
    await first.result("tasks.start", {"id": "count_letter", "args": {"word": "kiwi", "letter": "i"}})
    await first.close()
    second = await inproc.client()
    for _ in range(100):  # the server notices the drop asynchronously
        if inproc.server.sessions.parked():
            break
        await asyncio.sleep(0.01)
    assert await second.result("tasks.grade", {"answer": "2"}) == {"score": 1.0}
    assert not inproc.server.sessions.parked()


async def _park(inproc: InProcess, task_id: str, args: dict | None = None) -> str:
    client = await inproc.client()
    session_id = (await client.result("hello"))["session_id"]
    await client.result("tasks.start", {"id": task_id, "args": args or {}})
    await client.close()
    for _ in range(200):
        if any(s.id == session_id for s in inproc.server.sessions.parked()):
            return session_id
        await asyncio.sleep(0.01)
    raise AssertionError("session was not parked")


async def test_grade_with_two_parked_sessions_lists_them(inproc: InProcess) -> None:
    """Two candidates: an error naming both and how to pick; nothing is graded."""
    a = await _park(inproc, "count_letter")
    b = await _park(inproc, "count_letter")
    client = await inproc.client()
    reply = await client.request("tasks.grade", {"answer": "3", "id": "count_letter"})
    message = reply["error"]["message"]
    assert reply["error"]["code"] == wire.INVALID_REQUEST
    assert a in message and b in message and "session_id" in message
    assert len(inproc.server.sessions.parked()) == 2
    assert await client.result("tasks.grade", {"answer": "3", "session_id": b}) == {"score": 1.0}
    assert [s.id for s in inproc.server.sessions.parked()] == [a]


async def test_grade_by_task_id_picks_that_tasks_session(inproc: InProcess) -> None:
    """With `id`, only parked sessions of that task are candidates."""
    await _park(inproc, "count_letter")
    await _park(inproc, "add", {"a": 2})
    client = await inproc.client()
    assert (await client.result("tasks.grade", {"answer": "3", "id": "add"}))["score"] == 1.0


async def test_hello_with_session_id_resumes_a_parked_session(inproc: InProcess) -> None:
    """A dropped connection's session is resumed by id."""
    session_id = await _park(inproc, "count_letter")
    client = await inproc.client()
    manifest = await client.result("hello", {"session_id": session_id})
    assert manifest["session_id"] == session_id
    assert await client.result("tasks.grade", {"answer": "3"}) == {"score": 1.0}


async def test_resume_unknown_session_is_an_error(inproc: InProcess) -> None:
    """An unknown or expired session id says so, with the TTL."""
    client = await inproc.client()
    reply = await client.request("hello", {"session_id": "feedface"})
    assert reply["error"]["code"] == wire.INVALID_PARAMS
    assert "unknown session_id 'feedface'" in reply["error"]["message"]


async def test_parked_sessions_expire_after_the_ttl(inproc: InProcess) -> None:
    """Past the TTL a parked task is cancelled (its cleanup runs) and forgotten."""
    faults = sys.modules["faults"]  # loaded by file path, under its stem

    inproc.server.sessions.ttl = 0.0
    await _park(inproc, "cleanup_tracked")
    faults.EVENTS.clear()
    await asyncio.sleep(0.01)
    assert await inproc.server.expire_parked() == 1
    assert faults.EVENTS == ["cleanup"]
    client = await inproc.client()
    reply = await client.request("tasks.grade", {"answer": "x"})
    assert "no task in progress" in reply["error"]["message"]


async def test_cancel_runs_the_templates_cleanup(inproc: InProcess) -> None:
    """tasks.cancel closes the generator so its finally block runs."""
    faults = sys.modules["faults"]  # loaded by file path, under its stem

    faults.EVENTS.clear()
    client = await inproc.client()
    await client.result("tasks.start", {"id": "cleanup_tracked"})
    assert (await client.result("tasks.cancel"))["cancelled"] == "cleanup_tracked"
    assert faults.EVENTS == ["cleanup"]


async def test_megabyte_prompt_and_answer(inproc: InProcess) -> None:
    """A 1 MB prompt and a 1 MB answer go through one frame each."""
    client = await inproc.client()
    started = await client.result("tasks.start", {"id": "echo_size", "args": {"size": 1_000_000}})
    assert len(started["prompt"]) == 1_000_000
    assert await client.result("tasks.grade", {"answer": "y" * 1_000_000}) == {"score": 1.0}


async def test_oversize_frame_is_refused_and_the_connection_survives(inproc: InProcess) -> None:
    """A frame over the limit gets an error; the next frame on the same connection works."""
    client = await inproc.client()
    await client.send_raw(b'{"jsonrpc":"2.0","id":1,"method":"hello","params":{"x":"'
                          + b"a" * (9 * 1024 * 1024) + b'"}}\n')
    reply = await client.recv()
    assert reply["error"]["code"] == wire.INVALID_REQUEST
    assert "larger than the limit" in reply["error"]["message"]
    assert (await client.result("tasks.list"))["tasks"]


async def test_client_disconnecting_mid_call_loses_nothing(inproc: InProcess) -> None:
    """A client gone during a slow setup: the task still starts, parks, and grades."""
    client = await inproc.client()
    frame = {"jsonrpc": "2.0", "id": 1, "method": "tasks.start",
             "params": {"id": "slow_setup", "args": {"seconds": 0.3}}}
    await client.send_raw(json.dumps(frame).encode() + b"\n")
    await client.close()
    for _ in range(300):
        if inproc.server.sessions.parked():
            break
        await asyncio.sleep(0.01)
    other = await inproc.client()
    assert await other.result("tasks.grade", {"answer": "ok", "id": "slow_setup"}) == {"score": 1.0}
    await assert_still_serving(inproc)


async def test_notifications_get_no_reply(inproc: InProcess) -> None:
    """A request without id is executed but not answered (JSON-RPC notification)."""
    client = await inproc.client()
    await client.send_raw(b'{"jsonrpc":"2.0","method":"tasks.list"}\n')
    assert (await client.request("tasks.list"))["id"] == 1


async def test_tunnel_open_to_unknown_capability_lists_known(inproc: InProcess) -> None:
    """tunnel.open to a missing capability is an error listing the ones there are."""
    client = await inproc.client()
    reply = await client.request("tunnel.open", {"capability": "shell"})
    assert reply["error"]["code"] == wire.INVALID_PARAMS
    assert reply["error"]["message"] == "unknown capability 'shell'; this environment has: none"


async def test_tunnel_open_after_the_first_frame_is_refused(inproc: InProcess) -> None:
    """A session connection cannot turn into a tunnel."""
    client = await inproc.client()
    await client.result("tasks.list")
    reply = await client.request("tunnel.open", {"capability": "x"})
    assert "must be the first frame" in reply["error"]["message"]


async def test_bye_cancels_the_task_in_progress(inproc: InProcess) -> None:
    """bye ends the session: nothing is parked."""
    client = await inproc.client()
    await client.result("tasks.start", {"id": "count_letter"})
    assert await client.result("bye") == {}
    assert not inproc.server.sessions.parked()


async def test_concurrent_sessions_are_independent(inproc: InProcess) -> None:
    """Sixteen connections start and grade at once, each with its own task."""

    async def one(i: int) -> float:
        client: RawClient = await inproc.client()
        await client.result("tasks.start", {"id": "add", "args": {"a": i}})
        return (await client.result("tasks.grade", {"answer": str(i + 1)}))["score"]

    assert await asyncio.gather(*(one(i) for i in range(16))) == [1.0] * 16
