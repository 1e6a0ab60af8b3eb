"""Provider harnesses against fake provider APIs, driven through real local rollouts.

Each test runs for every wire format (Anthropic Messages, OpenAI Responses, Chat
Completions, Gemini), plain and streamed, with the official SDK talking HTTP to a
scripted local server.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from hud import Environment
from hud.agents.tools import Tool, ToolResult
from hud.eval import Taskset
from tests.agents.providers import WIRES, Chat, FakeAPI, Wire, serve

pytestmark = pytest.mark.timeout(60)

env = Environment(name="agents-sum")


@env.template()
async def add_numbers(a: int = 2, b: int = 3):
    answer = yield f"What is {a} + {b}? Use the add tool, then reply with just the number."
    yield 1.0 if answer is not None and answer.strip() == str(a + b) else 0.0


class AddTool:
    """A test tool that adds two numbers and remembers its calls."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.tool = Tool("add", "Add two integers.", {
            "type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
            "required": ["a", "b"]}, self.run, timeout=5)

    async def run(self, args: dict[str, Any]) -> ToolResult:
        self.calls.append(args)
        return ToolResult(str(args["a"] + args["b"]))


@pytest.fixture
def api() -> Iterator[FakeAPI]:
    yield from serve()


@pytest.fixture(params=[w for wire in WIRES for w in (wire, wire.streamed())],
                ids=lambda w: w.name)
def wire(request: pytest.FixtureRequest) -> Wire:
    """Each provider's wire, its agents sending plain requests, then streaming ones."""
    return request.param


async def rollout(agent: Any, **options: Any) -> Any:
    job = await Taskset([add_numbers()], env=env).run(agent, runtime="local", **options)
    return job.runs[0]


async def test_tool_call_runs_with_the_models_arguments(api: FakeAPI, wire: Wire) -> None:
    """The tool is run with the arguments the model sent."""
    add = AddTool()
    api.script = [(200, wire.tool_call("call_1", "add", {"a": 2, "b": 3})), (200, wire.answer("5"))]
    await rollout(wire.agent(api, tools=[add.tool]))
    assert add.calls == [{"a": 2, "b": 3}]


async def test_tool_result_goes_back_in_the_providers_format(api: FakeAPI, wire: Wire) -> None:
    """The next request carries the tool's output, answering the call by its id."""
    add = AddTool()
    api.script = [(200, wire.tool_call("call_1", "add", {"a": 2, "b": 3})), (200, wire.answer("5"))]
    await rollout(wire.agent(api, tools=[add.tool]))
    assert len(api.requests) == 2
    assert wire.tool_results(api.requests[1]) == [{"id": "call_1", "text": "5", "is_error": False}]


async def test_requests_stream_when_the_agent_does(api: FakeAPI, wire: Wire) -> None:
    """An agent made with stream=True sends streaming requests (and only then): the body's
    `stream: true`, or Gemini's :streamGenerateContent path."""
    api.script = [(200, wire.tool_call("call_1", "add", {"a": 2, "b": 3})), (200, wire.answer("5"))]
    run = await rollout(wire.agent(api, tools=[AddTool().tool]))
    assert run.reward == 1.0, run.error
    assert api.streamed == [wire.stream, wire.stream]


async def test_tools_are_declared_to_the_model(api: FakeAPI, wire: Wire) -> None:
    """Every request declares the agent's tools."""
    api.script = [(200, wire.answer("5"))]
    await rollout(wire.agent(api, tools=[AddTool().tool]))
    assert wire.tool_names(api.requests[0]) == ["add"]


async def test_right_answer_grades_one(api: FakeAPI, wire: Wire) -> None:
    """The final text is the answer: the rollout completes with reward 1.0."""
    api.script = [(200, wire.tool_call("call_1", "add", {"a": 2, "b": 3})), (200, wire.answer("5"))]
    run = await rollout(wire.agent(api, tools=[AddTool().tool]))
    assert (run.status, run.answer, run.reward, run.stop_reason) == ("completed", "5", 1.0, "answered")


async def test_turns_usage_and_tool_results_are_traced(api: FakeAPI, wire: Wire) -> None:
    """Each model turn is traced with its tool calls and token usage, each tool result too."""
    api.script = [(200, wire.tool_call("call_1", "add", {"a": 2, "b": 3})), (200, wire.answer("5"))]
    run = await rollout(wire.agent(api, tools=[AddTool().tool]))
    turns = [e for e in run.trace if e["type"] == "model_turn"]
    results = [e for e in run.trace if e["type"] == "tool_result"]
    assert [t["usage"]["input_tokens"] for t in turns] == [11, 11]
    assert [t["usage"]["output_tokens"] for t in turns] == [7, 7]
    assert turns[0]["tool_calls"] == [{"id": "call_1", "name": "add", "arguments": {"a": 2, "b": 3}}]
    assert [(r["name"], r["text"], r["is_error"]) for r in results] == [("add", "5", False)]


async def test_max_steps_stops_the_loop(api: FakeAPI, wire: Wire) -> None:
    """A model that never stops calling tools is cut at max_steps, with that stop reason."""
    api.script = [(200, wire.tool_call("call_1", "add", {"a": 1, "b": 1}))]
    run = await rollout(wire.agent(api, tools=[AddTool().tool]), max_steps=3)
    assert (run.status, run.stop_reason, len(api.requests)) == ("completed", "max_steps", 3)


async def test_agent_max_steps_applies_without_a_run_limit(api: FakeAPI, wire: Wire) -> None:
    """The agent's own max_steps bounds the loop when the run sets none."""
    api.script = [(200, wire.tool_call("call_1", "add", {"a": 1, "b": 1}))]
    run = await rollout(wire.agent(api, tools=[AddTool().tool], max_steps=2))
    assert (run.stop_reason, len(api.requests)) == ("max_steps", 2)


async def test_failing_tool_is_an_error_result_not_a_crash(api: FakeAPI, wire: Wire) -> None:
    """A tool that raises gives the model an error result and the rollout goes on."""
    async def broken(args: dict[str, Any]) -> ToolResult:
        raise RuntimeError("disk on fire")

    tool = Tool("add", "Add.", {"type": "object", "properties": {}}, broken, timeout=5)
    api.script = [(200, wire.tool_call("call_1", "add", {})), (200, wire.answer("5"))]
    run = await rollout(wire.agent(api, tools=[tool]))
    assert run.reward == 1.0
    assert wire.tool_results(api.requests[1]) == [
        {"id": "call_1", "text": "add failed: RuntimeError: disk on fire", "is_error": True}]


async def test_server_error_is_agent_error(api: FakeAPI, wire: Wire) -> None:
    """An HTTP 500 that outlasts the SDK's retries fails the rollout as agent_error."""
    api.script = [(500, wire.error())]
    run = await rollout(wire.agent(api, tools=[AddTool().tool], max_retries=1))
    assert run.status == "agent_error"
    assert run.reward is None
    assert "500" in run.error or "fake server broke" in run.error
    assert len(api.requests) == 2  # the SDK retried once


async def test_sdk_sends_the_key(api: FakeAPI, wire: Wire) -> None:
    """The key reaches the API in the provider's header."""
    api.script = [(200, wire.answer("5"))]
    await rollout(wire.agent(api, tools=[]))
    headers = api.headers[0]
    sent = headers.get("x-api-key") or headers.get("x-goog-api-key") or headers.get("authorization", "")
    assert sent.removeprefix("Bearer ") in ("sk-test", "g-test", "not-needed")


@pytest.fixture(params=[Chat("chat-completions"), Chat("chat-completions").streamed()],
                ids=lambda w: w.name)
def chat(request: pytest.FixtureRequest) -> Wire:
    """The Chat Completions wire, plain then streamed."""
    return request.param


def with_arguments(wire: Wire, arguments: Any) -> dict[str, Any]:
    """A Chat Completions tool call of `add` whose `arguments` is `arguments` as is."""
    reply = wire.tool_call("call_1", "add", {})
    reply["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] = arguments
    return reply


async def test_tool_arguments_sent_as_an_object_are_used(api: FakeAPI, chat: Wire) -> None:
    """A server that sends a call's `arguments` as a JSON object, not JSON text: the tool
    runs with that object, and the history sends it back as text."""
    add = AddTool()
    api.script = [(200, with_arguments(chat, {"a": 2, "b": 3})), (200, chat.answer("5"))]
    run = await rollout(chat.agent(api, tools=[add.tool]))
    assert (run.reward, add.calls) == (1.0, [{"a": 2, "b": 3}]), run.error
    sent = chat.history(api.requests[1])[0]["tool_calls"][0]["function"]["arguments"]
    assert json.loads(sent) == {"a": 2, "b": 3}


async def test_tool_arguments_that_are_no_object_are_a_tool_error(api: FakeAPI, chat: Wire) -> None:
    """`arguments` that are neither JSON text nor an object (a list): an error result the
    model sees, and the rollout goes on."""
    api.script = [(200, with_arguments(chat, [2, 3])), (200, chat.answer("5"))]
    run = await rollout(chat.agent(api, tools=[AddTool().tool]))
    assert run.reward == 1.0, run.error
    assert chat.tool_results(api.requests[1]) == [
        {"id": "call_1", "text": "the arguments of add must be a JSON object, got: [2, 3]",
         "is_error": True}]
