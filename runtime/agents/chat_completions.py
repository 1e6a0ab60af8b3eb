"""The OpenAI-compatible harness: Chat Completions with function tools, any `base_url`.

For servers that speak OpenAI's Chat Completions (vLLM, SGLang, llama.cpp, Ollama, a
trainer's own inference server...). `create_agent("MODEL", base_url=URL)` or
`create_agent("openai-compatible:MODEL", base_url=URL)` picks it.

Wire mapping:
    Tool            -> {"type": "function", "function": {"name", "description", "parameters"}}
    model turn      <- choices[0].message: `content`, `tool_calls` (JSON text arguments),
                       `finish_reason`, `usage`
    tool results    -> one {"role": "tool", "tool_call_id", "content"} message per call
                       (images follow as a user message of image_url parts)

The server is `base_url=`, else $OPENAI_BASE_URL, else OpenAI's own API. The key comes
from `api_key=`, else $OPENAI_API_KEY (or the variable `api_key_env=` names); local
servers often need none, so a missing key is only an error for OpenAI's own API.

Reasoning text that servers send beside the answer (`reasoning_content`: DeepSeek,
llama.cpp, older vLLM; `reasoning`: newer vLLM, OpenRouter) goes in the trace; it is
not sent back, as those servers ask.

Streaming (`stream=True`): the plain SSE form, `create(stream=True, stream_options=
{"include_usage": True})`, with the chunks assembled by `hud.agents.streaming` into the
ChatCompletion a plain request returns (the SDK's `.stream()` helper is stricter than
many OpenAI-compatible servers are); a server that ignores `stream_options` gives no
usage. A stream cut after it started is retried. A chunk counts as content for hud's
limits (`hud.agents.deadlines`) when it carries text, a tool call, a finish reason or the
usage: an empty one (some servers' keep-alive) does not.

`openai` is imported when a conversation starts, never at `hud.agents` import time.
"""

from __future__ import annotations

import os
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
from hud.agents.streaming import assemble_chat, reading, retrying
from hud.agents.tools import Tool, ToolResult
from hud.errors import ConfigError

if TYPE_CHECKING:
    from openai import AsyncStream
    from openai.types.chat import ChatCompletion, ChatCompletionChunk

KEY_VARIABLE = "OPENAI_API_KEY"
#: where the server is when no base_url is given (the openai SDK's own variable)
BASE_URL_VARIABLE = "OPENAI_BASE_URL"
#: sent when a local server needs no key (the SDK insists on one)
NO_KEY = "not-needed"


class ChatCompletionsAgent(ModelAgent):
    """Any model behind an OpenAI-compatible Chat Completions endpoint.

    Args:
        model: the model id the server knows.
        base_url: the server's API root, e.g. "http://127.0.0.1:8000/v1".
        api_key: defaults to $OPENAI_API_KEY; a placeholder for servers that need none.
        max_retries: retries of a failed request (see `ModelAgent`).
        timeout: hud's wall-clock limit on each API request (see `ModelAgent`).
        temperature: sampling temperature; the server's default when None.
        extra_body: extra JSON fields some servers take (e.g. vLLM's sampling options).
        **options: see `ModelAgent` (max_steps, system, max_tokens, tools).

    Raises:
        ConfigError: no `base_url`, no key given, and $OPENAI_API_KEY is not set.
    """

    key_variables = (KEY_VARIABLE,)

    def __init__(self, model: str, *, temperature: float | None = None,
                 extra_body: dict[str, Any] | None = None, **options: Any) -> None:
        if not options.get("base_url"):
            options["base_url"] = os.environ.get(BASE_URL_VARIABLE) or None
        super().__init__(model, **options)
        self.temperature = temperature
        self.extra_body = extra_body

    def resolve_key(self, given: str | None) -> str:
        """A server of your own (`base_url`) may need no key: send a placeholder then."""
        if self.base_url is not None and self.api_key_env is None:
            return given or os.environ.get(KEY_VARIABLE) or NO_KEY
        try:
            return super().resolve_key(given)
        except ConfigError as exc:
            if self.base_url is not None:  # the variable the caller named is not set
                raise
            raise ConfigError(f"{exc}; a server of your own needs no key: give its base URL "
                              f"(--base-url URL, or ${BASE_URL_VARIABLE})") from None

    def conversation(self, prompt: str, tools: list[Tool]) -> Conversation:
        return ChatConversation(self, prompt, tools)




class ChatConversation(Conversation):
    """One rollout's messages with a Chat Completions endpoint."""

    def __init__(self, agent: ChatCompletionsAgent, prompt: str, tools: list[Tool]) -> None:
        import openai

        self.agent = agent
        self.clock = Clock(agent.timeout, agent.max_retries, agent.base_url or "the OpenAI API")
        self.client = openai.AsyncOpenAI(
            api_key=agent.api_key, base_url=agent.base_url, max_retries=agent.max_retries,
            timeout=self.clock.sdk_timeout,
            http_client=self.clock.http_client(openai.DefaultAsyncHttpxClient))
        self.tools = [{"type": "function", "function": {
            "name": t.name, "description": t.description, "parameters": t.parameters}}
            for t in tools]
        self.messages: list[Any] = []
        if agent.system:
            self.messages.append({"role": "system", "content": agent.system})
        self.messages.append({"role": "user", "content": prompt})

    async def ask(self) -> Turn:
        agent = self.agent
        options: dict[str, Any] = {}
        if self.tools:
            options["tools"] = self.tools
        if agent.max_tokens:
            options["max_tokens"] = agent.max_tokens
        if agent.temperature is not None:
            options["temperature"] = agent.temperature
        if agent.extra_body:
            options["extra_body"] = agent.extra_body
        request = {"model": agent.model, "messages": self.messages, **options}
        if agent.stream:
            completion = await retrying(lambda retries: self._streamed(request, retries),
                                        self.clock)
        else:
            completion = await self.clock.plain(
                lambda: self.client.chat.completions.create(**request))
        if not completion.choices:
            raise ValueError(f"the server at {agent.base_url} answered with no choices: "
                             f"{completion.model_dump_json()[:500]}")
        choice = completion.choices[0]
        message = choice.message
        # `arguments` is JSON text on the wire, but some servers send the object itself
        calls = [ToolCall(c.id, c.function.name, parse_arguments(c.function.arguments),
                          arguments_text(c.function.arguments))
                 for c in message.tool_calls or [] if c.type == "function"]
        entry: dict[str, Any] = {"role": "assistant", "content": message.content or ""}
        if calls:
            entry["tool_calls"] = [{"id": c.id, "type": "function",
                                    "function": {"name": c.name, "arguments": c.raw or "{}"}}
                                   for c in calls]
        self.messages.append(entry)
        usage: dict[str, int] = {}
        if completion.usage is not None:
            usage = {"input_tokens": completion.usage.prompt_tokens,
                     "output_tokens": completion.usage.completion_tokens}
        stop = None
        if message.refusal or choice.finish_reason == "content_filter":
            stop = "refused"
        elif choice.finish_reason == "length":
            stop = "max_tokens"
        reasoning = getattr(message, "reasoning_content", None) or getattr(message, "reasoning", None)
        return Turn(text=message.content or message.refusal or "", calls=calls, usage=usage,
                    finish=choice.finish_reason, stop=stop,
                    thinking=[reasoning] if isinstance(reasoning, str) and reasoning else [])

    async def _streamed(self, request: dict[str, Any], retries: int) -> ChatCompletion:
        """One streamed request (its start tried `retries` more times by the SDK), its
        chunks assembled into a ChatCompletion."""
        import openai

        client = self.client.with_options(max_retries=retries)
        stream: AsyncStream[ChatCompletionChunk] = await client.chat.completions.create(
            **request, stream=True, stream_options={"include_usage": True})  # the SDK retries this
        async with stream, reading((openai.APIConnectionError,)), self.clock.pacing() as pace:
            chunks: list[dict[str, Any]] = []
            async for chunk in stream:
                # no warning for fields of another type (object arguments): assembly copes
                chunks.append(chunk.to_dict(warnings=False))
                if _carries_content(chunks[-1]):
                    pace.progress()
            return assemble_chat(chunks)

    def reply(self, results: list[tuple[ToolCall, ToolResult]]) -> None:
        images: list[dict[str, Any]] = []
        for call, result in results:
            text = result.text or "(no output)"
            self.messages.append({"role": "tool", "tool_call_id": call.id,
                                  "content": f"ERROR: {text}" if result.is_error else text})
            images += [{"type": "image_url",
                        "image_url": {"url": f"data:image/png;base64,{png_base64(image)}"}}
                       for image in result.images]
        if images:
            self.messages.append({"role": "user", "content": [
                {"type": "text", "text": "Images returned by the tool calls above:"}, *images]})

    async def close(self) -> None:
        await self.client.close()


def _carries_content(chunk: dict[str, Any]) -> bool:
    """Whether a chunk carries part of the answer (text, a tool call, a finish reason, the
    usage), not only an empty delta."""
    if chunk.get("usage"):
        return True
    return any(isinstance(choice, dict) and (choice.get("finish_reason") or any(
        value not in (None, "", [], {}) for key, value in (choice.get("delta") or {}).items()
        if key != "role")) for choice in chunk.get("choices") or [])
