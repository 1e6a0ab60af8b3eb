"""The Gemini harness: the Gemini API through the official `google-genai` SDK.

Wire mapping:
    Tool            -> FunctionDeclaration(name, description, parameters_json_schema)
    model turn      <- candidates[0].content: `text` and `function_call` parts,
                       `finish_reason`, `usage_metadata`
    tool results    -> one user Content of `function_response` parts ({"output": text}
                       or {"error": text}), matched by id when the model gave one, then
                       PNG images as inline data parts

The model's Content goes back into the history as the API sent it, so thought signatures
(required by thinking models across function calls) are kept. The SDK's automatic function
calling is off: this loop runs the tools. One SDK client per rollout, closed with it.
Thought parts (`thought=True`, sent when thoughts are included) go in the trace.

Streaming (`stream=True`): `client.aio.models.generate_content_stream`, its chunks merged
by `hud.agents.streaming.assemble_gemini` into the response a plain request returns. The
SDK sends the request when the first chunk is read, and retries it until its headers; a
stream cut after that is retried whole. A chunk counts as content for hud's limits
(`hud.agents.deadlines`) when it carries a part, a finish reason or prompt feedback.
The SDK's HTTP client is hud's (`Clock.http_client`), closed with the conversation.

`google.genai` is imported when a conversation starts, never at `hud.agents` import time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hud.agents.base import Conversation, ModelAgent, ToolCall, Turn
from hud.agents.deadlines import Clock, http_errors
from hud.agents.streaming import assemble_gemini, reading, retrying
from hud.agents.tools import Tool, ToolResult

if TYPE_CHECKING:
    from google.genai.types import GenerateContentResponse

KEY_VARIABLES = ("GEMINI_API_KEY", "GOOGLE_API_KEY")
#: finish reasons that mean the model would not answer
REFUSALS = {"SAFETY", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "RECITATION", "IMAGE_SAFETY",
            "MODEL_ARMOR"}


class GeminiAgent(ModelAgent):
    """Gemini models on the Gemini API (google-genai).

    Args:
        model: e.g. "gemini-2.5-pro".
        api_key: defaults to $GEMINI_API_KEY, else $GOOGLE_API_KEY.
        base_url: the API's address; the SDK's default (Google's own API) when None.
        max_retries: retries of a failed request (see `ModelAgent`).
        timeout: hud's wall-clock limit on each API request (see `ModelAgent`).
        **options: see `ModelAgent` (max_steps, system, max_tokens, tools).

    Raises:
        ConfigError: no key is given and neither variable is set.
    """

    key_variables = KEY_VARIABLES

    def conversation(self, prompt: str, tools: list[Tool]) -> Conversation:
        return GeminiConversation(self, prompt, tools)


class GeminiConversation(Conversation):
    """One rollout's contents with Gemini."""

    def __init__(self, agent: GeminiAgent, prompt: str, tools: list[Tool]) -> None:
        from google import genai
        from google.genai import types

        self.agent = agent
        self.types = types
        self.clock = Clock(agent.timeout, agent.max_retries, agent.base_url or "the Gemini API")
        self.http = self.clock.http_client()
        http = types.HttpOptions(
            base_url=agent.base_url, timeout=int(self.clock.sdk_timeout * 1000),
            retry_options=types.HttpRetryOptions(attempts=agent.max_retries + 1),
            httpx_async_client=self.http)
        self.client = genai.Client(api_key=agent.api_key, http_options=http).aio
        from hud.agents import gemini_computer

        computer = next((t for t in tools if t.name == "computer" and "display" in t.meta), None)
        #: the desktop size for Gemini's 0-999 grid, when its computer-use tool is declared
        self.display: tuple[int, int] | None = None
        self.extra_tools = []
        #: call id -> the Gemini function name a native computer call came under
        self.native_names: dict[str, str] = {}
        declared: list[Any] = []
        if computer is not None and gemini_computer.wants_native(agent.model):
            self.display = computer.meta["display"]
            self.extra_tools = [gemini_computer.sequence_tool(computer)]
            declared.append(types.Tool(computer_use=types.ComputerUse(
                environment=types.Environment.ENVIRONMENT_DESKTOP)))
            tools = [t for t in tools if t is not computer]
        declarations = [types.FunctionDeclaration(name=t.name, description=t.description,
                                                  parameters_json_schema=t.parameters)
                        for t in tools]
        if declarations:
            declared.append(types.Tool(function_declarations=declarations))
        self.config = types.GenerateContentConfig(
            system_instruction=agent.system or None,
            max_output_tokens=agent.max_tokens or None,
            tools=declared or None,
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        )
        self.contents: list[Any] = [types.Content(role="user", parts=[types.Part(text=prompt)])]
        #: ids we made up for calls the model sent without one: they never go on the wire
        self.made_up: set[str] = set()

    async def ask(self) -> Turn:
        if self.agent.stream:
            response = await retrying(self._streamed, self.clock)
        else:
            response = await self.clock.plain(lambda: self.client.models.generate_content(
                model=self.agent.model, contents=self.contents, config=self.config))
        usage: dict[str, int] = {}
        meta = response.usage_metadata
        if meta is not None:
            usage = {"input_tokens": meta.prompt_token_count or 0,
                     "output_tokens": meta.candidates_token_count or 0}
            if meta.thoughts_token_count:
                usage["reasoning_tokens"] = meta.thoughts_token_count
        if not response.candidates:
            feedback = response.prompt_feedback
            reason = str(getattr(feedback, "block_reason", None) or "no candidates")
            return Turn(text="", usage=usage, finish=reason, stop="refused")
        candidate = response.candidates[0]
        content = candidate.content or self.types.Content(role="model", parts=[])
        if not content.role:
            content.role = "model"
        self.contents.append(content)
        texts: list[str] = []
        calls: list[ToolCall] = []
        thinking = [part.text for part in content.parts or [] if part.thought and part.text]
        for i, part in enumerate(content.parts or []):
            if part.function_call is not None:
                call = part.function_call
                call_id = call.id
                if not call_id:
                    call_id = f"call-{len(self.contents)}-{i}"
                    self.made_up.add(call_id)
                if self.display is not None and call.name in gemini_computer_functions():
                    from hud.agents.gemini_computer import SEQUENCE_TOOL, to_steps

                    self.native_names[call_id] = call.name or ""
                    steps = to_steps(call.name or "", dict(call.args or {}), self.display)
                    calls.append(ToolCall(call_id, SEQUENCE_TOOL,
                                          {"steps": steps, "function": call.name}, repr(call.args)))
                    continue
                calls.append(ToolCall(call_id, call.name or "", dict(call.args or {}),
                                      repr(call.args)))
            elif part.text and not part.thought:
                texts.append(part.text)
        finish = candidate.finish_reason
        finish_name = getattr(finish, "value", None) or (str(finish) if finish else None)
        stop = None
        if finish_name in REFUSALS:
            stop = "refused"
        elif finish_name == "MAX_TOKENS":
            stop = "max_tokens"
        return Turn(text="".join(texts), calls=calls, usage=usage, finish=finish_name, stop=stop,
                    thinking=thinking)

    async def _streamed(self, retries: int) -> GenerateContentResponse:
        """One streamed request (its start tried `retries` more times by the SDK), its
        chunks merged into one response."""
        types = self.types
        config = self.config.model_copy(update={"http_options": types.HttpOptions(
            retry_options=types.HttpRetryOptions(attempts=retries + 1))})
        stream = await self.client.models.generate_content_stream(
            model=self.agent.model, contents=self.contents, config=config)
        try:
            # the request goes out with the first chunk read; the SDK retries its start
            async with reading(http_errors()), self.clock.pacing(sent=False) as pace:
                chunks: list[GenerateContentResponse] = []
                async for chunk in stream:
                    chunks.append(chunk)
                    if _carries_content(chunk):
                        pace.progress()
                return assemble_gemini(chunks)
        finally:  # a stream left early (a timeout, a cancelled rollout) lets its connection go
            close = getattr(stream, "aclose", None)
            if close is not None:
                await close()

    def reply(self, results: list[tuple[ToolCall, ToolResult]]) -> None:
        types = self.types
        parts = []
        images = []
        for call, result in results:
            key = "error" if result.is_error else "output"
            call_id = None if call.id in self.made_up else call.id
            name = self.native_names.pop(call.id, call.name)
            parts.append(types.Part(function_response=types.FunctionResponse(
                id=call_id, name=name, response={key: result.text or "(no output)"})))
            images += [types.Part(inline_data=types.Blob(mime_type="image/png", data=image))
                       for image in result.images]
        self.contents.append(types.Content(role="user", parts=parts + images))

    async def close(self) -> None:
        await self.client.aclose()
        await self.http.aclose()  # the SDK leaves a client it was given open


def _carries_content(chunk: GenerateContentResponse) -> bool:
    """Whether a chunk carries part of the answer, not only usage counts."""
    return chunk.prompt_feedback is not None or any(
        candidate.finish_reason is not None or bool(candidate.content and candidate.content.parts)
        for candidate in chunk.candidates or [])


def gemini_computer_functions() -> tuple[str, ...]:
    from hud.agents.gemini_computer import FUNCTIONS

    return FUNCTIONS
