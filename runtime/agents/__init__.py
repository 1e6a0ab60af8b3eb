"""Agents: anything with `async def __call__(run: RunContext) -> answer`.

`create_agent(name, **config)` picks one by name:

    oracle, nop, replay:JOB_ID        offline agents, no key
    claude-*  (or claude)             Anthropic Messages API        $ANTHROPIC_API_KEY
    gpt-*, o1*, o3*, o4* (or openai)  OpenAI Responses API          $OPENAI_API_KEY
    gemini-*  (or gemini)             Gemini API (google-genai)     $GEMINI_API_KEY / $GOOGLE_API_KEY
    openai-compatible:MODEL           Chat Completions with function tools, at base_url=
                                      (or $OPENAI_BASE_URL); no key needed there

The OpenAI wire API is an explicit choice: `api="responses"` or `api="chat"` picks the
Responses or the Chat Completions harness for any model id and any `base_url`. Without
`api=` the default is: `openai-compatible:` ids, and any model id other than claude-* and
gemini-* given a `base_url=`, use Chat Completions (what local servers speak); gpt-* and
o-series ids use Responses.

Provider harnesses take `max_steps`, `system`, `max_tokens`, `tools`, `api_key`,
`api_key_env`, `base_url`, `max_retries`, `timeout`, `stream` (see
`hud.agents.base.ModelAgent` and each harness). Their SDKs (extra `hud-python[agents]`)
are imported only when such an agent is made.

To bring your own, write a class (or async function) taking a `hud.eval.RunContext`: read
`run.prompt`, use `run.ssh()`, `run.tunnel(name)` and `run.bindings` to act,
`run.record(...)` to trace, set `run.stop_reason`, and return the answer. Subclass
`ModelAgent` to reuse the tool loop with another provider.
"""

from __future__ import annotations

from typing import Any

from hud.agents.base import ModelAgent
from hud.agents.context import Agent
from hud.agents.offline import NopAgent, OracleAgent, ReplayAgent
from hud.agents.tools import Tool, ToolResult
from hud.errors import ConfigError

__all__ = ["ModelAgent", "NopAgent", "OracleAgent", "ReplayAgent", "Tool", "ToolResult",
           "create_agent"]

OFFLINE = ("oracle", "nop", "replay:JOB_ID")
#: the OpenAI wire APIs `api=` chooses between
APIS = ("responses", "chat")
PROVIDERS = ("claude-*", "gpt-*", "o1*/o3*/o4*", "gemini-*", "openai-compatible:MODEL",
             "any model with base_url=")
#: the model a bare provider name stands for (`hud eval tasks.py claude`)
DEFAULT_MODELS = {"claude": "claude-sonnet-4-5", "openai": "gpt-5", "gpt": "gpt-5",
                  "gemini": "gemini-2.5-pro"}
COMPATIBLE = "openai-compatible:"


def create_agent(model: str, *, api: str | None = None, **config: Any) -> Agent:
    """Build an agent from a name; `config` goes to the agent's constructor.

    Args:
        model: an offline agent's name or a model id (see the module docstring).
        api: "responses" or "chat": the OpenAI wire API to use; None picks by the
            documented default (Chat Completions with a `base_url`, else Responses).
        **config: the harness's options (`ModelAgent`).

    Raises:
        ConfigError: the name matches no agent (they are listed), `api` is unknown or
            given for a model that is not served over OpenAI's APIs, a provider's key is
            missing (the variable is named), or its SDK is not installed.
    """
    if api is not None and api not in APIS:
        raise ConfigError(f"api must be one of {', '.join(APIS)}, got {api!r}")
    replay = model.startswith("replay:") or model == "replay"
    if model in ("oracle", "nop") or replay:
        # a model option given to an offline agent is a mistake worth naming, not ignoring
        given = sorted({*config, *(["api"] if api else [])} - ({"job"} if replay else set()))
        if given:
            raise ConfigError(f"{', '.join(given)}: only model agents take "
                              f"{'it' if len(given) == 1 else 'these'}, not {model!r}")
    if model == "oracle":
        return OracleAgent()
    if model == "nop":
        return NopAgent()
    if replay:
        job = config.get("job") or model.partition(":")[2]
        if not job:
            raise ConfigError("the replay agent needs a job id: replay:JOB_ID")
        return ReplayAgent(job)
    return _provider_agent(DEFAULT_MODELS.get(model, model), api, config)


def _provider_agent(model: str, api: str | None, config: dict[str, Any]) -> ModelAgent:
    other = model.startswith(("claude", "gemini"))
    if api is not None and other:
        raise ConfigError(f"api={api!r} chooses between OpenAI's wire APIs; {model!r} is "
                          f"served by its own provider's API: leave api unset")
    if api is None:
        own_url = bool(config.get("base_url")) and not other
        api = "chat" if model.startswith(COMPATIBLE) or own_url else None
    if api == "chat":
        _need("openai")
        from hud.agents.chat_completions import ChatCompletionsAgent

        agent = ChatCompletionsAgent(model.removeprefix(COMPATIBLE), **config)
        # what ran, as the job records it: an OpenAI-compatible endpoint, this model
        agent.name = model if model.startswith(COMPATIBLE) else f"{COMPATIBLE}{model}"
        return agent
    if api == "responses" or model.startswith(("gpt-", "o1", "o3", "o4")):
        _need("openai")
        from hud.agents.openai_responses import OpenAIResponsesAgent

        return OpenAIResponsesAgent(model.removeprefix(COMPATIBLE), **config)
    if model.startswith("claude-"):
        _need("anthropic")
        from hud.agents.claude import ClaudeAgent

        return ClaudeAgent(model, **config)
    if model.startswith("gemini-"):
        _need("google.genai", "google-genai")
        from hud.agents.gemini import GeminiAgent

        return GeminiAgent(model, **config)
    raise ConfigError(f"no agent {model!r}; available: {', '.join(OFFLINE + PROVIDERS)}")


def _need(module: str, package: str | None = None) -> None:
    """Fail early, and say how to fix it, when a provider's SDK is not installed."""
    import importlib.util

    try:
        found = importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package (google) is missing
        found = False
    if not found:
        raise ConfigError(f"the {package or module} package is not installed; "
                          f"pip install 'hud-python[agents]'")
