"""`ModelAgent`: the loop every provider harness shares.

    for each step up to max_steps:
        turn = await conversation.ask()          # one model call, provider wire format
        record the turn (text, tool calls, token usage)
        no tool calls  ->  stop: the turn's text is the answer
        else run each call (with the tool's timeout), record it, conversation.reply(results)

Design decisions:
- A harness is split in two: the agent (configuration, shared by every concurrent rollout
  of a job) and a `Conversation` (the message history of one rollout). Nothing about a
  rollout is kept on the agent, so `Taskset.run(agent, group=16)` needs one agent only.
- A tool never crashes a rollout: an exception, a timeout, an unknown tool name or
  arguments that are not a JSON object come back to the model as an error result.
  A provider error (HTTP 4xx/5xx after the SDK's own retries) does raise, and the
  rollout becomes `agent_error`.
- Tool calls of one turn run one after another, in the order the model gave them: bash
  commands and file edits over one workspace are rarely independent.
- Tools come from `hud.agents.tools.tools_for(run)` unless the agent is given its own
  (`tools=`: a list, or an async function of the run). Whatever the toolset opens for a
  rollout (an ssh connection) is closed when the loop ends.
"""

from __future__ import annotations

import abc
import asyncio
import base64
import contextlib
import json
import math
import os
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hud.agents.context import RunContext
from hud.agents.tools import Tool, ToolResult, truncate
from hud.errors import ConfigError

#: model turns per rollout unless the run (`--max-steps`) or the agent says otherwise
DEFAULT_MAX_STEPS = 30
#: seconds one API request may take by hud's clock (non-streaming: the whole response;
#: streaming: each wait for content, and 6x this in all; see hud.agents.deadlines). The
#: SDKs' own timeout, 600 s per network read, tried 3 times, let one hung request hold a
#: rollout for half an hour, and a stream of keep-alive pings for ever.
DEFAULT_REQUEST_TIMEOUT = 300.0
#: retries of a failed request (429, 5xx, connection errors, timeouts), with the SDK's backoff
DEFAULT_MAX_RETRIES = 2

DEFAULT_SYSTEM = (
    "You are an agent solving a task inside a sandboxed environment. Use the tools you are "
    "given to inspect and change the environment. When you are done, reply with the final "
    "answer only, without calling a tool."
)

ToolSource = Sequence[Tool] | Callable[[RunContext], Awaitable[list[Tool]]]


@dataclass
class ToolCall:
    """One tool call the model asked for, in provider-neutral form."""

    id: str
    name: str
    #: the parsed arguments; None when the model sent something that is not a JSON object
    arguments: dict[str, Any] | None
    #: the arguments as the model sent them (kept for the trace when they did not parse)
    raw: str = ""


@dataclass
class Turn:
    """One model response."""

    text: str
    calls: list[ToolCall] = field(default_factory=list)
    #: token counts, provider-neutral keys: input_tokens, output_tokens (plus extras)
    usage: dict[str, int] = field(default_factory=dict)
    #: the provider's own finish/stop reason, for the trace
    finish: str | None = None
    #: set when the turn ends the rollout for a reason other than an answer: "refused",
    #: "max_tokens"; None for an ordinary answer or tool calls
    stop: str | None = None
    #: the reasoning/thinking text the provider returned with the turn (summaries where
    #: the provider gives only those), for the trace; empty when it returned none
    thinking: list[str] = field(default_factory=list)


class Conversation(abc.ABC):
    """The history of one rollout with one provider."""

    #: tools the conversation routes native provider tools through (see gemini_computer)
    extra_tools: Sequence[Tool] = ()

    @abc.abstractmethod
    async def ask(self) -> Turn:
        """Send the history to the model and add its response to the history.

        Raises:
            RequestTimeout: every try went past the request timeout (hud.agents.deadlines).
            Exception: the provider SDK's error when the API call fails after its retries.
        """

    @abc.abstractmethod
    def reply(self, results: list[tuple[ToolCall, ToolResult]]) -> None:
        """Add the results of the last turn's tool calls to the history."""

    async def close(self) -> None:
        """Release what the conversation holds (HTTP clients)."""


def parse_arguments(raw: Any) -> dict[str, Any] | None:
    """Tool arguments as the model sent them: JSON text (its object; `{}` for no text),
    or a JSON object sent in its place (some servers do), taken as it is. Anything else
    (text that is not a JSON object, a list, a number) is None: an error for the model."""
    if isinstance(raw, dict):
        return raw
    if raw is None or raw == "":
        return {}
    if not isinstance(raw, str):
        return None
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):  # not JSON; nested past the parser's depth
        return None
    return value if isinstance(value, dict) else None


def arguments_text(raw: Any) -> str:
    """Tool arguments as text (for the trace, an error message, the history sent back):
    text as it is, an object (or other JSON value) as JSON."""
    if isinstance(raw, str):
        return raw
    return "" if raw is None else json.dumps(raw, ensure_ascii=False, default=str)


def api_key(given: str | None, *variables: str) -> str:
    """The key passed in, else the first of `variables` set in the environment.

    Raises:
        ConfigError: no key; the message names the variable(s) to set.
    """
    if given:
        return given
    for variable in variables:
        if os.environ.get(variable):
            return os.environ[variable]
    names = " or ".join(variables)
    raise ConfigError(f"{names} is not set: export {variables[0]}=... (or pass api_key=) "
                      f"to use this provider")


def png_base64(image: bytes) -> str:
    """A PNG image as the base64 text the providers' JSON carries."""
    return base64.b64encode(image).decode("ascii")


def prompt_text(prompt: Any) -> str:
    """The task's prompt as the text of the first user message."""
    if isinstance(prompt, str):
        return prompt
    return json.dumps(prompt, ensure_ascii=False, default=str)


class ModelAgent(abc.ABC):
    """Base of the provider harnesses: the tool loop, tracing, and the stop reason.

    Args:
        model: the provider's model id, sent as is.
        max_steps: model turns per rollout; `Taskset.run(max_steps=...)` overrides it.
        system: the system prompt (instructions); a short default says how to answer.
        max_tokens: output token limit per model turn; None leaves it to the provider
            (Claude, which needs one, gets `CLAUDE_MAX_TOKENS`).
        tools: the tools to offer instead of those built from the run's bindings.
        api_key: the provider key; defaults to the first of `key_variables` set.
        api_key_env: read the key from this environment variable instead of the
            provider's usual ones (a proxy's key, a second account).
        base_url: the API's address; the SDK's default (the provider's own API) when None.
        max_retries: retries of a failed request (429, 5xx, connection errors, timeouts, a
            stream broken off midway): a model turn sends at most 1 + max_retries HTTP
            requests, the SDK's retries and hud's counted together.
        timeout: hud's wall-clock limit on each API request, in seconds: on the whole
            response; streaming, on its headers and then on each wait for content
            (keep-alive pings do not count), a streamed request being cut 6 x `timeout`
            after it was sent. A model turn, answered or failed, so ends within
            (1 + max_retries) x timeout + max_retries x 60 s (streaming: 6 x timeout
            per try): 17 minutes by default (see `hud.agents.deadlines`).
        stream: send streaming requests (server-sent events) and assemble the response,
            so a long generation is not cut by a proxy's idle timeout.

    Raises:
        ConfigError: no key is given and none of `key_variables` (or `api_key_env`) is
            set; a timeout or retry count out of range.
    """

    #: environment variables the key is read from, in order
    key_variables: tuple[str, ...] = ()

    def __init__(self, model: str, *, max_steps: int = DEFAULT_MAX_STEPS,
                 system: str | None = None, max_tokens: int | None = None,
                 tools: ToolSource | None = None, api_key: str | None = None,
                 api_key_env: str | None = None, base_url: str | None = None,
                 max_retries: int = DEFAULT_MAX_RETRIES,
                 timeout: float = DEFAULT_REQUEST_TIMEOUT, stream: bool = False) -> None:
        if not (isinstance(timeout, (int, float)) and math.isfinite(timeout) and timeout > 0):
            raise ConfigError(f"the request timeout must be a positive, finite number of "
                              f"seconds, got {timeout!r}")
        if max_retries < 0:
            raise ConfigError(f"max_retries must be 0 or more, got {max_retries!r}")
        if api_key_env is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", api_key_env):
            # not echoed: a key pasted where its variable's name belongs
            raise ConfigError("api_key_env takes the NAME of an environment variable "
                              "(letters, digits, _), not the key itself")
        self.model = model
        self.name = model
        self.max_steps = max_steps
        self.system = DEFAULT_SYSTEM if system is None else system
        self.max_tokens = max_tokens
        self._tools = tools
        self.base_url = base_url
        self.max_retries = max_retries
        self.timeout = float(timeout)
        self.stream = stream
        #: the variable the caller named for the key: then its absence is always an error
        self.api_key_env = api_key_env
        if api_key_env is not None:
            self.key_variables = (api_key_env,)
        self.api_key = self.resolve_key(api_key)

    @property
    def secrets(self) -> tuple[str, ...]:
        """What must never be written to a trace or a job: the provider key (a rollout
        redacts it from errors and events)."""
        return (self.api_key,) if self.api_key else ()

    def resolve_key(self, given: str | None) -> str:
        """The key to send (see `api_key`); a harness may relax this (local servers).

        Raises:
            ConfigError: no key; the message names the variable to set.
        """
        return api_key(given, *self.key_variables)

    @abc.abstractmethod
    def conversation(self, prompt: str, tools: list[Tool]) -> Conversation:
        """A new conversation that starts with the task's prompt and offers `tools`."""

    async def __call__(self, run: RunContext) -> str | None:
        """Run the loop for one rollout and return the final text answer.

        Raises:
            Exception: the provider SDK's error when an API call fails; the rollout
                becomes `agent_error`.
        """
        async with contextlib.AsyncExitStack() as stack:
            tools = await self._tools_for(run, stack)
            conversation = self.conversation(prompt_text(run.prompt), tools)
            # a conversation may route native provider tools through tools of its own
            by_name = {tool.name: tool for tool in [*tools, *conversation.extra_tools]}
            stack.push_async_callback(conversation.close)
            steps = run.max_steps or self.max_steps
            text: str | None = None
            for step in range(1, steps + 1):
                try:
                    turn = await conversation.ask()
                except Exception:
                    run.stop_reason = "error"  # the rollout records the error itself
                    raise
                text = turn.text
                run.record("model_turn", step=step, model=self.model, text=turn.text,
                           tool_calls=[{"id": c.id, "name": c.name,
                                        "arguments": c.arguments if c.arguments is not None else c.raw}
                                       for c in turn.calls],
                           usage=turn.usage, finish=turn.finish,
                           **({"thinking": turn.thinking} if turn.thinking else {}))
                if not turn.calls:
                    run.stop_reason = turn.stop or "answered"
                    return turn.text
                offered = [tool.name for tool in tools]  # internal routes stay unnamed
                results = [(call, await self._run_tool(run, step, by_name, call, offered))
                           for call in turn.calls]
                conversation.reply(results)
            run.stop_reason = "max_steps"
            return text

    async def _tools_for(self, run: RunContext, stack: contextlib.AsyncExitStack) -> list[Tool]:
        if self._tools is None:
            from hud.agents.tools import tools_for

            return await tools_for(run, stack=stack)
        if callable(self._tools):
            return list(await self._tools(run))
        return list(self._tools)

    async def _run_tool(self, run: RunContext, step: int, tools: dict[str, Tool],
                        call: ToolCall, offered: Sequence[str] | None = None) -> ToolResult:
        started = time.monotonic()
        result = await execute(tools, call, offered)
        run.record("tool_result", step=step, id=call.id, name=call.name, text=result.text,
                   is_error=result.is_error, images=len(result.images),
                   seconds=round(time.monotonic() - started, 3))
        return result


async def execute(tools: dict[str, Tool], call: ToolCall,
                  offered: Sequence[str] | None = None) -> ToolResult:
    """Run one tool call; every failure becomes an error result for the model. An unknown
    name is answered with the tools the model was `offered` (default: all of `tools`),
    never a conversation's internal ones."""
    tool = tools.get(call.name)
    if tool is None:
        names = sorted(tools if offered is None else offered)
        return ToolResult(f"no tool {call.name!r}; the tools are: {', '.join(names) or 'none'}",
                          is_error=True)
    if call.arguments is None:
        return ToolResult(f"the arguments of {call.name} must be a JSON object, got: {call.raw[:500]}",
                          is_error=True)
    try:
        result = await asyncio.wait_for(tool.run(call.arguments), tool.timeout)
    except TimeoutError:
        return ToolResult(f"{call.name} timed out after {tool.timeout:g}s", is_error=True)
    except Exception as exc:  # noqa: BLE001 - a failing tool is the model's to handle
        return ToolResult(f"{call.name} failed: {type(exc).__name__}: {exc}", is_error=True)
    return ToolResult(truncate(result.text), result.is_error, result.images)
