"""Streaming harnesses and thinking in the trace, against fake provider APIs.

Every provider's harness runs each scenario plain and streamed (`stream=True`), the SDK
reading the server's scripted reply as that provider's server-sent events; the trace,
the history sent back and the stop reasons must not depend on the mode.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from hud.agents.streaming import StreamEnded, assemble_chat
from tests.agents.providers import WIRES, Anthropic, Chat, FakeAPI, Responses, Wire, serve
from tests.agents.test_providers import AddTool, rollout

pytestmark = pytest.mark.timeout(60)

BY_NAME = {w.name: w for w in WIRES}


@pytest.fixture
def api() -> Iterator[FakeAPI]:
    yield from serve()


@pytest.fixture(params=[w for wire in WIRES for w in (wire, wire.streamed())],
                ids=lambda w: w.name)
def wire(request: pytest.FixtureRequest) -> Wire:
    """Each provider's wire, plain then streamed."""
    return request.param


@pytest.fixture(params=WIRES, ids=lambda w: w.name)
def streamed(request: pytest.FixtureRequest) -> Wire:
    """Each provider's wire, its agents streaming."""
    return request.param.streamed()


def turns(run: Any) -> list[dict[str, Any]]:
    return [e for e in run.trace if e["type"] == "model_turn"]


def thought_script(wire: Wire) -> list[tuple[int, dict[str, Any]]]:
    """A tool call after some thinking, then the answer."""
    return [(200, wire.thinking(wire.tool_call("call_1", "add", {"a": 2, "b": 3}),
                                "The user wants 2 + 3; the add tool does that.")),
            (200, wire.answer("5"))]


async def test_streamed_rollout_traces_and_sends_what_a_plain_one_does(api: FakeAPI) -> None:
    """Same script, both modes: identical model_turn events (text, calls, usage, finish,
    thinking) and an identical history in the next request, for every provider."""
    for plain in WIRES:
        seen = []
        for wire in (plain, plain.streamed()):
            api.requests.clear()
            api.streamed.clear()
            api.script = thought_script(wire)
            run = await rollout(wire.agent(api, tools=[AddTool().tool]))
            assert run.reward == 1.0, (wire.name, run.error)
            assert api.streamed == [wire.stream] * 2
            body = {k: v for k, v in api.requests[1].items() if k not in ("stream", "stream_options")}
            seen.append(([{k: v for k, v in t.items() if k != "t"} for t in turns(run)], body))
        assert seen[0] == seen[1], plain.name


async def test_thinking_is_recorded_in_the_trace(api: FakeAPI, wire: Wire) -> None:
    """The reasoning/thinking the provider returned is the turn's `thinking`; a turn
    without any has none."""
    api.script = thought_script(wire)
    run = await rollout(wire.agent(api, tools=[AddTool().tool]))
    first, second = turns(run)
    assert first["thinking"] == ["The user wants 2 + 3; the add tool does that."]
    assert "thinking" not in second


async def test_thinking_goes_back_in_the_history(api: FakeAPI, wire: Wire) -> None:
    """Claude's thinking block keeps its signature, the Responses reasoning item and
    Gemini's thought part (with its signature) are echoed; Chat Completions reasoning
    is not sent back."""
    api.script = thought_script(wire)
    await rollout(wire.agent(api, tools=[AddTool().tool]))
    history = wire.history(api.requests[1])
    expected: Any = {
        "anthropic": {"type": "thinking", "signature": "sig-1",
                      "thinking": "The user wants 2 + 3; the add tool does that."},
        "openai-responses": {"type": "reasoning", "id": "rs_1", "summary": [
            {"type": "summary_text", "text": "The user wants 2 + 3; the add tool does that."}]},
        "gemini": {"text": "The user wants 2 + 3; the add tool does that.", "thought": True},
    }.get(wire.name.removesuffix("-stream"))
    if expected is None:
        assert all("reasoning_content" not in m for m in history)
        return
    assert history[0] == expected
    if wire.name.startswith("gemini"):
        assert history[1]["thoughtSignature"] == "c2lnLTE="


async def test_redacted_thinking_is_traced_as_redacted(api: FakeAPI) -> None:
    """Claude's redacted_thinking blocks are traced as "[redacted]", in both modes, and
    go back in the history as sent."""
    for wire in (Anthropic("anthropic"), Anthropic("anthropic").streamed()):
        reply = wire.answer("5")
        reply["content"].insert(0, {"type": "redacted_thinking", "data": "opaque"})
        api.script = [(200, reply)]
        run = await rollout(wire.agent(api, tools=[]))
        assert turns(run)[0]["thinking"] == ["[redacted]"], wire.name


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
async def test_compatible_servers_reasoning_fields_are_traced(api: FakeAPI, field: str) -> None:
    """Chat Completions reasoning as servers send it (`reasoning_content`: DeepSeek,
    llama.cpp; `reasoning`: newer vLLM) is traced, plain and streamed."""
    for wire in (Chat("chat"), Chat("chat").streamed()):
        reply = wire.answer("5")
        reply["choices"][0]["message"][field] = "Two plus three."
        api.script = [(200, reply)]
        run = await rollout(wire.agent(api, tools=[]))
        assert turns(run)[0]["thinking"] == ["Two plus three."], wire.name


async def test_refusal_ends_the_rollout_refused(api: FakeAPI, wire: Wire) -> None:
    """A refusal (Claude's stop_reason, a Responses refusal part, Chat's `refusal`,
    Gemini's SAFETY) ends the rollout with stop_reason 'refused'."""
    api.script = [(200, wire.refusal("I can't help with that."))]
    run = await rollout(wire.agent(api, tools=[]))
    assert (run.status, run.stop_reason, run.reward) == ("completed", "refused", 0.0)
    assert turns(run)[0]["text"] == "I can't help with that."


async def test_token_limit_ends_the_rollout_max_tokens(api: FakeAPI, wire: Wire) -> None:
    """An answer cut at the token limit (Responses: a `response.incomplete` stream) ends
    the rollout with stop_reason 'max_tokens'."""
    api.script = [(200, wire.truncated("The answer is"))]
    run = await rollout(wire.agent(api, tools=[]))
    assert (run.status, run.stop_reason) == ("completed", "max_tokens")
    assert turns(run)[0]["text"] == "The answer is"


async def test_streamed_requests_say_so_on_the_wire(api: FakeAPI, streamed: Wire) -> None:
    """Streamed: `"stream": true` in the body (Chat Completions asking for the usage
    chunk too), or Gemini's :streamGenerateContent?alt=sse path."""
    api.script = [(200, streamed.answer("5"))]
    await rollout(streamed.agent(api, tools=[]))
    body, path = api.requests[0], api.paths[0]
    if streamed.name.startswith("gemini"):
        assert path.endswith("/models/gemini-test:streamGenerateContent?alt=sse") and "stream" not in body
    else:
        assert body["stream"] is True
    if streamed.name.startswith("chat"):
        assert body["stream_options"] == {"include_usage": True}


def _failed(wire: Wire, code: str) -> dict:
    return {**wire.answer("5"), "status": "failed",
            "error": {"code": code, "message": "the model is overloaded"}}


async def test_a_failed_response_stream_is_agent_error(api: FakeAPI) -> None:
    """A Responses stream ending in response.failed with a code a plain request would not
    be retried on raises the SDK's APIError with the provider's message after one request:
    a provider failure, not an empty answer."""
    wire = BY_NAME["openai-responses"].streamed()
    api.script = [(200, _failed(wire, "invalid_prompt")), (200, wire.answer("5"))]
    run = await rollout(wire.agent(api, tools=[], max_retries=2))
    assert run.status == "agent_error"
    assert run.error == "APIError: the response failed: the model is overloaded"
    assert len(api.requests) == 1


@pytest.mark.parametrize("code", ["server_error", "rate_limit_exceeded"])
async def test_a_response_failed_as_a_5xx_or_429_is_tried_again(api: FakeAPI, code: str) -> None:
    """response.failed with `server_error` or `rate_limit_exceeded` (what the SDK retries
    as a plain request's 500 or 429) sends the request again: the rollout completes."""
    wire = BY_NAME["openai-responses"].streamed()
    api.script = [(200, _failed(wire, code)), (200, wire.answer("5"))]
    run = await rollout(wire.agent(api, tools=[], max_retries=1))
    assert (run.status, run.answer, len(api.requests)) == ("completed", "5", 2), run.error


async def test_a_retried_response_failure_ends_when_the_retries_do(api: FakeAPI) -> None:
    """With no retries left, a `server_error` failure is the rollout's agent_error, with
    the provider's message, after 1 + max_retries requests."""
    wire = BY_NAME["openai-responses"].streamed()
    api.script = [(200, _failed(wire, "server_error"))] * 3
    run = await rollout(wire.agent(api, tools=[], max_retries=1))
    assert run.status == "agent_error" and "the model is overloaded" in run.error, run.error
    assert len(api.requests) == 2


async def test_a_stream_that_stalls_fails_with_a_request_timeout(api: FakeAPI,
                                                                 streamed: Wire) -> None:
    """A server that stops sending mid-stream for longer than `timeout` ends the rollout
    as agent_error: hud's RequestTimeout, naming the limit and the requests sent."""
    api.script = [(200, streamed.thinking(streamed.answer("5"), "Two plus three."))]
    api.stalls = {1: 1}
    run = await rollout(streamed.agent(api, tools=[], timeout=0.5, max_retries=0))
    assert run.status == "agent_error"
    assert run.error.startswith("RequestTimeout: the request to http://127.0.0.1:"), run.error
    assert "no content for 0.5 s" in run.error and "1 request sent" in run.error, run.error
    assert len(api.requests) == 1


async def test_a_stalled_stream_is_retried_max_retries_times(api: FakeAPI, streamed: Wire) -> None:
    """A stream that stalls every time is tried 1 + max_retries times, then fails."""
    api.script = [(200, streamed.thinking(streamed.answer("5"), "Two plus three."))]
    api.stalls = {1: 1, 2: 1}
    run = await rollout(streamed.agent(api, tools=[], timeout=0.5, max_retries=1))
    assert run.status == "agent_error", run.error
    assert len(api.requests) == 2


async def test_a_cut_stream_is_retried_and_the_rollout_goes_on(api: FakeAPI, streamed: Wire) -> None:
    """A connection closed before the provider's final event is not taken as an answer:
    the request is sent again and the rollout completes."""
    first, answer = thought_script(streamed)
    api.script = [first, first, answer]  # the retry gets the same reply, whole
    api.cuts = {1: 1}
    run = await rollout(streamed.agent(api, tools=[AddTool().tool], max_retries=1))
    assert run.reward == 1.0, run.error
    assert len(api.requests) == 3 and [len(t["tool_calls"]) for t in turns(run)] == [1, 0]


async def test_a_cut_stream_without_retries_is_agent_error(api: FakeAPI, streamed: Wire) -> None:
    """Cut before the final event with max_retries=0: agent_error naming the early end."""
    api.script = [(200, streamed.thinking(streamed.answer("5"), "Two plus three."))]
    api.cuts = {1: 1}
    run = await rollout(streamed.agent(api, tools=[], max_retries=0))
    assert run.status == "agent_error"
    assert run.error.startswith("StreamEnded: ") and "raise max_retries" in run.error, run.error


def computer_case(api: FakeAPI, provider: str, act: Any) -> tuple[Any, list[Any]]:
    """A streaming agent whose model is trained on a native computer tool, and a script
    in which it clicks once and then answers."""
    from hud.agents.gemini import GeminiAgent
    from hud.agents.openai_responses import OpenAIResponsesAgent
    from hud.agents.tools import Tool

    computer = Tool(name="computer", description="a desktop", parameters={"type": "object"},
                    run=act, meta={"display": (1000, 500)})
    wire = BY_NAME[provider].streamed()
    url = f"http://127.0.0.1:{api.port}"
    if provider == "anthropic":
        call = wire.tool_call("c1", "computer", {"action": "left_click", "coordinate": [100, 250]})
        return wire.agent(api, tools=[computer]), [(200, call), (200, wire.answer("5"))]
    if provider == "gemini":
        agent = GeminiAgent("gemini-computer-use-test", api_key="g-test", base_url=url,
                            tools=[computer], stream=True)
        call = wire.tool_call("c1", "click_at", {"x": 100, "y": 500})
        return agent, [(200, call), (200, wire.answer("5"))]
    agent = OpenAIResponsesAgent("computer-use-preview", api_key="sk-test", base_url=f"{url}/v1",
                                 tools=[computer], stream=True)
    item = {"type": "computer_call", "id": "cu_1", "call_id": "c1", "status": "completed",
            "action": {"type": "click", "button": "left", "x": 100, "y": 250},
            "pending_safety_checks": []}
    return agent, [(200, Responses("responses")._response([item])), (200, wire.answer("5"))]


@pytest.mark.parametrize("provider", ["anthropic", "openai-responses", "gemini"])
async def test_native_computer_tools_work_streamed(api: FakeAPI, provider: str) -> None:
    """The computer-use variants share their provider's conversation: streamed, a native
    click still reaches hud's computer tool, translated."""
    from hud.agents.tools import ToolResult
    from hud.clients.rfb import encode_png

    seen: list[dict[str, Any]] = []

    async def act(args: dict[str, Any]) -> ToolResult:
        seen.append(args)
        return ToolResult("clicked", images=[encode_png(1, 1, b"\x00\x00\x00")])

    agent, api.script = computer_case(api, provider, act)
    run = await rollout(agent)
    assert run.reward == 1.0, run.error
    assert api.streamed == [True, True]
    assert seen == [{"action": "click", "button": "left", "x": 100, "y": 250}]


def test_chat_chunks_without_tool_call_index_are_merged() -> None:
    """Tool-call deltas are merged by id, or onto the last call, when a server sends no
    `index`; usage is taken from the chunk that carried it, even with choices."""
    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
        return {"id": "c", "created": 1, "model": "m", "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}

    def call(call_id: str | None, name: str | None, arguments: str) -> dict[str, Any]:
        part: dict[str, Any] = {"function": {"arguments": arguments}}
        if call_id:
            part |= {"id": call_id, "type": "function"}
            part["function"]["name"] = name
        return {"tool_calls": [part]}

    completion = assemble_chat([
        chunk({"role": "assistant", "content": "Adding."}),
        chunk(call("a", "add", '{"a"')), chunk(call(None, None, ": 1}")),
        chunk(call("b", "add", "{}")),
        chunk({}, "tool_calls", usage={"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}),
    ])
    message = completion.choices[0].message
    assert message.content == "Adding."
    assert [(c.id, c.function.name, c.function.arguments) for c in message.tool_calls or []
            if c.type == "function"] == [("a", "add", '{"a": 1}'), ("b", "add", "{}")]
    assert completion.usage is not None and completion.usage.completion_tokens == 4


def test_chat_chunks_without_a_finish_reason_are_a_cut_stream() -> None:
    """Chunks that never give a finish_reason are a stream that ended early."""
    with pytest.raises(StreamEnded, match="without a finish_reason"):
        assemble_chat([{"id": "c", "choices": [{"index": 0, "delta": {"content": "The"}}]}])


def tool_deltas(*parts: dict[str, Any]) -> list[dict[str, Any]]:
    """Chat chunks: one per tool-call delta (`index` 0 unless given), then the finish."""
    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {"id": "c", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    return [*(chunk({"tool_calls": [{"index": 0, **p}]}) for p in parts),
            chunk({}, "tool_calls")]


def calls_of(chunks: list[dict[str, Any]]) -> list[tuple[str, str, Any]]:
    message = assemble_chat(chunks).choices[0].message
    return [(c.id, c.function.name, c.function.arguments) for c in message.tool_calls or []
            if c.type == "function"]


def test_chat_calls_sharing_an_index_are_told_apart_by_id() -> None:
    """Two whole calls at index 0 with their own ids (as Ollama sends parallel calls)
    stay two calls, each with its own arguments."""
    assert calls_of(tool_deltas(
        {"id": "a", "function": {"name": "bash", "arguments": '{"command": "ls"}'}},
        {"id": "b", "function": {"name": "edit", "arguments": '{"path": "x"}'}},
    )) == [("a", "bash", '{"command": "ls"}'), ("b", "edit", '{"path": "x"}')]


def test_chat_calls_sharing_an_index_without_ids_are_told_apart_by_name() -> None:
    """Without ids, a name after a call's arguments were whole starts the next call; a
    name repeated while the arguments are still coming does not."""
    assert calls_of(tool_deltas(
        {"function": {"name": "bash", "arguments": '{"command": '}},
        {"function": {"name": "bash", "arguments": '"ls"}'}},
        {"function": {"name": "bash", "arguments": '{"command": "pwd"}'}},
    )) == [("", "bash", '{"command": "ls"}'), ("", "bash", '{"command": "pwd"}')]


def overloaded_midway(api: FakeAPI, kind: str) -> Wire:
    """Claude streaming; its first answer breaks off with an `error` event of `kind`."""
    from tests.agents.streams import Fault, sse

    wire = Anthropic("anthropic").streamed()
    api.script = [(200, wire.answer("5"))]
    error = sse({"type": "error", "error": {"type": kind, "message": "Overloaded"}}, "error")
    api.faults = {1: Fault(tail=error, tail_after=2)}
    return wire


async def test_an_overloaded_error_event_midway_is_tried_again(api: FakeAPI) -> None:
    """Anthropic's mid-stream `overloaded_error` (a 529 to a plain request, which the
    SDK retries) sends the request again: the rollout completes."""
    wire = overloaded_midway(api, "overloaded_error")
    run = await rollout(wire.agent(api, tools=[], max_retries=1))
    assert (run.status, run.answer, len(api.requests)) == ("completed", "5", 2), run.error


async def test_an_invalid_request_error_event_is_not_tried_again(api: FakeAPI) -> None:
    """An error event a plain request would not have been retried on (a 400's) ends the
    rollout as agent_error after one request."""
    wire = overloaded_midway(api, "invalid_request_error")
    run = await rollout(wire.agent(api, tools=[], max_retries=2))
    assert run.status == "agent_error" and "invalid_request_error" in run.error, run.error
    assert len(api.requests) == 1


async def test_hud_trace_shows_thinking_as_text(api: FakeAPI, runs_dir: Path) -> None:
    """`hud trace` prints a turn's thinking on its own labelled line, as plain text:
    markup-like brackets (`[/b]`) print as they are and do not crash it."""
    from hud.cli.eval import trace

    wire = BY_NAME["anthropic"].streamed()
    tricky = "I think [/b] then [bold]add[/bold] \x9b2J"
    api.script = [(200, wire.thinking(wire.answer("5"), tricky))]
    run = await rollout(wire.agent(api, tools=[]))
    done = CliRunner().invoke(trace, [run.trace_id])
    assert done.exit_code == 0, done.output
    line = next(line for line in done.output.splitlines() if line.lstrip().startswith("thinking"))
    assert line.lstrip().startswith("thinking ")
    assert json.dumps("I think [/b] then [bold]add[/bold] ")[:-1] in line
    assert "\x9b" not in done.output and "\\u009b2J" in line
