"""Streamed answers: read to their end, tried again when cut, assembled into one response.

With `stream=True` a harness sends a streaming request and assembles the final response
object its non-streaming path handles, so history, tool calls, usage and stop reasons do
not depend on the mode. Claude's and the Responses API's final objects come from the SDK
(`get_final_message()`, the terminal `response.*` event); this module assembles the two
that have no such helper usable here:

- Chat Completions chunks (`assemble_chat`). The SDK's `chat.completions.stream()` helper
  needs every tool-call delta to carry its `index` (some servers omit it), replaces the
  usage with each chunk's (a server that sends it before a last usage-less chunk loses
  it), and skips chunks whose `object` is not exactly "chat.completion.chunk"; the plain
  `create(stream=True)` SSE form with our own merge is what vLLM, SGLang, llama.cpp and
  Ollama all answer, so that is what we use.
- Gemini chunks (`assemble_gemini`): parts concatenated in order (adjacent text pieces
  of the same kind joined, a thought signature kept at the end of the text it closed),
  the last finish reason, the last (cumulative) usage.

Retries: the SDKs retry a request that fails before its response starts (connection
refused, 429/5xx, no headers within the timeout), but none retries a stream that breaks
off after that: no chunk within the timeout (the httpx read timeout is per chunk), a
dropped connection, a body that ends before the provider's final event. A non-streaming
request would have been retried there, so `retrying` tries the whole request again, up
to the agent's `max_retries`, and then raises the failure as the SDK reports it.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from hud.errors import HudError

if TYPE_CHECKING:
    from google.genai import types as genai_types
    from openai.types.chat import ChatCompletion

T = TypeVar("T")
#: seconds before the first retry of a broken stream, doubled each time, at most MAX_BACKOFF
BACKOFF = 0.5
MAX_BACKOFF = 8.0
#: the Chat Completions delta fields that carry text, concatenated across chunks
CHAT_TEXT_FIELDS = ("content", "refusal", "reasoning_content", "reasoning")
#: what a StreamEnded message suggests
CUT_HINT = ("the connection was cut or the server stopped early (raise max_retries to try "
            "again; check any proxy's limits)")


class StreamEnded(HudError):
    """A streamed answer ended before the provider's final event (a cut connection)."""


class _Broken(Exception):  # control flow between `reading` and `retrying`
    """A stream broke off after it started; `error` is what to report if retries run out."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


@contextlib.asynccontextmanager
async def reading(transient: tuple[type[BaseException], ...],
                  report: Callable[[BaseException], BaseException] | None = None,
                  ) -> AsyncIterator[None]:
    """Mark the reading of a stream that has started: a `transient` failure in it (or a
    `StreamEnded`) is retried by `retrying`; `report` turns a raw transport error into
    the SDK's own error class, as its non-streaming path would raise it."""
    try:
        yield
    except StreamEnded as exc:
        raise _Broken(exc) from exc
    except transient as exc:
        raise _Broken(report(exc) if report is not None else exc) from exc


async def retrying(attempt: Callable[[], Awaitable[T]], retries: int) -> T:
    """Run `attempt` (one streamed request read to its end) until it does not break off,
    at most `retries` more times, waiting a little longer before each.

    Raises:
        Exception: the last broken stream's error (the SDK's timeout or connection
            error, or `StreamEnded`); any other error of `attempt` at once.
    """
    tries = 0
    while True:
        try:
            return await attempt()
        except _Broken as broken:
            if tries >= retries:
                raise broken.error from broken.error.__cause__
        await asyncio.sleep(min(MAX_BACKOFF, BACKOFF * 2 ** tries))
        tries += 1


def http_errors(name: str = "TransportError") -> tuple[type[BaseException], ...]:
    """An error class of the SDKs' HTTP library, by name: "TransportError" (a read that
    timed out, a connection that broke) or "TimeoutException" (httpx2 under the current
    SDKs; httpx's too when it is installed)."""
    found: list[type[BaseException]] = []
    for module in ("httpx2", "httpx"):
        with contextlib.suppress(ImportError):
            found.append(getattr(importlib.import_module(module), name))
    return tuple(found)


def assemble_chat(chunks: list[dict[str, Any]]) -> ChatCompletion:
    """Chat Completions chunks (as JSON) → the `ChatCompletion` a non-streaming request
    returns: text fields concatenated (`reasoning_content`/`reasoning` too), tool calls
    merged by `index` (by `id`, or onto the last call, when a server omits it), the
    first choice's finish reason, the usage of whichever chunk carried it.

    Raises:
        StreamEnded: no chunk gave a finish reason (the stream was cut).
    """
    from openai.types.chat import ChatCompletion

    head: dict[str, Any] = {"id": "", "created": 0, "model": "", "object": "chat.completion"}
    texts: dict[str, list[str]] = {}
    calls: list[dict[str, Any]] = []
    by_index: dict[int, dict[str, Any]] = {}
    finish: str | None = None
    usage: dict[str, Any] | None = None
    for chunk in chunks:
        head.update({k: chunk[k] for k in ("id", "created", "model", "system_fingerprint")
                     if chunk.get(k) is not None})
        usage = chunk.get("usage") or usage
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue  # n > 1 is never asked for
            delta = choice.get("delta") or {}
            for field in CHAT_TEXT_FIELDS:
                if isinstance(delta.get(field), str):
                    texts.setdefault(field, []).append(delta[field])
            for part in delta.get("tool_calls") or []:
                call = _chat_call(part, calls, by_index)
                function = part.get("function") or {}
                call["id"] = part.get("id") or call["id"]
                call["function"]["name"] = function.get("name") or call["function"]["name"]
                call["function"]["arguments"] += function.get("arguments") or ""
            finish = choice.get("finish_reason") or finish
    if finish is None:
        raise StreamEnded(f"the Chat Completions stream ended after {len(chunks)} chunk(s) "
                          f"without a finish_reason: {CUT_HINT}")
    message: dict[str, Any] = {"role": "assistant", "content": None}
    message.update({field: "".join(parts) for field, parts in texts.items()})
    if calls:
        message["tool_calls"] = calls
    return ChatCompletion.construct(**head, usage=usage, choices=[
        {"index": 0, "message": message, "finish_reason": finish, "logprobs": None}])


def _chat_call(part: dict[str, Any], calls: list[dict[str, Any]],
               by_index: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """The tool call a delta continues, made when it starts a new one."""
    index = part.get("index")
    if isinstance(index, int) and index in by_index:
        return by_index[index]
    known = part.get("id") and next((c for c in calls if c["id"] == part["id"]), None)
    if known:
        return known
    if index is None and calls and not part.get("id"):
        return calls[-1]
    call = {"id": "", "type": "function", "function": {"name": "", "arguments": ""}}
    calls.append(call)
    if isinstance(index, int):
        by_index[index] = call
    return call


def assemble_gemini(chunks: list[genai_types.GenerateContentResponse],
                    ) -> genai_types.GenerateContentResponse:
    """Gemini's streamed chunks → the `GenerateContentResponse` a non-streaming request
    returns (first candidate only; the request never asks for more).

    Raises:
        StreamEnded: no chunk gave a finish reason or a blocked-prompt feedback.
    """
    from google.genai import types

    parts: list[types.Part] = []
    finish: types.FinishReason | None = None
    usage: types.GenerateContentResponseUsageMetadata | None = None
    feedback: types.GenerateContentResponsePromptFeedback | None = None
    for chunk in chunks:
        usage = chunk.usage_metadata or usage
        feedback = chunk.prompt_feedback or feedback
        for candidate in chunk.candidates or []:
            if candidate.index:
                continue
            finish = candidate.finish_reason or finish
            for part in (candidate.content.parts if candidate.content else None) or []:
                _add_part(parts, part)
    if finish is None and feedback is None:
        raise StreamEnded(f"the Gemini stream ended after {len(chunks)} chunk(s) without a "
                          f"finish reason: {CUT_HINT}")
    candidates = [types.Candidate(content=types.Content(role="model", parts=parts),
                                  finish_reason=finish, index=0)] if parts or finish else []
    return types.GenerateContentResponse(candidates=candidates, usage_metadata=usage,
                                         prompt_feedback=feedback)


def _add_part(parts: list[genai_types.Part], part: genai_types.Part) -> None:
    """Append a streamed part, joining it to the text piece before it when both are plain
    text of the same kind (thought or not) and the earlier one was not closed by a
    thought signature."""
    last = parts[-1] if parts else None
    if (last is not None and _plain_text(last) and _plain_text(part)
            and bool(last.thought) == bool(part.thought) and last.thought_signature is None):
        last.text = (last.text or "") + (part.text or "")
        last.thought_signature = part.thought_signature
        return
    parts.append(part.model_copy(deep=True))


def _plain_text(part: genai_types.Part) -> bool:
    fields = set(part.model_dump(exclude_none=True))
    return "text" in fields and fields <= {"text", "thought", "thought_signature"}
