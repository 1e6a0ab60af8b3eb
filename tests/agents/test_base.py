"""The shared tool loop: bad tool calls, slow tools, refusals, images, concurrent rollouts.

Driven through real local rollouts with the official SDKs against fake provider APIs.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from typing import Any

import pytest

from hud.agents.tools import Tool, ToolResult
from hud.eval import Taskset
from tests.agents.providers import Anthropic, Chat, FakeAPI, Responses, serve
from tests.agents.test_providers import AddTool, add_numbers, env

pytestmark = pytest.mark.timeout(60)

CHAT, CLAUDE, RESPONSES = Chat("chat"), Anthropic("anthropic"), Responses("responses")
PNG = b"\x89PNG\r\n\x1a\nfake"


@pytest.fixture
def api() -> Iterator[FakeAPI]:
    yield from serve()


async def rollout(agent: Any, **options: Any) -> Any:
    job = await Taskset([add_numbers()], env=env).run(agent, runtime="local", **options)
    return job.runs[0]


async def test_unknown_tool_is_an_error_result_listing_the_tools(api: FakeAPI) -> None:
    """A call to a tool that does not exist tells the model which tools do."""
    api.script = [(200, CHAT.tool_call("c1", "multiply", {})), (200, CHAT.answer("5"))]
    await rollout(CHAT.agent(api, tools=[AddTool().tool]))
    assert CHAT.tool_results(api.requests[1]) == [
        {"id": "c1", "text": "no tool 'multiply'; the tools are: add", "is_error": True}]


async def test_arguments_that_are_not_an_object_are_an_error_result(api: FakeAPI) -> None:
    """Arguments that do not parse as a JSON object are sent back as an error."""
    reply = CHAT.tool_call("c1", "add", {})
    reply["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] = "{not json"
    api.script = [(200, reply), (200, CHAT.answer("5"))]
    add = AddTool()
    await rollout(CHAT.agent(api, tools=[add.tool]))
    assert add.calls == []
    assert CHAT.tool_results(api.requests[1]) == [
        {"id": "c1", "text": "the arguments of add must be a JSON object, got: {not json", "is_error": True}]


async def test_slow_tool_times_out_as_an_error_result(api: FakeAPI) -> None:
    """A tool past its timeout is abandoned and the model is told; the rollout goes on."""
    async def slow(args: dict[str, Any]) -> ToolResult:
        await asyncio.sleep(30)
        return ToolResult("never")

    api.script = [(200, CHAT.tool_call("c1", "add", {})), (200, CHAT.answer("5"))]
    run = await rollout(CHAT.agent(api, tools=[Tool("add", "Add.", {"type": "object"}, slow, timeout=0.2)]))
    assert run.reward == 1.0
    assert CHAT.tool_results(api.requests[1]) == [
        {"id": "c1", "text": "add timed out after 0.2s", "is_error": True}]


async def test_long_tool_output_is_truncated(api: FakeAPI) -> None:
    """Tool output past the limit is cut before the model sees it."""
    async def chatty(args: dict[str, Any]) -> ToolResult:
        return ToolResult("x" * 100_000)

    api.script = [(200, CHAT.tool_call("c1", "add", {})), (200, CHAT.answer("5"))]
    await rollout(CHAT.agent(api, tools=[Tool("add", "Add.", {"type": "object"}, chatty)]))
    text = CHAT.tool_results(api.requests[1])[0]["text"]
    assert len(text) < 21_000
    assert "characters cut" in text


async def test_refusal_sets_the_stop_reason(api: FakeAPI) -> None:
    """A model that refuses ends the rollout with stop_reason 'refused'."""
    reply = CLAUDE.answer("I can't help with that.")
    reply["stop_reason"] = "refusal"
    api.script = [(200, reply)]
    run = await rollout(CLAUDE.agent(api, tools=[]))
    assert (run.status, run.stop_reason, run.reward) == ("completed", "refused", 0.0)


async def test_images_go_back_as_image_blocks(api: FakeAPI) -> None:
    """A tool's PNG screenshots reach Claude as base64 image blocks in the tool result."""
    async def shot(args: dict[str, Any]) -> ToolResult:
        return ToolResult("screenshot", images=[PNG])

    api.script = [(200, CLAUDE.tool_call("t1", "add", {})), (200, CLAUDE.answer("5"))]
    await rollout(CLAUDE.agent(api, tools=[Tool("add", "Add.", {"type": "object"}, shot)]))
    block = api.requests[1]["messages"][-1]["content"][0]
    assert block["content"][1] == {"type": "image", "source": {
        "type": "base64", "media_type": "image/png", "data": base64.b64encode(PNG).decode()}}


async def test_assistant_turns_are_echoed_back_in_the_history(api: FakeAPI) -> None:
    """The Responses history carries the model's function_call item before its output."""
    api.script = [(200, RESPONSES.tool_call("call_1", "add", {"a": 2, "b": 3})),
                  (200, RESPONSES.answer("5"))]
    await rollout(RESPONSES.agent(api, tools=[AddTool().tool]))
    kinds = [item.get("type") or item.get("role") for item in api.requests[1]["input"]]
    assert kinds == ["user", "function_call", "function_call_output"]


async def test_one_agent_serves_a_concurrent_group(api: FakeAPI) -> None:
    """One agent runs a group of rollouts at once, each with its own history."""
    api.script = [(200, CHAT.answer("5"))]
    job = await Taskset([add_numbers()], env=env).run(CHAT.agent(api, tools=[]), group=4,
                                                      runtime="local")
    assert [r.reward for r in job.runs] == [1.0] * 4
    assert all(len(r["messages"]) == 2 for r in api.requests)  # system + user, no cross-talk


async def test_unknown_tool_names_only_the_offered_tools() -> None:
    """A conversation's internal route (e.g. Gemini's action sequence) is not offered to the
    model, so the unknown-tool error does not name it."""
    from hud.agents.base import ToolCall, execute

    async def never(args: dict[str, Any]) -> ToolResult:
        raise AssertionError("not to be called")

    tools = {name: Tool(name, "x", {"type": "object"}, never) for name in ("add", "_route")}
    result = await execute(tools, ToolCall(id="c1", name="mul", arguments={}, raw="{}"),
                           offered=["add"])
    assert (result.text, result.is_error) == ("no tool 'mul'; the tools are: add", True)
