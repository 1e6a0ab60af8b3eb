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
off after that: hud's limits on it (`hud.agents.deadlines`: no content within the
timeout, the whole-request cap), a dropped connection, a body that ends before the
provider's final event, a retryable error event in it (Anthropic's `overloaded_error`).
A non-streaming request would have been retried there, so `retrying` tries the whole
request again, in the same budget as the SDK's retries (1 + max_retries HTTP requests per
model turn in all), and then raises the failure as the SDK reports it, or hud's
`RequestTimeout` for a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from hud.agents.deadlines import Clock, RequestTimeout, http_errors
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
                  retryable: Callable[[BaseException], bool] | None = None,
                  ) -> AsyncIterator[None]:
    """Mark the reading of a stream that has started: a `transient` failure in it, an
    error `retryable` says the SDK would retry, a timeout or a `StreamEnded` is retried
    by `retrying`; `report` turns a raw transport error into the SDK's own error class,
    as its non-streaming path would raise it."""
    try:
        yield
    except (StreamEnded, RequestTimeout) as exc:
        raise _Broken(exc) from exc
    except Exception as exc:
        if isinstance(exc, http_errors("TimeoutException")):
            raise _Broken(exc) from exc  # the SDK's own timeout, a backstop to hud's
        if isinstance(exc, transient):
            raise _Broken(report(exc) if report is not None else exc) from exc
        if retryable is not None and retryable(exc):
            raise _Broken(exc) from exc
        raise


async def retrying(attempt: Callable[[int], Awaitable[T]], clock: Clock) -> T:
    """Run `attempt` (one streamed request read to its end) until it does not break off,
    waiting a little longer before each new try. `attempt` is given the retries the SDK
    may still make of its request's start: every HTTP request sent counts against the
    one budget of `clock.retries`.

    Raises:
        RequestTimeout: the last try timed out (hud's limits, or the SDK's).
        Exception: the last broken stream's error (the SDK's connection error, a
            `StreamEnded`, a provider's error event); any other error of `attempt` at once.
    """
    start = clock.sent
    tries = 0
    try:
        while True:
            try:
                return await attempt(max(0, clock.retries - (clock.sent - start)))
            except _Broken as broken:
                if clock.sent - start > clock.retries or tries >= clock.retries:
                    raise broken.error from broken.error.__cause__
            await asyncio.sleep(min(MAX_BACKOFF, BACKOFF * 2 ** tries))
            tries += 1
    except Exception as exc:
        expired = clock.expired(exc, start)
        if expired is None:
            raise
        raise expired from exc


def assemble_chat(chunks: list[dict[str, Any]]) -> ChatCompletion:
    """Chat Completions chunks (as JSON) → the `ChatCompletion` a non-streaming request
    returns: text fields concatenated (`reasoning_content`/`reasoning` too), tool calls
    merged by `index` (by `id`, or onto the last call, when a server omits it), the
    first choice's finish reason, the usage of whichever chunk carried it.

    A delta at an index already used starts a new call when it carries another id, or,
    without an id, a name after the call's arguments were already whole JSON (Ollama
    sends every parallel call at index 0). Arguments sent as a JSON object instead of
    text are kept as that object (`parse_arguments` takes it as given); pieces of mixed
    kinds are joined as text, which then does not parse (a tool error for the model).

    Raises:
        StreamEnded: no chunk gave a finish reason (the stream was cut).
    """
    from openai.types.chat import ChatCompletion

    head: dict[str, Any] = {"id": "", "created": 0, "model": "", "object": "chat.completion"}
    texts: dict[str, list[str]] = {}
    calls: list[_ChatCall] = []
    by_index: dict[int, _ChatCall] = {}
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
                if isinstance(part, dict):
                    _chat_call(part, calls, by_index).add(part)
            finish = choice.get("finish_reason") or finish
    if finish is None:
        raise StreamEnded(f"the Chat Completions stream ended after {len(chunks)} chunk(s) "
                          f"without a finish_reason: {CUT_HINT}")
    message: dict[str, Any] = {"role": "assistant", "content": None}
    message.update({field: "".join(parts) for field, parts in texts.items()})
    if calls:
        message["tool_calls"] = [call.wire() for call in calls]
    return ChatCompletion.construct(**head, usage=usage, choices=[
        {"index": 0, "message": message, "finish_reason": finish, "logprobs": None}])


class _ChatCall:
    """One tool call being assembled from its deltas."""

    def __init__(self) -> None:
        self.id = ""
        self.name = ""
        #: the `arguments` of each delta, as sent (text pieces, or a whole object)
        self.pieces: list[Any] = []

    def add(self, part: dict[str, Any]) -> None:
        function = part.get("function") or {}
        self.id = part.get("id") or self.id
        self.name = function.get("name") or self.name
        if function.get("arguments") not in (None, ""):
            self.pieces.append(function["arguments"])

    def arguments(self) -> Any:
        """The text pieces joined; a lone object as it is."""
        if len(self.pieces) == 1 and not isinstance(self.pieces[0], str):
            return self.pieces[0]
        return "".join(p if isinstance(p, str) else json.dumps(p) for p in self.pieces)

    def whole(self) -> bool:
        """Whether the arguments so far are a complete JSON value."""
        arguments = self.arguments()
        if not isinstance(arguments, str):
            return True
        try:
            json.loads(arguments)
        except (ValueError, RecursionError):  # not JSON; nested past the parser's depth
            return False
        return True

    def starts_another(self, part: dict[str, Any]) -> bool:
        """Whether `part`, at this call's index, is the start of a different call: another
        id; or, without one, a name once the arguments are whole JSON, when the part
        brings arguments of its own or names another tool (a bare echo of the same name
        is not a call)."""
        if part.get("id"):
            return bool(self.id) and part["id"] != self.id
        function = part.get("function") or {}
        name = function.get("name")
        if not name or not self.pieces or not self.whole():
            return False
        return name != self.name or function.get("arguments") not in (None, "")

    def wire(self) -> dict[str, Any]:
        return {"id": self.id, "type": "function",
                "function": {"name": self.name, "arguments": self.arguments()}}


def _chat_call(part: dict[str, Any], calls: list[_ChatCall],
               by_index: dict[int, _ChatCall]) -> _ChatCall:
    """The tool call a delta continues, made when it starts a new one."""
    index = part.get("index")
    current = by_index.get(index) if isinstance(index, int) else None
    if current is not None and not current.starts_another(part):
        return current
    known = part.get("id") and next((c for c in calls if c.id == part["id"]), None)
    if known:
        if isinstance(index, int):
            by_index[index] = known
        return known
    if (index is None and calls and not part.get("id")
            and not calls[-1].starts_another(part)):
        return calls[-1]
    call = _ChatCall()
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
