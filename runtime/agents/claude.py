"""The Claude harness: Anthropic's Messages API through the official `anthropic` SDK.

Wire mapping:
    Tool            -> {"name", "description", "input_schema"}
    model turn      <- Message: `text` and `tool_use` blocks, `stop_reason`, `usage`
    tool results    -> one user message of `tool_result` blocks (text, PNG images,
                       `is_error`), answering every `tool_use` of the turn by id

Claude is trained on Anthropic's own bash and text-editor tools, so with `native_tools`
(the default, except for claude-3 models) the toolset's `bash` and `edit` are declared as
those (`bash_20250124`, `text_editor_20250728` named `str_replace_based_edit_tool`) and
their calls are routed back to ours: the argument names are the same.

The assistant's blocks go back in the history as the API sent them (thinking blocks
keep their signatures), so extended thinking works across tool calls; their text goes
in the trace (`redacted_thinking` as "[redacted]"). One SDK client per rollout, closed
with it: an HTTP connection pool belongs to one event loop.

Streaming (`stream=True`): `client.messages.stream(...)` and the SDK's own assembly,
`get_final_message()`, so the Message handled is the one a plain request returns. Every
event but `ping` (which the SDK drops) counts as content for hud's limits
(`hud.agents.deadlines`). A stream cut after it started, or broken off by an error event
the API would have answered a plain request with as a retried status (`overloaded_error`
for 529, `api_error`, `rate_limit_error`, `timeout_error`), is retried (see
`hud.agents.streaming`).

`anthropic` is imported when a conversation starts, never at `hud.agents` import time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hud.agents.base import Conversation, ModelAgent, ToolCall, Turn, png_base64
from hud.agents.deadlines import Clock, http_errors
from hud.agents.streaming import CUT_HINT, StreamEnded, reading, retrying
from hud.agents.tools import Tool, ToolResult

if TYPE_CHECKING:
    from anthropic.types import ContentBlock, Message

KEY_VARIABLE = "ANTHROPIC_API_KEY"
#: our tool name -> the Anthropic-defined tool declared in its place
NATIVE_TOOLS = {
    "bash": {"type": "bash_20250124", "name": "bash"},
    "edit": {"type": "text_editor_20250728", "name": "str_replace_based_edit_tool"},
}
#: output tokens per turn when the agent sets no max_tokens (the API requires a value)
CLAUDE_MAX_TOKENS = 16384
#: error types of a stream's `error` event that a plain request gets as a status the SDK
#: retries (529, 500, 429, 504)
RETRYABLE_ERRORS = frozenset({"overloaded_error", "api_error", "rate_limit_error",
                              "timeout_error"})


class ClaudeAgent(ModelAgent):
    """Claude models on the Anthropic Messages API.

    Args:
        model: e.g. "claude-sonnet-4-5".
        api_key: defaults to $ANTHROPIC_API_KEY.
        base_url: the API's address; the SDK's default (Anthropic's own API) when None.
        max_retries: retries of a failed request (see `ModelAgent`).
        timeout: hud's wall-clock limit on each API request (see `ModelAgent`).
        thinking_budget: tokens of extended thinking per turn; off when None.
        native_tools: declare `bash` and `edit` as Anthropic's bash and text-editor tools;
            None means yes except for claude-3 models.
        **options: see `ModelAgent` (max_steps, system, max_tokens, tools).

    Raises:
        ConfigError: no key is given and $ANTHROPIC_API_KEY is not set.
    """

    key_variables = (KEY_VARIABLE,)

    def __init__(self, model: str, *, thinking_budget: int | None = None,
                 native_tools: bool | None = None, **options: Any) -> None:
        super().__init__(model, **options)
        self.thinking_budget = thinking_budget
        self.native_tools = not model.startswith("claude-3") if native_tools is None else native_tools

    def conversation(self, prompt: str, tools: list[Tool]) -> Conversation:
        return ClaudeConversation(self, prompt, tools)


class ClaudeConversation(Conversation):
    """One rollout's message history with Claude."""

    def __init__(self, agent: ClaudeAgent, prompt: str, tools: list[Tool]) -> None:
        import anthropic

        self.agent = agent
        self.clock = Clock(agent.timeout, agent.max_retries, agent.base_url or "the Anthropic API")
        self.client = anthropic.AsyncAnthropic(
            api_key=agent.api_key, base_url=agent.base_url, max_retries=agent.max_retries,
            timeout=self.clock.sdk_timeout,
            http_client=self.clock.http_client(anthropic.DefaultAsyncHttpxClient))
        self.tools: list[dict[str, Any]] = []
        #: tool name on the wire -> our tool's name, for the native tools
        self.aliases: dict[str, str] = {}
        #: wire names whose input must be translated to our tool's arguments
        self.translate: dict[str, Any] = {}
        for tool in tools:
            native = NATIVE_TOOLS.get(tool.name) if agent.native_tools else None
            if agent.native_tools and tool.name == "computer" and "display" in tool.meta:
                from hud.agents import claude_computer

                self.tools.append(claude_computer.declaration(tool.meta["display"]))
                self.translate["computer"] = claude_computer.to_hud
            elif native is not None:
                self.tools.append(dict(native))
                self.aliases[native["name"]] = tool.name
            else:
                self.tools.append({"name": tool.name, "description": tool.description,
                                   "input_schema": tool.parameters})
        self.messages: list[Any] = [{"role": "user", "content": prompt}]

    async def ask(self) -> Turn:
        agent = self.agent
        options: dict[str, Any] = {}
        if self.tools:
            options["tools"] = self.tools
        if agent.system:
            options["system"] = agent.system
        if agent.thinking_budget:
            options["thinking"] = {"type": "enabled", "budget_tokens": agent.thinking_budget}
        request = {"model": agent.model, "max_tokens": agent.max_tokens or CLAUDE_MAX_TOKENS,
                   "messages": self.messages, **options}
        if agent.stream:
            message = await retrying(lambda retries: self._streamed(request, retries),
                                     self.clock)
        else:
            message = await self.clock.plain(lambda: self.client.messages.create(**request))
        self.messages.append({"role": "assistant",
                              "content": [_block_param(block) for block in message.content]})
        text = "".join(block.text for block in message.content if block.type == "text")
        calls = [ToolCall(block.id, self.aliases.get(block.name, block.name),
                          self._arguments(block.name, block.input), repr(block.input))
                 for block in message.content if block.type == "tool_use"]
        usage = {"input_tokens": message.usage.input_tokens,
                 "output_tokens": message.usage.output_tokens}
        for extra in ("cache_read_input_tokens", "cache_creation_input_tokens"):
            if getattr(message.usage, extra, None):
                usage[extra] = getattr(message.usage, extra)
        stop = {"refusal": "refused", "max_tokens": "max_tokens",
                "model_context_window_exceeded": "max_tokens"}.get(message.stop_reason or "")
        thinking = [block.thinking if block.type == "thinking" else "[redacted]"
                    for block in message.content
                    if block.type in ("thinking", "redacted_thinking")]
        return Turn(text=text, calls=calls, usage=usage, finish=message.stop_reason, stop=stop,
                    thinking=thinking)

    async def _streamed(self, request: dict[str, Any], retries: int) -> Message:
        """One streamed request (its start tried `retries` more times by the SDK),
        assembled by the SDK into the final Message."""
        import anthropic

        def report(exc: BaseException) -> BaseException:
            # what the SDK raises when the same failure hits a non-streaming request (a
            # timeout never comes here: `reading` keeps it for hud's RequestTimeout)
            try:
                sent = exc.request  # type: ignore[attr-defined]
            except (AttributeError, RuntimeError):  # httpx raises when it has none
                sent = None
            return anthropic.APIConnectionError(message=f"the stream broke off: {exc!r}",
                                                request=sent)

        # entering the stream sends the request (the SDK retries that part)
        client = self.client.with_options(max_retries=retries)
        async with (client.messages.stream(**request) as stream,
                    reading(http_errors(), report, _retryable), self.clock.pacing() as pace):
            async for _event in stream:
                pace.progress()
            message = await stream.get_final_message()
            if message.stop_reason is None:
                raise StreamEnded(f"the Claude stream ended before its message_delta event "
                                  f"({len(message.content)} block(s) read): {CUT_HINT}")
        return message

    def _arguments(self, name: str, raw: Any) -> dict[str, Any] | None:
        if not isinstance(raw, dict):
            return None
        translate = self.translate.get(name)
        return translate(raw) if translate is not None else raw

    def reply(self, results: list[tuple[ToolCall, ToolResult]]) -> None:
        blocks = []
        for call, result in results:
            content: list[dict[str, Any]] = [{"type": "text", "text": result.text or "(no output)"}]
            content += [{"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                     "data": png_base64(image)}}
                        for image in result.images]
            blocks.append({"type": "tool_result", "tool_use_id": call.id, "content": content,
                           "is_error": result.is_error})
        self.messages.append({"role": "user", "content": blocks})

    async def close(self) -> None:
        await self.client.close()


def _retryable(exc: BaseException) -> bool:
    """Whether a stream's error event is one a plain request would have been retried on."""
    import anthropic

    if not isinstance(exc, anthropic.APIStatusError) or not isinstance(exc.body, dict):
        return False
    error = exc.body.get("error")
    return isinstance(error, dict) and error.get("type") in RETRYABLE_ERRORS


def _block_param(block: ContentBlock) -> dict[str, Any]:
    """A response content block as a request content block."""
    if block.type == "text":
        return {"type": "text", "text": block.text}
    if block.type == "tool_use":
        return {"type": "tool_use", "id": block.id, "name": block.name, "input": block.input}
    if block.type == "thinking":
        return {"type": "thinking", "thinking": block.thinking, "signature": block.signature}
    if block.type == "redacted_thinking":
        return {"type": "redacted_thinking", "data": block.data}
    return block.model_dump(mode="json", exclude_unset=True)
