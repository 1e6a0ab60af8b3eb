"""Fake provider APIs: local HTTP servers speaking each provider's wire format.

A `FakeAPI` is a stdlib HTTP server on 127.0.0.1 in a thread. It answers POSTs from a
script of (status, JSON body) replies, in order, repeating the last one when the script
runs out, and keeps every request body it got. Each `Wire` knows one provider's JSON:
how to script a tool call or an answer, and where the tool results sit in a request.
The official SDKs are pointed at the server with their `base_url`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from hud.agents.base import ModelAgent

Reply = tuple[int, dict[str, Any]]


class FakeAPI:
    """A scripted JSON-over-HTTP server on 127.0.0.1."""

    def __init__(self) -> None:
        self.script: list[Reply] = []
        self.requests: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.headers: list[dict[str, str]] = []
        self._lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # the stdlib's name
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                with api._lock:
                    api.requests.append(json.loads(body or b"{}"))
                    api.paths.append(self.path)
                    api.headers.append({k.lower(): v for k, v in self.headers.items()})
                    index = min(len(api.requests), len(api.script)) - 1
                    status, reply = api.script[index]
                data = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


@dataclass
class Wire:
    """One provider's wire format, for scripting a fake server and reading its requests."""

    name: str
    #: what the model calls the workspace's edit tool (Claude: its own text editor)
    edit_tool = "edit"

    def agent(self, api: FakeAPI, **config: Any) -> ModelAgent:
        """The harness, with the official SDK pointed at `api`."""
        raise NotImplementedError

    def tool_call(self, call_id: str, name: str, args: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def answer(self, text: str) -> dict[str, Any]:
        raise NotImplementedError

    def error(self) -> dict[str, Any]:
        return {"error": {"message": "the fake server broke", "type": "server_error"}}

    def tool_results(self, request: dict[str, Any]) -> list[dict[str, Any]]:
        """The tool results a request carries: [{"id", "text", "is_error"}]."""
        raise NotImplementedError

    def tool_names(self, request: dict[str, Any]) -> list[str]:
        """The names of the tools a request declares."""
        raise NotImplementedError


class Anthropic(Wire):
    edit_tool = "str_replace_based_edit_tool"

    def agent(self, api: FakeAPI, **config: Any) -> ModelAgent:
        from hud.agents.claude import ClaudeAgent

        return ClaudeAgent("claude-test", api_key="sk-test", base_url=f"http://127.0.0.1:{api.port}",
                           **config)

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

    def error(self) -> dict[str, Any]:
        return {"type": "error", "error": {"type": "api_error", "message": "the fake server broke"}}

    def tool_results(self, request: dict[str, Any]) -> list[dict[str, Any]]:
        last = request["messages"][-1]
        assert last["role"] == "user"
        return [{"id": b["tool_use_id"], "text": b["content"][0]["text"], "is_error": b["is_error"]}
                for b in last["content"] if b["type"] == "tool_result"]

    def tool_names(self, request: dict[str, Any]) -> list[str]:
        return [t["name"] for t in request.get("tools", [])]


class Responses(Wire):
    def agent(self, api: FakeAPI, **config: Any) -> ModelAgent:
        from hud.agents.openai_responses import OpenAIResponsesAgent

        return OpenAIResponsesAgent("gpt-test", api_key="sk-test",
                                    base_url=f"http://127.0.0.1:{api.port}/v1", **config)

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

    def answer(self, text: str) -> dict[str, Any]:
        return self._response([{"type": "message", "id": "msg_1", "role": "assistant",
                                "status": "completed",
                                "content": [{"type": "output_text", "text": text, "annotations": []}]}])

    def tool_results(self, request: dict[str, Any]) -> list[dict[str, Any]]:
        return [{"id": i["call_id"], "text": i["output"].removeprefix("ERROR: "),
                 "is_error": i["output"].startswith("ERROR: ")}
                for i in _trailing(request["input"], lambda i: i.get("type") == "function_call_output")]

    def tool_names(self, request: dict[str, Any]) -> list[str]:
        return [t["name"] for t in request.get("tools", [])]


class Chat(Wire):
    def agent(self, api: FakeAPI, **config: Any) -> ModelAgent:
        from hud.agents.chat_completions import ChatCompletionsAgent

        return ChatCompletionsAgent("local-test", base_url=f"http://127.0.0.1:{api.port}/v1", **config)

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

    def tool_results(self, request: dict[str, Any]) -> list[dict[str, Any]]:
        return [{"id": m["tool_call_id"], "text": m["content"].removeprefix("ERROR: "),
                 "is_error": m["content"].startswith("ERROR: ")}
                for m in _trailing(request["messages"], lambda m: m["role"] == "tool")]

    def tool_names(self, request: dict[str, Any]) -> list[str]:
        return [t["function"]["name"] for t in request.get("tools", [])]


class Gemini(Wire):
    def agent(self, api: FakeAPI, **config: Any) -> ModelAgent:
        from hud.agents.gemini import GeminiAgent

        return GeminiAgent("gemini-test", api_key="g-test", base_url=f"http://127.0.0.1:{api.port}",
                           **config)

    def _response(self, parts: list[dict[str, Any]]) -> dict[str, Any]:
        return {"candidates": [{"content": {"role": "model", "parts": parts},
                                "finishReason": "STOP", "index": 0}],
                "usageMetadata": {"promptTokenCount": 11, "candidatesTokenCount": 7,
                                  "totalTokenCount": 18},
                "modelVersion": "gemini-test"}

    def tool_call(self, call_id: str, name: str, args: dict[str, Any]) -> dict[str, Any]:
        return self._response([{"functionCall": {"id": call_id, "name": name, "args": args}}])

    def answer(self, text: str) -> dict[str, Any]:
        return self._response([{"text": text}])

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


def serve() -> Iterator[FakeAPI]:
    """A fixture body: a fake API, shut down afterwards."""
    api = FakeAPI()
    try:
        yield api
    finally:
        api.close()
