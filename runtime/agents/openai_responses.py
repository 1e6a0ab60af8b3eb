"""The OpenAI harness: the Responses API through the official `openai` SDK.

Wire mapping:
    Tool            -> {"type": "function", "name", "description", "parameters", "strict": False}
    model turn      <- Response: `output` items (`message`, `function_call`, `reasoning`),
                       `status` and `incomplete_details`, `usage`
    tool results    -> one `function_call_output` input item per call, by `call_id`
                       (images follow as a user message: function outputs carry text)

The conversation is kept on our side: each request sends the whole input list, with the
output items of earlier responses echoed back as the API sent them (reasoning items
included, so reasoning models keep their chain across tool calls). Nothing depends on
`previous_response_id`, so a fake server needs no state and `store=False` works.
One SDK client per rollout, closed with it. Reasoning items' summaries (and reasoning
text, which some servers send in `content`) go in the trace.

Streaming (`stream=True`): `responses.create(stream=True)`, and the Response carried by
the terminal event (`response.completed`, or `response.incomplete` when cut at the token
limit, which the SDK's `responses.stream()` helper cannot finish on), with each output
item as its `response.output_item.done` event gave it (the documented source of complete
reasoning items). A `response.failed` or `error` event raises the SDK's `APIError`; one
whose code a plain request would have been retried on (`server_error`, a 5xx;
`rate_limit_exceeded`, a 429), like a stream cut after it started, is retried (see
`hud.agents.streaming`). Every event but the
status ones (`response.created`, `.queued`, `.in_progress`) and keep-alives counts as
content for hud's limits (`hud.agents.deadlines`).

`openai` is imported when a conversation starts, never at `hud.agents` import time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hud.agents.base import (
    Conversation,
    ModelAgent,
    ToolCall,
    Turn,
    arguments_text,
    parse_arguments,
    png_base64,
)
from hud.agents.deadlines import Clock
from hud.agents.streaming import CUT_HINT, StreamEnded, reading, retrying
from hud.agents.tools import Tool, ToolResult

if TYPE_CHECKING:
    from openai import AsyncStream
    from openai.types.responses import Response, ResponseStreamEvent

KEY_VARIABLE = "OPENAI_API_KEY"
#: stream events that say the response is alive but carry none of it
STATUS_EVENTS = frozenset({"response.created", "response.queued", "response.in_progress",
                           "keepalive", "ping"})
#: error codes of a failed response or an `error` event that the SDK would have retried
#: as a plain request's status (500, 429)
RETRYABLE_CODES = frozenset({"server_error", "rate_limit_exceeded"})


class OpenAIResponsesAgent(ModelAgent):
    """OpenAI models (gpt-*, o-series) on the Responses API.

    Args:
        model: e.g. "gpt-5" or "o4-mini".
        api_key: defaults to $OPENAI_API_KEY.
        base_url: the API's address; the SDK's default (OpenAI's own API) when None.
        max_retries: retries of a failed request (see `ModelAgent`).
        timeout: hud's wall-clock limit on each API request (see `ModelAgent`).
        reasoning_effort: "low", "medium" or "high" for reasoning models; the API's default
            when None.
        store: whether OpenAI keeps the responses (`store`); reasoning items then travel
            encrypted in the history instead.
        **options: see `ModelAgent` (max_steps, system, max_tokens, tools).

    Raises:
        ConfigError: no key is given and $OPENAI_API_KEY is not set.
    """

    key_variables = (KEY_VARIABLE,)

    def __init__(self, model: str, *, reasoning_effort: str | None = None, store: bool = True,
                 **options: Any) -> None:
        super().__init__(model, **options)
        self.reasoning_effort = reasoning_effort
        self.store = store

    def conversation(self, prompt: str, tools: list[Tool]) -> Conversation:
        return ResponsesConversation(self, prompt, tools)


class ResponsesConversation(Conversation):
    """One rollout's input items with the Responses API."""

    def __init__(self, agent: OpenAIResponsesAgent, prompt: str, tools: list[Tool]) -> None:
        import openai

        self.agent = agent
        self.clock = Clock(agent.timeout, agent.max_retries, agent.base_url or "the OpenAI API")
        self.client = openai.AsyncOpenAI(
            api_key=agent.api_key, base_url=agent.base_url, max_retries=agent.max_retries,
            timeout=self.clock.sdk_timeout,
            http_client=self.clock.http_client(openai.DefaultAsyncHttpxClient))
        from hud.agents import openai_computer

        self.tools = []
        native = openai_computer.wants_native(agent.model)
        for t in tools:
            if native and t.name == "computer" and "display" in t.meta:
                self.tools.append(openai_computer.declaration(t.meta["display"]))
            else:
                self.tools.append({"type": "function", "name": t.name,
                                   "description": t.description, "parameters": t.parameters,
                                   "strict": False})
        self.input: list[Any] = [{"role": "user", "content": prompt}]
        #: call_id -> safety checks of a native computer call, acknowledged in the reply
        self.computer_calls: dict[str, list[Any]] = {}

    async def ask(self) -> Turn:
        agent = self.agent
        options: dict[str, Any] = {}
        if self.tools:
            options["tools"] = self.tools
        if agent.system:
            options["instructions"] = agent.system
        if agent.max_tokens:
            options["max_output_tokens"] = agent.max_tokens
        if agent.reasoning_effort:
            options["reasoning"] = {"effort": agent.reasoning_effort}
        if not agent.store:
            options["store"] = False
            options["include"] = ["reasoning.encrypted_content"]
        request = {"model": agent.model, "input": self.input, **options}
        if agent.stream:
            response = await retrying(lambda retries: self._streamed(request, retries),
                                      self.clock)
        else:
            response = await self.clock.plain(lambda: self.client.responses.create(**request))
        texts: list[str] = []
        calls: list[ToolCall] = []
        thinking: list[str] = []
        refused = False
        for item in response.output:
            self.input.append(item.model_dump(mode="json", exclude_unset=True, by_alias=True))
            if item.type == "message":
                for part in item.content:
                    if part.type == "output_text":
                        texts.append(part.text)
                    elif part.type == "refusal":
                        texts.append(part.refusal)
                        refused = True
            elif item.type == "function_call":
                calls.append(ToolCall(item.call_id, item.name, parse_arguments(item.arguments),
                                      arguments_text(item.arguments)))
            elif item.type == "computer_call":
                from hud.agents.openai_computer import to_hud

                action = item.action.model_dump(mode="json") if item.action is not None else {}
                self.computer_calls[item.call_id] = [
                    c.model_dump(mode="json") for c in (item.pending_safety_checks or [])]
                calls.append(ToolCall(item.call_id, "computer", to_hud(action), repr(action)))
            elif item.type == "reasoning":
                thinking += [part.text for part in item.summary if part.text]
                thinking += [part.text for part in item.content or [] if part.text]
        usage: dict[str, int] = {}
        if response.usage is not None:
            usage = {"input_tokens": response.usage.input_tokens,
                     "output_tokens": response.usage.output_tokens}
            details = response.usage.output_tokens_details
            if details is not None and getattr(details, "reasoning_tokens", None):
                usage["reasoning_tokens"] = details.reasoning_tokens
        finish: str | None = response.status
        stop = None
        if refused:
            stop = "refused"
        elif response.status == "incomplete":
            reason = getattr(response.incomplete_details, "reason", None)
            finish = f"incomplete: {reason}"
            stop = "refused" if reason == "content_filter" else "max_tokens"
        return Turn(text="".join(texts), calls=calls, usage=usage, finish=finish, stop=stop,
                    thinking=thinking)

    async def _streamed(self, request: dict[str, Any], retries: int) -> Response:
        """One streamed request (its start tried `retries` more times by the SDK): the
        Response of its terminal event."""
        import openai

        client = self.client.with_options(max_retries=retries)
        stream: AsyncStream[ResponseStreamEvent] = await client.responses.create(
            **request, stream=True)  # the SDK retries this
        async with stream, reading((openai.APIConnectionError,), retryable=_retryable), \
                self.clock.pacing() as pace:
            done: dict[int, Any] = {}
            async for event in stream:
                if event.type not in STATUS_EVENTS:
                    pace.progress()
                if event.type == "response.output_item.done":
                    done[event.output_index] = event.item
                elif event.type == "error":
                    raise openai.APIError(f"the response stream failed: {event.message}",
                                          stream.response.request, body=event.to_dict())
                elif event.type == "response.failed":
                    error = event.response.error
                    raise openai.APIError(f"the response failed: {error.message if error else '?'}",
                                          stream.response.request, body=event.response.to_dict())
                elif event.type == "response.completed" or event.type == "response.incomplete":
                    response = event.response
                    given = response.output or [done[i] for i in sorted(done)]
                    response.output = [done.get(i, item) for i, item in enumerate(given)]
                    return response
            raise StreamEnded(f"the Responses stream ended before its response.completed "
                              f"event ({len(done)} output item(s) read): {CUT_HINT}")

    def reply(self, results: list[tuple[ToolCall, ToolResult]]) -> None:
        images: list[dict[str, Any]] = []
        for call, result in results:
            text = result.text or "(no output)"
            if call.id in self.computer_calls:
                self._computer_output(call.id, result)
                continue
            self.input.append({"type": "function_call_output", "call_id": call.id,
                               "output": f"ERROR: {text}" if result.is_error else text})
            images += [{"type": "input_image", "detail": "auto",
                        "image_url": f"data:image/png;base64,{png_base64(image)}"}
                       for image in result.images]
        if images:
            self.input.append({"role": "user", "content": [
                {"type": "input_text", "text": "Images returned by the tool calls above:"}, *images]})

    async def close(self) -> None:
        await self.client.close()

    def _computer_output(self, call_id: str, result: ToolResult) -> None:
        """A native computer call is answered with a screenshot (the action's, or a blank
        pixel plus the error as text when the action failed before taking one)."""
        from hud.clients.rfb import encode_png

        image = result.images[-1] if result.images else encode_png(1, 1, b"\x00\x00\x00")
        self.input.append({
            "type": "computer_call_output", "call_id": call_id,
            "acknowledged_safety_checks": self.computer_calls.pop(call_id),
            "output": {"type": "computer_screenshot",
                       "image_url": f"data:image/png;base64,{png_base64(image)}"}})
        if result.is_error or not result.images:
            self.input.append({"role": "user", "content": [
                {"type": "input_text", "text": f"The computer action failed: {result.text}"}]})


def _retryable(exc: BaseException) -> bool:
    """Whether a failed response or an `error` event is one a plain request would have
    been retried on (its code in RETRYABLE_CODES)."""
    import openai

    if not isinstance(exc, openai.APIError) or not isinstance(exc.body, dict):
        return False
    error = exc.body.get("error")
    code = exc.body.get("code") or (error.get("code") if isinstance(error, dict) else None)
    return code in RETRYABLE_CODES
