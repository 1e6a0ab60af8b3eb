"""Server-sent events for the fake provider APIs: a scripted reply as a streamed answer.

Each function takes the JSON reply a `Wire` scripts (the body of a non-streaming
response) and returns the events the provider's API would stream for it, in its wire
format, with every text cut into more than one delta so that assembly is exercised:

    Anthropic   message_start, ping, content_block_start/delta/stop per block
                (text_delta, input_json_delta, thinking_delta + signature_delta),
                message_delta (stop_reason, output usage), message_stop
    Responses   response.created, response.in_progress, per output item
                output_item.added, its deltas (output_text, refusal, function call
                arguments, reasoning summary and text), output_item.done; then
                response.completed / response.incomplete / response.failed
    Chat        `data: {chunk}` lines (role, reasoning, content, refusal, tool-call
                deltas by index, the finish reason), a usage chunk when the request
                asked for one, `data: [DONE]`
    Gemini      `data: {chunk}` lines separated by CRLF; the last carries the finish
                reason and the full usage

A `Fault` makes one answer misbehave the way a slow or broken provider does: keep-alive
pings only (each wire's own: Anthropic's `ping` event, an SSE comment, Gemini's blank
line), events dripped out slowly, an error event midway, a JSON body trickled out.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

#: one server-sent event, encoded
Event = bytes


@dataclass
class Fault:
    """How the fake server misbehaves on one request; the default is not at all."""

    #: stream: after this many events, only keep-alive pings (every 0.1 s) until closed
    pings_after: int | None = None
    #: stream: seconds to wait before each event (each one is content)
    drip: float = 0.0
    #: stream: after `tail_after` events, send `tail` (an error event) and close
    tail: bytes = b""
    tail_after: int = 0
    #: plain: the JSON body's last 10 bytes sent one every `trickle` seconds
    trickle: float = 0.0
    #: extra response headers (`retry-after`)
    headers: dict[str, str] = field(default_factory=dict)


#: each wire's keep-alive: Anthropic's ping event, an SSE comment, Gemini's blank line
PINGS = {"anthropic": b'event: ping\ndata: {"type": "ping"}\n\n',
         "openai-responses": b": keep-alive\n\n", "chat-completions": b": keep-alive\n\n",
         "gemini": b"\r\n"}


def send(handler: BaseHTTPRequestHandler, events: list[Event], *, stall: int | None,
         cut: int | None, closing: threading.Event, fault: Fault | None = None,
         ping: bytes = b"") -> None:
    """Answer with `events` as a stream; before event number `stall` hang until `closing`
    is set, before event number `cut` close the connection (0-based); `fault` as it says."""
    fault = fault or Fault()
    handler.send_response(200)
    handler.send_header("content-type", "text/event-stream")
    handler.send_header("cache-control", "no-cache")
    handler.send_header("connection", "close")  # the end of the body ends the stream
    handler.end_headers()
    with contextlib.suppress(OSError):  # the client hung up (gave up on a slow answer)
        for sent, event in enumerate(events):
            if sent == stall:
                closing.wait(30)
                return
            if sent == cut:
                return
            if fault.tail and sent == fault.tail_after:
                handler.wfile.write(fault.tail)
                return
            if sent == fault.pings_after:
                while not closing.wait(0.1):
                    handler.wfile.write(ping)
                    handler.wfile.flush()
                return
            if fault.drip and closing.wait(fault.drip):
                return
            handler.wfile.write(event)
            handler.wfile.flush()


def reply(handler: BaseHTTPRequestHandler, status: int, body: dict[str, Any], *,
          closing: threading.Event, fault: Fault | None = None) -> None:
    """Answer with a JSON body (a plain request's, or an error status's)."""
    fault = fault or Fault()
    data = json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("content-type", "application/json")
    handler.send_header("content-length", str(len(data)))
    for name, value in fault.headers.items():
        handler.send_header(name, value)
    handler.end_headers()
    if not fault.trickle:
        handler.wfile.write(data)
        return
    with contextlib.suppress(OSError):  # the client hung up
        handler.wfile.write(data[:-10])
        for byte in data[-10:]:
            handler.wfile.flush()
            if closing.wait(fault.trickle):
                return
            handler.wfile.write(bytes([byte]))


def anthropic_events(reply: dict[str, Any], request: dict[str, Any]) -> list[Event]:
    """A Message as Anthropic streams it, usage split between start and delta."""
    message = copy.deepcopy(reply)
    content, usage = message.pop("content"), message["usage"]
    start = {**message, "content": [], "stop_reason": None, "stop_sequence": None,
             "usage": {"input_tokens": usage["input_tokens"], "output_tokens": 1}}
    out = [sse({"type": "message_start", "message": start}, "message_start"),
           sse({"type": "ping"}, "ping")]
    for index, block in enumerate(content):
        if block["type"] == "text":
            head = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": p} for p in pieces(block["text"])]
        elif block["type"] == "tool_use":
            head = {**block, "input": {}}
            deltas = [{"type": "input_json_delta", "partial_json": p}
                      for p in pieces(json.dumps(block["input"]))]
        elif block["type"] == "thinking":
            head = {"type": "thinking", "thinking": "", "signature": ""}
            deltas = [{"type": "thinking_delta", "thinking": p} for p in pieces(block["thinking"])]
            deltas.append({"type": "signature_delta", "signature": block["signature"]})
        else:  # redacted_thinking and the like come whole
            head, deltas = block, []
        out.append(sse({"type": "content_block_start", "index": index, "content_block": head},
                       "content_block_start"))
        out += [sse({"type": "content_block_delta", "index": index, "delta": d},
                    "content_block_delta") for d in deltas]
        out.append(sse({"type": "content_block_stop", "index": index}, "content_block_stop"))
    out.append(sse({"type": "message_delta",
                    "delta": {"stop_reason": reply["stop_reason"], "stop_sequence": None},
                    "usage": {"output_tokens": usage["output_tokens"]}}, "message_delta"))
    out.append(sse({"type": "message_stop"}, "message_stop"))
    return out


def responses_events(reply: dict[str, Any], request: dict[str, Any]) -> list[Event]:
    """A Response as the Responses API streams it; the terminal event by its status."""
    sequence = itertools.count()

    def event(kind: str, **fields: Any) -> Event:
        return sse({"type": kind, "sequence_number": next(sequence), **fields}, kind)

    pending = {**reply, "status": "in_progress", "output": [], "usage": None,
               "incomplete_details": None}
    out = [event("response.created", response=pending),
           event("response.in_progress", response=pending)]
    for index, item in enumerate(reply["output"]):
        at = {"item_id": item.get("id", ""), "output_index": index}
        shell = {**item, **{"message": {"content": []}, "function_call": {"arguments": ""},
                            "reasoning": {"summary": []}}.get(item["type"], {})}
        out.append(event("response.output_item.added", output_index=index, item=shell))
        if item["type"] == "message":
            for j, part in enumerate(item["content"]):
                key = "text" if part["type"] == "output_text" else "refusal"
                kind = "output_text" if key == "text" else "refusal"
                out.append(event("response.content_part.added", **at, content_index=j,
                                 part={**part, key: ""}))
                out += [event(f"response.{kind}.delta", **at, content_index=j, delta=p,
                              **({"logprobs": []} if key == "text" else {}))
                        for p in pieces(part[key])]
                out.append(event(f"response.{kind}.done", **at, content_index=j, **{key: part[key]},
                                 **({"logprobs": []} if key == "text" else {})))
                out.append(event("response.content_part.done", **at, content_index=j, part=part))
        elif item["type"] == "function_call":
            out += [event("response.function_call_arguments.delta", **at, delta=p)
                    for p in pieces(item["arguments"])]
            out.append(event("response.function_call_arguments.done", **at,
                             arguments=item["arguments"]))
        elif item["type"] == "reasoning":
            for j, part in enumerate(item["summary"]):
                out.append(event("response.reasoning_summary_part.added", **at, summary_index=j,
                                 part={**part, "text": ""}))
                out += [event("response.reasoning_summary_text.delta", **at, summary_index=j,
                              delta=p) for p in pieces(part["text"])]
                out.append(event("response.reasoning_summary_text.done", **at, summary_index=j,
                                 text=part["text"]))
                out.append(event("response.reasoning_summary_part.done", **at, summary_index=j,
                                 part=part))
            for j, part in enumerate(item.get("content") or []):
                out += [event("response.reasoning_text.delta", **at, content_index=j, delta=p)
                        for p in pieces(part["text"])]
                out.append(event("response.reasoning_text.done", **at, content_index=j,
                                 text=part["text"]))
        out.append(event("response.output_item.done", output_index=index, item=item))
    out.append(event(f"response.{reply['status']}", response=reply))
    return out


def chat_events(reply: dict[str, Any], request: dict[str, Any]) -> list[Event]:
    """`data: {chunk}` lines, then `data: [DONE]`; usage in a last chunk of no choices,
    only when the request asked for it (`stream_options.include_usage`), as OpenAI does."""
    head = {k: reply[k] for k in ("id", "created", "model")} | {"object": "chat.completion.chunk"}
    choice = reply["choices"][0]
    message = choice["message"]

    def chunk(delta: dict[str, Any], finish: str | None = None) -> Event:
        return sse({**head, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})

    out = [chunk({"role": "assistant", "content": ""})]
    for key in ("reasoning_content", "reasoning", "content", "refusal"):
        out += [chunk({key: p}) for p in pieces(message.get(key) or "")]
    for index, call in enumerate(message.get("tool_calls") or []):
        function = call["function"]
        out.append(chunk({"tool_calls": [{"index": index, "id": call["id"], "type": "function",
                                          "function": {"name": function["name"], "arguments": ""}}]}))
        arguments = function["arguments"]  # an object as it is: some servers send one
        out += [chunk({"tool_calls": [{"index": index, "function": {"arguments": p}}]})
                for p in (pieces(arguments) if isinstance(arguments, str) else [arguments])]
    out.append(chunk({}, choice["finish_reason"]))
    if (request.get("stream_options") or {}).get("include_usage"):
        out.append(sse({**head, "choices": [], "usage": reply["usage"]}))
    out.append(b"data: [DONE]\n\n")
    return out


def gemini_events(reply: dict[str, Any], request: dict[str, Any]) -> list[Event]:
    """One `data:` chunk per text piece or call; the last carries the finish reason and
    the full usage (earlier ones the prompt's only), as Gemini's SSE does."""
    if not reply.get("candidates"):
        return [sse(reply, crlf=True)]
    candidate = reply["candidates"][0]
    parts: list[dict[str, Any]] = []
    for part in candidate["content"]["parts"]:
        if "text" in part:
            rest = {k: v for k, v in part.items() if k not in ("text", "thoughtSignature")}
            parts += [{**rest, "text": t} for t in pieces(part["text"]) or [""]]
            if "thoughtSignature" in part:  # it comes with the part's last piece
                parts[-1]["thoughtSignature"] = part["thoughtSignature"]
        else:
            parts.append(part)
    usage = reply["usageMetadata"]
    out = []
    for i, piece in enumerate(parts):
        last = i == len(parts) - 1
        chunk: dict[str, Any] = {"candidates": [{
            "content": {"role": "model", "parts": [piece]}, "index": 0,
            **({"finishReason": candidate["finishReason"]} if last else {})}],
            "usageMetadata": usage if last else {"promptTokenCount": usage["promptTokenCount"]},
            "modelVersion": reply.get("modelVersion", "")}
        out.append(sse(chunk, crlf=True))
    return out


def sse(data: dict[str, Any], event: str | None = None, *, crlf: bool = False) -> Event:
    """One server-sent event: an `event:` line when named, the JSON `data:` line."""
    end = "\r\n" if crlf else "\n"
    head = f"event: {event}{end}" if event else ""
    return f"{head}data: {json.dumps(data)}{end}{end}".encode()


def pieces(text: str) -> list[str]:
    """Text cut in two deltas (one when short, none when empty), so assembly is exercised."""
    if len(text) < 2:
        return [text] if text else []
    return [text[:len(text) // 2], text[len(text) // 2:]]
