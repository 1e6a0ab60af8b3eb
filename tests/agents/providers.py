"""Fake provider APIs: local HTTP servers speaking each provider's wire format.

A `FakeAPI` is a stdlib HTTP server on 127.0.0.1 in a thread. It answers POSTs from a
script of (status, JSON body) replies, in order, repeating the last one when the script
runs out, and keeps every request body it got. Each `Wire` knows one provider's JSON:
how to script a tool call or an answer, and where the tool results sit in a request.
The official SDKs are pointed at the server with their `base_url`.

A request that asks for a stream (`"stream": true` in the body, Gemini's
`:streamGenerateContent` path) gets the same scripted reply as server-sent events in
that provider's wire format, cut into small deltas (`tests.agents.streams`), so every scripted
scenario runs streamed too. `stalls[n] = k` makes the n-th request's stream (1-based)
send k events and then hang until the server is closed, like a stuck upstream behind a
proxy; `cuts[n] = k` sends k events and closes the connection; `faults[n]` makes it
misbehave otherwise (keep-alive pings only, slow events, a trickled body). Error statuses are
answered as JSON in both modes, as the real APIs do.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from hud.agents.base import ModelAgent
from tests.agents import streams
from tests.agents.streams import Event

Reply = tuple[int, dict[str, Any]]


class FakeAPI:
    """A scripted JSON-over-HTTP server on 127.0.0.1."""

    def __init__(self) -> None:
        self.script: list[Reply] = []
        self.requests: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.headers: list[dict[str, str]] = []
        #: per request: whether it asked for a stream (and was answered with one)
        self.streamed: list[bool] = []
        #: request number (1-based) -> events its stream sends before hanging until `close`
        self.stalls: dict[int, int] = {}
        #: request number (1-based) -> events its stream sends before the connection closes
        self.cuts: dict[int, int] = {}
        #: request number (1-based) -> how its answer misbehaves (`tests.agents.streams.Fault`)
        self.faults: dict[int, streams.Fault] = {}
        self._lock = threading.Lock()
        self._closing = threading.Event()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # the stdlib's name
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                request = json.loads(body or b"{}")
                wire = wire_for(self.path)
                streamed = wire is not None and wire.wants_stream(self.path, request)
                with api._lock:
                    api.requests.append(request)
                    api.paths.append(self.path)
                    api.headers.append({k.lower(): v for k, v in self.headers.items()})
                    api.streamed.append(streamed)
                    number = len(api.requests)
                    status, reply = api.script[min(number, len(api.script)) - 1]
                fault = api.faults.get(number)
                if streamed and status == 200 and wire is not None:
                    streams.send(self, wire.events(reply, request), stall=api.stalls.get(number),
                                 cut=api.cuts.get(number), closing=api._closing, fault=fault,
                                 ping=streams.PINGS[wire.name])
                    return
                streams.reply(self, status, reply, closing=api._closing, fault=fault)

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        # polls for shutdown every 50 ms: the default 0.5 s was ~0.25 s of every test's teardown
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self._closing.set()  # a stalled stream lets go
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


@dataclass
class Wire:
    """One provider's wire format, for scripting a fake server and reading its requests."""

    name: str
    #: agents made by `agent` send streaming requests
    stream: bool = False
    #: what the model calls the workspace's edit tool (Claude: its own text editor)
    edit_tool = "edit"
    #: the end of the request path this provider's API is called on
    endpoint = ""

    def streamed(self) -> Wire:
        """The same wire, its agents streaming."""
        return replace(self, name=f"{self.name}-stream", stream=True)

    def agent(self, api: FakeAPI, **config: Any) -> ModelAgent:
        """The harness, with the official SDK pointed at `api` (streaming when the wire is)."""
        raise NotImplementedError

    def wants_stream(self, path: str, request: dict[str, Any]) -> bool:
        """Whether a request asks for a streamed answer."""
        return request.get("stream") is True

    def events(self, reply: dict[str, Any], request: dict[str, Any]) -> list[Event]:
        """A scripted reply as the server-sent events of a streamed answer."""
        raise NotImplementedError

    def tool_call(self, call_id: str, name: str, args: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def answer(self, text: str) -> dict[str, Any]:
        raise NotImplementedError

    def refusal(self, text: str) -> dict[str, Any]:
        """A reply in which the model declines."""
        raise NotImplementedError

    def truncated(self, text: str) -> dict[str, Any]:
        """A reply cut at the output token limit."""
        raise NotImplementedError

    def thinking(self, reply: dict[str, Any], text: str) -> dict[str, Any]:
        """`reply` with a reasoning/thinking block of `text` before its content."""
        raise NotImplementedError

    def error(self) -> dict[str, Any]:
        return {"error": {"message": "the fake server broke", "type": "server_error"}}

    def tool_results(self, request: dict[str, Any]) -> list[dict[str, Any]]:
        """The tool results a request carries: [{"id", "text", "is_error"}]."""
        raise NotImplementedError

    def tool_names(self, request: dict[str, Any]) -> list[str]:
        """The names of the tools a request declares."""
        raise NotImplementedError

    def history(self, request: dict[str, Any]) -> list[dict[str, Any]]:
        """The model's earlier output as a request echoes it back (messages, items)."""
        raise NotImplementedError

    def _config(self, config: dict[str, Any]) -> dict[str, Any]:
        return {"stream": self.stream, **config}


class Anthropic(Wire):
    edit_tool = "str_replace_based_edit_tool"
    endpoint = "/v1/messages"

    def agent(self, api: FakeAPI, **config: Any) -> ModelAgent:
        from hud.agents.claude import ClaudeAgent

        return ClaudeAgent("claude-test", api_key="sk-test", base_url=f"http://127.0.0.1:{api.port}",
                           **self._config(config))

    def _message(self, content: list[dict[str, Any]], stop: str) -> dict[str, Any]:
        return {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-test",
                "content": content, "stop_reason": stop, "stop_sequence": None,
                "usage": {"input_tokens": 11, "output_tokens": 7}}

    def tool_call(self, call_id: str, name: str, args: dict[str, Any]) -> dict[str, Any]:
        return self._message([{"type": "text", "text": "Let me use the tool."},
                              {"type": "tool_use", "id": call_id, "name": name, "input": args}],
                             "tool_use")

    def answer(self, text: str) -> dict[str, Any]:
        return self._message([{"type": "text", "text": text}], "end_turn")

    def refusal(self, text: str) -> dict[str, Any]:
        return self._message([{"type": "text", "text": text}], "refusal")

    def truncated(self, text: str) -> dict[str, Any]:
        return self._message([{"type": "text", "text": text}], "max_tokens")

    def thinking(self, reply: dict[str, Any], text: str) -> dict[str, Any]:
        block = {"type": "thinking", "thinking": text, "signature": "sig-1"}
        return {**reply, "content": [block, *reply["content"]]}

    events = staticmethod(streams.anthropic_events)
    def error(self) -> dict[str, Any]:
        return {"type": "error", "error": {"type": "api_error", "message": "the fake server broke"}}

    def tool_results(self, request: dict[str, Any]) -> list[dict[str, Any]]:
        last = request["messages"][-1]
        assert last["role"] == "user"
        return [{"id": b["tool_use_id"], "text": b["content"][0]["text"], "is_error": b["is_error"]}
                for b in last["content"] if b["type"] == "tool_result"]

    def tool_names(self, request: dict[str, Any]) -> list[str]:
        return [t["name"] for t in request.get("tools", [])]

    def history(self, request: dict[str, Any]) -> list[dict[str, Any]]:
        return [block for m in request["messages"] if m["role"] == "assistant"
                for block in m["content"]]


class Responses(Wire):
    endpoint = "/responses"

    def agent(self, api: FakeAPI, **config: Any) -> ModelAgent:
        from hud.agents.openai_responses import OpenAIResponsesAgent

        return OpenAIResponsesAgent("gpt-test", api_key="sk-test",
                                    base_url=f"http://127.0.0.1:{api.port}/v1", **self._config(config))

    def _response(self, output: list[dict[str, Any]]) -> dict[str, Any]:
        return {"id": "resp_1", "object": "response", "created_at": 0, "model": "gpt-test",
                "status": "completed", "output": output, "parallel_tool_calls": True,
                "tool_choice": "auto", "tools": [],
                "usage": {"input_tokens": 11, "output_tokens": 7, "total_tokens": 18,
                          "input_tokens_details": {"cached_tokens": 0},
                          "output_tokens_details": {"reasoning_tokens": 0}}}

    def tool_call(self, call_id: str, name: str, args: dict[str, Any]) -> dict[str, Any]:
        return self._response([{"type": "function_call", "id": f"fc_{call_id}", "call_id": call_id,
                                "name": name, "arguments": json.dumps(args), "status": "completed"}])

    def _says(self, part: dict[str, Any]) -> dict[str, Any]:
        return self._response([{"type": "message", "id": "msg_1", "role": "assistant",
                                "status": "completed", "content": [part]}])

    def answer(self, text: str) -> dict[str, Any]:
        return self._says({"type": "output_text", "text": text, "annotations": []})

    def refusal(self, text: str) -> dict[str, Any]:
        return self._says({"type": "refusal", "refusal": text})

    def truncated(self, text: str) -> dict[str, Any]:
        reply = self.answer(text)
        reply["output"][0]["status"] = "incomplete"
        return {**reply, "status": "incomplete",
                "incomplete_details": {"reason": "max_output_tokens"}}

    def thinking(self, reply: dict[str, Any], text: str) -> dict[str, Any]:
        item = {"type": "reasoning", "id": "rs_1",
                "summary": [{"type": "summary_text", "text": text}]}
        return {**reply, "output": [item, *reply["output"]]}

    events = staticmethod(streams.responses_events)
    def tool_results(self, request: dict[str, Any]) -> list[dict[str, Any]]:
        return [{"id": i["call_id"], "text": i["output"].removeprefix("ERROR: "),
                 "is_error": i["output"].startswith("ERROR: ")}
                for i in _trailing(request["input"], lambda i: i.get("type") == "function_call_output")]

    def tool_names(self, request: dict[str, Any]) -> list[str]:
        return [t["name"] for t in request.get("tools", [])]

    def history(self, request: dict[str, Any]) -> list[dict[str, Any]]:
        return [i for i in request["input"] if i.get("type") in ("reasoning", "message", "function_call")]


class Chat(Wire):
    endpoint = "/chat/completions"

    def agent(self, api: FakeAPI, **config: Any) -> ModelAgent:
        from hud.agents.chat_completions import ChatCompletionsAgent

        return ChatCompletionsAgent("local-test", base_url=f"http://127.0.0.1:{api.port}/v1",
                                    **self._config(config))

    def _completion(self, message: dict[str, Any], finish: str) -> dict[str, Any]:
        return {"id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "local-test",
                "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}}

    def tool_call(self, call_id: str, name: str, args: dict[str, Any]) -> dict[str, Any]:
        return self._completion({"role": "assistant", "content": None, "tool_calls": [
            {"id": call_id, "type": "function",
             "function": {"name": name, "arguments": json.dumps(args)}}]}, "tool_calls")

    def answer(self, text: str) -> dict[str, Any]:
        return self._completion({"role": "assistant", "content": text}, "stop")

    def refusal(self, text: str) -> dict[str, Any]:
        return self._completion({"role": "assistant", "content": None, "refusal": text}, "stop")

    def truncated(self, text: str) -> dict[str, Any]:
        return self._completion({"role": "assistant", "content": text}, "length")

    def thinking(self, reply: dict[str, Any], text: str) -> dict[str, Any]:
        reply = copy.deepcopy(reply)
        reply["choices"][0]["message"]["reasoning_content"] = text
        return reply

    events = staticmethod(streams.chat_events)
    def tool_results(self, request: dict[str, Any]) -> list[dict[str, Any]]:
        return [{"id": m["tool_call_id"], "text": m["content"].removeprefix("ERROR: "),
                 "is_error": m["content"].startswith("ERROR: ")}
                for m in _trailing(request["messages"], lambda m: m["role"] == "tool")]

    def tool_names(self, request: dict[str, Any]) -> list[str]:
        return [t["function"]["name"] for t in request.get("tools", [])]

    def history(self, request: dict[str, Any]) -> list[dict[str, Any]]:
        return [m for m in request["messages"] if m["role"] == "assistant"]


class Gemini(Wire):
    endpoint = ":streamGenerateContent?alt=sse"

    def agent(self, api: FakeAPI, **config: Any) -> ModelAgent:
        from hud.agents.gemini import GeminiAgent

        return GeminiAgent("gemini-test", api_key="g-test", base_url=f"http://127.0.0.1:{api.port}",
                           **self._config(config))

    def wants_stream(self, path: str, request: dict[str, Any]) -> bool:
        return path.endswith(self.endpoint)

    def _response(self, parts: list[dict[str, Any]], finish: str = "STOP") -> dict[str, Any]:
        return {"candidates": [{"content": {"role": "model", "parts": parts},
                                "finishReason": finish, "index": 0}],
                "usageMetadata": {"promptTokenCount": 11, "candidatesTokenCount": 7,
                                  "totalTokenCount": 18},
                "modelVersion": "gemini-test"}

    def tool_call(self, call_id: str, name: str, args: dict[str, Any]) -> dict[str, Any]:
        return self._response([{"functionCall": {"id": call_id, "name": name, "args": args}}])

    def answer(self, text: str) -> dict[str, Any]:
        return self._response([{"text": text}])

    def refusal(self, text: str) -> dict[str, Any]:
        return self._response([{"text": text}], "SAFETY")

    def truncated(self, text: str) -> dict[str, Any]:
        return self._response([{"text": text}], "MAX_TOKENS")

    def thinking(self, reply: dict[str, Any], text: str) -> dict[str, Any]:
        reply = copy.deepcopy(reply)
        parts = reply["candidates"][0]["content"]["parts"]
        parts.insert(0, {"text": text, "thought": True})
        parts[-1]["thoughtSignature"] = "c2lnLTE="  # base64 bytes, as the API sends them
        return reply

    events = staticmethod(streams.gemini_events)
    def error(self) -> dict[str, Any]:
        return {"error": {"code": 500, "message": "the fake server broke", "status": "INTERNAL"}}

    def tool_results(self, request: dict[str, Any]) -> list[dict[str, Any]]:
        last = request["contents"][-1]
        assert last["role"] == "user"
        out = []
        for part in last["parts"]:
            response = part.get("functionResponse")
            if response:
                body = response["response"]
                out.append({"id": response.get("id"), "text": body.get("output", body.get("error")),
                            "is_error": "error" in body})
        return out

    def tool_names(self, request: dict[str, Any]) -> list[str]:
        return [d["name"] for t in request.get("tools", []) for d in t["functionDeclarations"]]

    def history(self, request: dict[str, Any]) -> list[dict[str, Any]]:
        return [p for c in request["contents"] if c["role"] == "model" for p in c["parts"]]


def _trailing(items: list[dict[str, Any]], is_result: Any) -> list[dict[str, Any]]:
    """The run of tool results at the end of a history: those of the last turn."""
    tail: list[dict[str, Any]] = []
    for item in reversed(items):
        if not is_result(item):
            break
        tail.insert(0, item)
    return tail


WIRES = [Anthropic("anthropic"), Responses("openai-responses"), Chat("chat-completions"),
         Gemini("gemini")]


def wire_for(path: str) -> Wire | None:
    """The provider whose API a request path belongs to (Gemini: its streaming path)."""
    return next((w for w in WIRES if w.endpoint and w.endpoint in path), None)


def serve() -> Iterator[FakeAPI]:
    """A fixture body: a fake API, shut down afterwards."""
    api = FakeAPI()
    try:
        yield api
    finally:
        api.close()
